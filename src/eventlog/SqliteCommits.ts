import { Context, Effect, Layer } from "effect"
import type { TaskState } from "../domain/TaskState.js"
import { StoreFailure } from "./StoreFailure.js"
import { Worker } from "node:worker_threads"
import { extend } from "../domain/extend.js"
import { EventSchemaVersions, isJournalEvent, type TaskEvent } from "../domain/TaskEvent.js"
import { encodePayload } from "./codec.js"

/**
 * The writer's own connection to a SQLite store, in a thread of its own
 * (sqliteWriter.worker.mjs), and the one call a batch of commits makes to it. A batch is a list of plans, one per command the writer
 * decided; each plan holds everything its commit writes: the new events, the
 * task's read-model row, the message key it claims, a push config sent with
 * the message, and one outbox row per event and push config of the task. The
 * whole batch is one transaction, run by better-sqlite3's prepared statements
 * in one call to the thread: no statement is compiled, cached or wrapped in an
 * Effect per commit.
 *
 * Why a thread: better-sqlite3 is synchronous, so on the main thread every
 * statement and every disk sync stops all requests. The thread writes a
 * batch, commits it, syncs the WAL (`sync: "wal"`, the default durability)
 * and answers; meanwhile the main thread serves, and the commands that
 * arrive make the next batch bigger (group commit). A write is answered only
 * once it is on disk, so the writer answers its callers at once.
 *
 * A plan checks its expected version on the read-model row (`UPDATE … WHERE
 * version = ?`, or an insert that must be the first): the row and the log
 * move together (invariant 4), so this costs no extra query, and the log's
 * `UNIQUE (task_id, version)` stays the last line of defence. A plan refused
 * there or by its message key writes nothing and leaves the others alone.
 *
 * This connection and the store's SqlClient share the file. Neither waits
 * for the other in SQLite's busy handler (busy_timeout 0): a busy lock fails
 * at once, and is tried again later without blocking (Transient.ts). The
 * thread holds the lock for a batch's statements only, not for the disk sync.
 */

/**
 * The task's row in the read model (`a2a_tasks`), as the writer folded it: the columns filters and order
 * use, and the snapshot as stored JSON. A type, not an interface: rows are records to SQL.
 */
export type TaskRow = {
  readonly task_id: string
  readonly tenant: string
  readonly owner: string
  readonly context_id: string
  readonly state: TaskState
  readonly version: number
  readonly status_timestamp: string
  readonly created_at: string
  readonly snapshot: string
  /** When a sleeping task's timer is due (ms since the epoch): a WORKING task whose turn waits on `ctx.sleep`; else null. */
  readonly wake_at: number | null
  /** The priority of a task's current turn (its input message's `a2a-ledger/priority`), for fair claims. */
  readonly priority: number
}

export interface EventRow {
  /** One of the step journal's events (`isJournalEvent`): no webhook is told of it, so it gets no outbox rows. */
  readonly journal?: true
  readonly type: string
  readonly schema_version: number
  readonly payload: string
  readonly created_at: string
}

/** An event as a plan writes it (the journal's marked, so neither write path needs to know their types). */
export const eventRow = (event: TaskEvent): EventRow =>
  isJournalEvent(event)
    ? { journal: true, type: event.type, schema_version: EventSchemaVersions[event.type], payload: encodePayload(event), created_at: event.at }
    : { type: event.type, schema_version: EventSchemaVersions[event.type], payload: encodePayload(event), created_at: event.at }

/** A push config row (`a2a_push_configs`), sent with a message. */
export interface PushConfigRow {
  readonly config_id: string
  readonly tenant: string
  readonly url: string
  readonly token: string | null
  readonly auth_scheme: string | null
  readonly auth_credentials: string | null
  readonly format: string
  readonly created_at: string
}

