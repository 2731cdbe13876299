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
              message: `another a2a-ledger process is running on ${filename} (it holds ${filename}.lock); stop it, or use another store (--db, or the db option when embedded)`
            })
          : error
      })
    )
  ).pipe(Layer.provide(Reactivity.layer))

/** Who owns a SQLite store: a live server (its lock is held), or nobody (with the last owner's pid, if any). */
export interface Owner {
  readonly running: boolean
  readonly lastPid?: number
  readonly lastStartedAt?: string
}

/**
 * Look at `<db>.lock` without taking it (for `doctor`): a held lock means a
 * server runs on the file; otherwise the file names the last one.
 */
export const probe = (filename: string): Effect.Effect<Owner> =>
  Effect.scoped(
    Effect.gen(function* () {
      const lock = yield* SqliteClient.make({ filename: `${filename}.lock`, readonly: true, disableWAL: true })
      yield* lock.unsafe("PRAGMA busy_timeout = 0")
      const rows = yield* lock<{ pid: number; started_at: string }>`SELECT pid, started_at FROM owner`
      const last = rows[0]
      return last === undefined ? { running: false } : { running: false, lastPid: last.pid, lastStartedAt: last.started_at }
    })
  ).pipe(
    Effect.provide(Reactivity.layer),
    Effect.catchAll((error) => {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause
      const busy = cause?.code === "SQLITE_BUSY" || /locked|busy/i.test(cause?.message ?? "")
      return Effect.succeed<Owner>({ running: busy })
    })
  )
