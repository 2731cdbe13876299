import { Context, Data, Effect, Layer } from "effect"
import * as fs from "node:fs"

/**
 * When a commit is on disk. With SQLite's `synchronous = FULL`, COMMIT
 * itself waits for the disk (an fsync of the WAL), and better-sqlite3 runs it
 * on the event loop: every request in the process stops for every sync.
 *
 * So the engine's connection commits with `synchronous = NORMAL` (the WAL
 * is written, not synced: SQLite stays consistent after any crash, but the
 * newest commits could be lost to a power cut), and this module syncs the
 * WAL file itself, with `fdatasync` on libuv's thread pool. A commit is
 * acknowledged only after a sync that began after it finished: the same
 * promise FULL makes, while the event loop goes on serving, and the writer
 * goes on committing. Syncs are shared: callers who arrive while one runs
 * wait for the next, and one sync covers all of them (group commit).
 *
 * Reads wait too (`settled`): a GetTask never shows a state that a power cut
 * could take back. They wait only while a sync is due, which is rare and
 * short (a disk sync: about a millisecond here).
 *
 * SQLite's checkpoints sync the WAL before they copy it back in NORMAL mode
 * as in FULL, so nothing else changes.
 */
export class Durability extends Context.Tag("a2a-ledger/Durability")<
  Durability,
  {
    /** Everything committed before this call is on disk when it succeeds. */
    readonly sync: Effect.Effect<void, SyncFailed>
    /** Like `sync`, but immediate when every commit so far was already synced or is not yet asked for. */
    readonly settled: Effect.Effect<void, SyncFailed>
  }
>() {}

/** The WAL could not be synced (or not in time): the commits it held are not known to be on disk. */
export class SyncFailed extends Data.TaggedError("SyncFailed")<{ readonly message: string; readonly cause?: unknown }> {
  /** Read by StoreFault, like a driver's error code. */
  get code(): string {
    const code = (this.cause as { code?: unknown } | undefined)?.code
    return code === "ENOSPC" ? "SQLITE_FULL" : code === "ENOENT" ? "A2A_SQLITE_FILE_GONE" : "SQLITE_IOERR"
  }
}

interface Waiter {
  readonly upTo: number
  readonly resume: (effect: Effect.Effect<void, SyncFailed>) => void
}

/**
 * Syncs of the WAL of the SQLite file `filename`, each bounded by
 * `timeoutMs` (a disk that stops answering fails the commits it holds,
 * rather than holding them forever).
 */
export const makeWal = (filename: string, timeoutMs: number) => {
  const wal = `${filename}-wal`
  // Sync requests are numbered; `synced` is the highest whose sync finished.
  let requested = 0
  let synced = 0
  let running = false
  let waiters: Array<Waiter> = []

  const settle = (upTo: number, failure: SyncFailed | undefined) => {
    if (failure === undefined) synced = Math.max(synced, upTo)
    const due = waiters.filter((w) => w.upTo <= upTo)
    waiters = waiters.filter((w) => w.upTo > upTo)
    for (const w of due) w.resume(failure === undefined ? Effect.void : Effect.fail(failure))
  }

  const start = () => {
    if (running || waiters.length === 0) return
    running = true
    const upTo = requested
    let finished = false
    const finish = (failure: SyncFailed | undefined) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      running = false
      settle(upTo, failure)
      start()
    }
    const timer = setTimeout(() => finish(new SyncFailed({ message: `the disk did not finish a sync within ${timeoutMs} ms` })), timeoutMs)
    let fd: number
    try {
      fd = walFile()
    } catch (cause) {
      return finish(new SyncFailed({ message: `cannot open ${wal} to sync it`, cause }))
    }
    fs.fdatasync(fd, (syncError) => finish(syncError === null ? undefined : new SyncFailed({ message: `cannot sync ${wal}`, cause: syncError })))
  }

  // One descriptor, kept while the file at the WAL's path is the one it opened (a stat per sync, no
  // extra trip to the thread pool): a WAL removed under the server is not synced as if it counted.
  let open: { readonly fd: number; readonly id: string } | undefined
  const identity = (s: fs.Stats) => `${s.dev}:${s.ino}`
  const walFile = () => {
    const now = identity(fs.statSync(wal))
    if (open?.id === now) return open.fd
    if (open !== undefined) fs.close(open.fd, () => {})
    const fd = fs.openSync(wal, "r")
    open = { fd, id: identity(fs.fstatSync(fd)) }
    return fd
  }

  const waitFor = (upTo: number) =>
    Effect.async<void, SyncFailed>((resume) => {
      waiters.push({ upTo, resume })
      start()
    })

  const sync = Effect.suspend(() => waitFor(++requested))
  const settled = Effect.suspend(() => (requested > synced ? waitFor(requested) : Effect.void))
  const close = Effect.sync(() => {
    if (open !== undefined) fs.closeSync(open.fd)
    open = undefined
  })
  return { durability: Durability.of({ sync, settled }), close }
}

/** SQLite with `--sqlite-synchronous full` on a file the engine owns: commits are synced here (see above). */
export const layerWal = (filename: string, timeoutMs: number) =>
  Layer.scoped(
    Durability,
    Effect.map(Effect.acquireRelease(Effect.sync(() => makeWal(filename, timeoutMs)), (wal) => wal.close), (wal) => wal.durability)
  )

/** A store whose COMMIT is as durable as it will be (PostgreSQL, SQLite FULL or NORMAL as set): nothing to wait for. */
export const layerNone = Layer.succeed(Durability, Durability.of({ sync: Effect.void, settled: Effect.void }))