export interface CommitPlan {
  readonly taskId: string
  /** The task's version the events were decided on (0: a new task). */
  readonly expectedVersion: number
  readonly events: ReadonlyArray<EventRow>
  readonly metadata: string
  readonly row: TaskRow
  /** The user message this commit records, for idempotency. */
  readonly messageKey?: {
    readonly tenant: string
    readonly owner: string
    readonly messageId: string
    /** A key already taken: refuse the plan (default), or write it anyway and leave the key with its first task. */
    readonly duplicates: "refuse" | "accept"
    /** Epoch ms: a key accepted before this has expired (the idempotency window); the plan takes it over. */
    readonly expiresBefore: number
  }
  readonly pushConfig?: PushConfigRow
  /** Epoch ms: when outbox rows are first due, and when the message key is accepted. */
  readonly now: number
  /** `now` as an ISO time (the outbox rows' times). */
  readonly at: string
  /**
   * PostgreSQL: written only while `owner` holds the task's work lease at this epoch (LeasedSupervisor).
   * With `createUntil`, the first commit of a task handed straight to a worker: the lease is made with
   * the task (at this epoch, until then), not checked.
   */
  readonly fence?: { readonly owner: string; readonly epoch: number; readonly createUntil?: number }
}

export type PlanOutcome =
  | { readonly _tag: "Written"; readonly queued: number }
  /** The task is not at the expected version (the writer's view was stale): nothing written. */
  | { readonly _tag: "Conflict" }
  /** The message key was taken, by this task at this version: nothing written. */
  | { readonly _tag: "Duplicate"; readonly taskId: string; readonly version: number }
  /** The plan's fence: its owner no longer holds the task's lease at that epoch. Nothing written. */
  | { readonly _tag: "LeaseLost" }

/** A committed batch: one outcome per plan, and when it is on disk. */
export interface Written {
  readonly outcomes: ReadonlyArray<PlanOutcome>
  readonly synced: Effect.Effect<void, StoreFailure>
}

export class SqliteCommits extends Context.Tag("a2a-ledger/SqliteCommits")<
  SqliteCommits,
  {
    /**
     * Write a batch in one transaction; a StoreFailure means none of it was written. Succeeds once the batch
     * is committed, with `synced`, which succeeds once it is on disk (or fails: then it may be lost).
     */
    readonly write: (plans: ReadonlyArray<CommitPlan>) => Effect.Effect<Written, StoreFailure>
    /** The task's committed snapshot JSON (the read-model row), read on this connection. */
    readonly load: (taskId: string) => Effect.Effect<string | undefined, StoreFailure>
    /** A PRAGMA on this connection (some, like `max_page_count`, are per connection); returns its rows. */
    readonly pragma: (statement: string) => Effect.Effect<unknown, StoreFailure>
    /** Everything committed before this call, by any connection to the file, is on disk when it succeeds. */
    readonly sync: Effect.Effect<void, StoreFailure>
    /** Immediate unless a write or sync is not on disk yet; then it waits for it (a read never shows an unsynced commit). */
    readonly settled: Effect.Effect<void, StoreFailure>
  }
>() {}

/** How the thread makes a commit durable: sync the WAL after each, or leave it to SQLite's `NORMAL`. */
export type Sync = "wal" | "none"

type Request =
  | { readonly op: "open"; readonly filename: string; readonly sync: Sync }
  | { readonly op: "write"; readonly plans: ReadonlyArray<CommitPlan> }
  | { readonly op: "load"; readonly taskId: string }
  | { readonly op: "sync" | "ping" | "close" }
  | { readonly op: "pragma"; readonly statement: string }

interface Reply {
  readonly id: number
  readonly value?: unknown
  readonly error?: { readonly message: string; readonly code?: string }
  /** A write's first answer: a second (`synced` or `syncError`) follows once it is on disk. */
  readonly syncing?: boolean
  readonly synced?: boolean
  readonly syncError?: { readonly message: string; readonly code?: string }
}

/** A driver-like error, so describeStoreFault and the transient retry read its code as better-sqlite3's. */
const driverError = (error: { readonly message: string; readonly code?: string }) =>
  Object.assign(new Error(error.message), error.code === undefined ? {} : { code: error.code })

const storeFailure = (cause: unknown, message: string) => new StoreFailure({ cause, message })

const workerUrl = new URL("./sqliteWriter.worker.mjs", import.meta.url)

