import { Context, Data, Effect, Layer } from "effect"
import { SqlClient } from "@effect/sql"
import * as fs from "node:fs"

/**
 * The SQLite file the store has open is still the file at its path. An open
 * connection keeps writing to a file that was deleted or replaced under it
 * (`rm -rf data/`, a restore copied over it): every commit would then be
 * acknowledged and lost at the next start. So before each commit the writer
 * checks that the path still names the same file (device and inode); when it
 * does not, commits fail as a store fault until the file is back. (The engine's
 * batches make the same check in the writer's thread, sqliteWriter.worker.mjs;
 * this one guards the store's other writes, such as the writer's probe.)
 */
export class StoreFileGone extends Data.TaggedError("StoreFileGone")<{ readonly filename: string; readonly message: string }> {
  /** Read by describeStoreFault, like a driver's error code. */
  readonly code = "A2A_SQLITE_FILE_GONE"
}

export class StoreFile extends Context.Tag("a2a-ledger/StoreFile")<StoreFile, { readonly check: Effect.Effect<void, StoreFileGone> }>() {}

const identity = (filename: string) => {
  try {
    const s = fs.statSync(filename)
    return `${s.dev}:${s.ino}`
  } catch {
    return undefined
  }
}

/** The guard for the SQLite file `filename`, taken when the store opens it. */
export const layer = (filename: string) =>
  // After the connection: the file exists (created if need be) and is the one the store has open.
  Layer.effect(
    StoreFile,
    Effect.map(SqlClient.SqlClient, () => {
      const opened = identity(filename)
      return StoreFile.of({
        check: Effect.suspend(() =>
          identity(filename) === opened
            ? Effect.void
            : Effect.fail(
                new StoreFileGone({
                  filename,
                  message: `the database file ${filename} was removed or replaced while the server ran; put it back, or restart the server`
                })
              )
        )
      })
    })
  )

/** Stores without a file of their own (PostgreSQL, in memory): nothing to check. */
export const layerNone = Layer.succeed(StoreFile, { check: Effect.void })
