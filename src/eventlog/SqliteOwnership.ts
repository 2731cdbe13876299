import { Data, Effect, Layer } from "effect"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as Reactivity from "@effect/experimental/Reactivity"

/** Another live process already runs an engine on this SQLite file. */
export class StoreInUse extends Data.TaggedError("StoreInUse")<{ readonly filename: string; readonly message: string }> {}

/**
 * One engine per SQLite file. Two servers on one file would each "recover"
 * the other's running tasks and race on every write. The owner holds an
 * exclusive SQLite lock on a sidecar file `<db>.lock` for its whole life;
 * the operating system releases it when the process ends, even by SIGKILL,
 * so a crashed server never blocks its own restart. Readers (CLI tools)
 * do not take it.
 */
export const layer = (filename: string) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const lockFile = `${filename}.lock`
      const lock = yield* SqliteClient.make({ filename: lockFile, disableWAL: true })
      // Fail at once instead of waiting for the holder; keep the lock after the first write.
      yield* lock.unsafe("PRAGMA busy_timeout = 0")
      yield* lock.unsafe("PRAGMA locking_mode = EXCLUSIVE")
      yield* lock.unsafe("CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL, started_at TEXT NOT NULL)")
      yield* lock.withTransaction(
        Effect.zipRight(
          lock.unsafe("DELETE FROM owner"),
          lock`INSERT INTO owner ${lock.insert({ pid: process.pid, started_at: new Date().toISOString() })}`
        )
      )
    }).pipe(
      Effect.mapError((error) => {
        const cause = error.cause as { code?: string; message?: string } | undefined
        const busy = cause?.code === "SQLITE_BUSY" || /locked|busy/i.test(cause?.message ?? "")
        return busy
          ? new StoreInUse({
              filename,
              message: `another a2a-ledger process is running on ${filename} (it holds ${filename}.lock); stop it, or use another --db`
            })
          : error
      })
    )
  ).pipe(Layer.provide(Reactivity.layer))