type Resume = (effect: Effect.Effect<unknown, StoreFailure>) => void

/** An answer that comes once, awaited by any number of fibers, or none. */
class Latch {
  private result: Effect.Effect<void, StoreFailure> | undefined
  private waiters: Array<Resume> = []
  done(result: Effect.Effect<void, StoreFailure>) {
    if (this.result !== undefined) return
    this.result = result
    for (const w of this.waiters) w(result)
    this.waiters = []
  }
  readonly await: Effect.Effect<void, StoreFailure> = Effect.suspend(() =>
    this.result !== undefined ? this.result : Effect.async<void, StoreFailure>((resume) => void this.waiters.push(resume as Resume))
  )
}

/**
 * The thread and its requests. It answers them one at a time, in order; an
 * answer (a write's, and its sync's) that does not come within `timeoutMs`
 * fails (a disk that stops answering fails the commits it holds rather than
 * holding them forever). A thread that stops fails what it held, and the
 * next request starts another.
 */
const connect = (filename: string, sync: Sync, timeoutMs: number) => {
  let worker: Worker | undefined
  let nextId = 0
  const pending = new Map<number, { readonly resume: Resume; readonly timer: NodeJS.Timeout }>()
  // When each write and each sync asked for is on disk (or will not be), by request id, in order: a read
  // waits for those asked for before it (`settled`). A write's sync gets a timer of its own once the write
  // is committed; a sync request is bounded by its request's.
  const durable = new Map<number, { readonly latch: Latch; readonly op: "write" | "sync"; timer?: NodeJS.Timeout }>()
  const timedOut = (what: string) =>
    storeFailure(Object.assign(new Error(`the store did not answer within ${timeoutMs} ms`), { code: "SQLITE_IOERR" }), `${what}: timed out`)

  const answer = (id: number, effect: Effect.Effect<unknown, StoreFailure>) => {
    const waiting = pending.get(id)
    if (waiting === undefined) return
    pending.delete(id)
    clearTimeout(waiting.timer)
    waiting.resume(effect)
  }
  const onDisk = (id: number, effect: Effect.Effect<void, StoreFailure>) => {
    const waiting = durable.get(id)
    if (waiting === undefined) return
    durable.delete(id)
    clearTimeout(waiting.timer)
    waiting.latch.done(effect)
  }

  const receive = (reply: Reply) => {
    if (reply.synced === true) return onDisk(reply.id, Effect.void)
    if (reply.syncError !== undefined) return onDisk(reply.id, Effect.fail(storeFailure(driverError(reply.syncError), reply.syncError.message)))
    if (reply.error !== undefined) {
      const failure = storeFailure(driverError(reply.error), reply.error.message)
      // A write that failed committed nothing: nothing of it to wait for. A sync that failed fails its waiters.
      onDisk(reply.id, durable.get(reply.id)?.op === "write" ? Effect.void : Effect.fail(failure))
      return answer(reply.id, Effect.fail(failure))
    }
    if (reply.syncing !== true) {
      onDisk(reply.id, Effect.void)
      return answer(reply.id, Effect.succeed(reply.value))
    }
    // Committed: the sync follows (or does not come in time).
    const waiting = durable.get(reply.id)
    if (waiting === undefined) return answer(reply.id, Effect.fail(timedOut("the writer's transaction failed")))
    waiting.timer = setTimeout(() => onDisk(reply.id, Effect.fail(timedOut("the disk did not finish a sync"))), timeoutMs)
    answer(reply.id, Effect.succeed({ outcomes: reply.value as ReadonlyArray<PlanOutcome>, synced: waiting.latch.await } satisfies Written))
  }

  const post = (request: Request) => {
    const id = ++nextId
    const target = worker ?? start()
    target.postMessage(extend(request, { id }))
    if (request.op === "write" || request.op === "sync") durable.set(id, { latch: new Latch(), op: request.op })
    return id
  }

  const start = () => {
    // Its heap holds only the batch in hand: a young generation of 4 MiB (V8's default grows to 16 per
    // semi-space) keeps about 15 MiB less resident under load, at no cost measured.
    const started = new Worker(workerUrl, { resourceLimits: { maxYoungGenerationSizeMb: 4 } })
    // The thread never keeps the process alive by itself: a request waiting for it has its timer.
    started.unref()
    started.on("message", receive)
    const stopped = (cause: unknown) => {
      if (worker !== started) return
      worker = undefined
      const failure = storeFailure(cause, "the writer's thread stopped")
      for (const id of [...pending.keys()]) answer(id, Effect.fail(failure))
      for (const id of [...durable.keys()]) onDisk(id, Effect.fail(failure))
    }
    started.on("error", stopped)
    started.on("exit", (code) => stopped(new Error(`the writer's thread exited with code ${code}`)))
    worker = started
    // Opened first, before any request the caller makes: the thread answers in order.
    post({ op: "open", filename, sync })
    return started
  }

  const request = (make: () => Request, what: string) =>
    Effect.async<unknown, StoreFailure>((resume) => {
      let id: number
      try {
        id = post(make())
      } catch (cause) {
        return resume(Effect.fail(storeFailure(cause, `${what}: the writer's thread cannot be reached`)))
      }
      pending.set(id, {
        resume,
        timer: setTimeout(() => {
          // A write not answered in time may still commit: nothing it wrote is known to be on disk.
          onDisk(id, Effect.fail(timedOut(what)))
          answer(id, Effect.fail(timedOut(what)))
        }, timeoutMs)
      })
    })

  /**
   * Immediate unless a write or sync asked for before it is not on disk yet; then it waits for those
   * (not for later ones: under a steady load a read is not held forever).
   */
  const settledUpTo = (upTo: number): Effect.Effect<void, StoreFailure> => {
    const first = durable.entries().next()
    if (first.done === true || first.value[0] > upTo) return Effect.void
    return Effect.flatMap(first.value[1].latch.await, () => settledUpTo(upTo))
  }
  const settled = Effect.suspend(() => (durable.size === 0 ? Effect.void : settledUpTo(nextId)))

  const close = Effect.async<void>((resume) => {
    const current = worker
    if (current === undefined) return resume(Effect.void)
    worker = undefined
    // Every request before it is answered first; a thread that does not stop in time is stopped.
    const timer = setTimeout(() => void current.terminate(), 5_000)
    current.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    current.postMessage({ op: "close", id: ++nextId })
  })

  return { request, close, settled }
}

