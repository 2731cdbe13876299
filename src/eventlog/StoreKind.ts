import { Context, Layer } from "effect"
import type { PgClient } from "@effect/sql-pg"

/**
 * Which kind of store the engine runs on, said by the store layer that made it. A SQLite file belongs to
 * one process: work is queued in memory. A PostgreSQL database may be shared by many: work goes by leases,
 * and commits are announced to the other processes over its client (CommitFeed).
 */
export type Kind = { readonly _tag: "sqlite" } | { readonly _tag: "postgres"; readonly client: PgClient.PgClient }

export class StoreKind extends Context.Tag("a2a-ledger/StoreKind")<StoreKind, Kind>() {}

export const sqlite: Kind = { _tag: "sqlite" }

export const layerSqlite = Layer.succeed(StoreKind, sqlite)

/** Whether other processes may share the store. */
export const isShared = (kind: Kind) => kind._tag === "postgres"
