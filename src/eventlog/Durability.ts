import { Context, Effect, Layer } from "effect"
import type { StoreFailure } from "./StoreFailure.js"
import { SqliteCommits } from "./SqliteCommits.js"

/**
 * When a commit is on disk. With SQLite's `synchronous = FULL`, COMMIT
 * itself waits for the disk (an fsync of the WAL), and better-sqlite3 runs it
 * on the calling thread: on the main thread every request in the process
 * would stop for every sync.
 *
 * So an engine's SQLite connections commit with `synchronous = NORMAL` (the
 * WAL is written, not synced: SQLite stays consistent after any crash, but
 * the newest commits could be lost to a power cut), and the writer's thread
 * (SqliteCommits) syncs the WAL itself after each of its commits, before it
 * answers. The same promise FULL makes, while the event loop goes on serving.
 * A write on the main connection (a push config) asks for a sync here before
 * it is acknowledged.
 *
 * Reads wait too (`settled`): a GetTask never shows a state that a power cut
 * could take back. They wait only for the writes and syncs asked for before
 * them that are not on disk yet, which is short (a disk sync: about a
 * millisecond here).
 *
 * SQLite's checkpoints sync the WAL before they copy it back in NORMAL mode
 * as in FULL, so nothing else changes.
 */
export class Durability extends Context.Tag("a2a-ledger/Durability")<
  Durability,
  {
    /** Everything committed before this call is on disk when it succeeds. */
    readonly sync: Effect.Effect<void, StoreFailure>
    /** Like `sync`, but asks for nothing: it waits only for writes and syncs asked for before it that are not on disk yet. */
    readonly settled: Effect.Effect<void, StoreFailure>
  }
>() {}

/** SQLite with `--sqlite-synchronous full` on a file the engine owns: the writer's thread syncs (see above). */
export const layerThread = Layer.effect(
  Durability,
  Effect.map(SqliteCommits, (commits) => Durability.of({ sync: commits.sync, settled: commits.settled }))
)

/** A store whose COMMIT is as durable as it will be (PostgreSQL, SQLite FULL or NORMAL as set): nothing to wait for. */
export const layerNone = Layer.succeed(Durability, Durability.of({ sync: Effect.void, settled: Effect.void }))