/**
 * The connection, opened on a store whose schema is in place; closed (after
 * every request before it is answered) when the scope closes.
 */
export const layer = (filename: string, options: { readonly sync: Sync; readonly timeoutMs?: number }) =>
  Layer.scoped(
    SqliteCommits,
    Effect.gen(function* () {
      const thread = yield* Effect.acquireRelease(
        Effect.sync(() => connect(filename, options.sync, options.timeoutMs ?? 10_000)),
        (thread) => thread.close
      )
      // Open it now: a file that cannot be opened fails the layer, not the first commit.
      yield* Effect.mapError(
        thread.request(() => ({ op: "ping" }), "open"),
        (e) => storeFailure(e.cause, `cannot open ${filename} for writing`)
      )
      const write = (plans: ReadonlyArray<CommitPlan>) =>
        Effect.map(
          thread.request(() => ({ op: "write", plans }), "the writer's transaction failed"),
          (value) =>
            // Without syncs here (sync "none") the thread answers with the outcomes alone.
            Array.isArray(value) ? { outcomes: value as ReadonlyArray<PlanOutcome>, synced: Effect.void } : (value as Written)
        )
      const load = (taskId: string) =>
        thread.request(() => ({ op: "load", taskId }), "cannot read a task's row") as Effect.Effect<string | undefined, StoreFailure>
      const pragma = (statement: string) => thread.request(() => ({ op: "pragma", statement }), `PRAGMA ${statement} failed`)
      const sync = Effect.asVoid(thread.request(() => ({ op: "sync" }), "cannot sync the store"))
      return SqliteCommits.of({ write, load, pragma, sync, settled: thread.settled })
    })
  )
