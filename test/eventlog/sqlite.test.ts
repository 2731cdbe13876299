import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as path from "node:path"
import * as Store from "../../src/eventlog/Store"
import { tempDir } from "../support/server"
import { eventLogContract } from "./contract"

eventLogContract("SQLite file", () => Store.layerSqlite(path.join(tempDir(), "contract.db")))

describe("SQLite store settings", () => {
  const pragma = (name: string) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Record<string, unknown>>(`PRAGMA ${name}`)).pipe(Effect.map((rows) => rows[0]![name]))

  it.effect("commits are fully synchronous by default (acknowledged means durable, also across a power loss)", () =>
    Effect.gen(function* () {
      expect(yield* pragma("journal_mode")).toBe("wal")
      expect(yield* pragma("synchronous")).toBe(2) // FULL
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "sync.db")))))

  it.effect("synchronous NORMAL is an explicit choice", () =>
    Effect.gen(function* () {
      expect(yield* pragma("synchronous")).toBe(1) // NORMAL
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "sync-normal.db"), { synchronous: "normal" }))))
})
