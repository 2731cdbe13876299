import { Cause, Clock, Context, Data, Duration, Effect, Either, Exit, FiberId, Layer, Option, Queue, type Tracer } from "effect"
import { SqlClient } from "@effect/sql"
import { extend } from "../domain/extend.js"
import { type AnySnapshot, type Command, decide, decideAll, detach, initialState, type Refusal, type TaskSnapshot } from "../domain/Task.js"
import { isTerminal } from "../domain/TaskState.js"
import type { VersionedEvent } from "../domain/TaskEvent.js"
import { EventLog, VersionConflict } from "../eventlog/EventLog.js"
import { type Lease, LeaseStore } from "../eventlog/LeaseStore.js"
import { OutboxSignal } from "../push/Deliverer.js"
import type { PushConfig } from "../push/PushConfig.js"
import { PushStore } from "../push/PushStore.js"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { MessageIndex, type MessageKey } from "../projections/MessageIndex.js"
import { describeStoreFault, storeFailing } from "../eventlog/StoreFailure.js"
import { StoreFile, type StoreFileGone } from "../eventlog/StoreFile.js"
import { PgCommits } from "../eventlog/PgCommits.js"
import { type CommitPlan, eventRow, SqliteCommits, type Written } from "../eventlog/SqliteCommits.js"
import { retryTransient } from "../eventlog/Transient.js"
import { inlineVersions, parseStored, taskRow } from "../projections/TaskReadModel.js"
import { configRow } from "../push/PushStore.js"
import { Answer } from "./Answer.js"
import { EngineConfig } from "./EngineConfig.js"
import { DuplicateMessage, LeaseLost, StoreFailure, TaskNotFound } from "./errors.js"
import { CommitFeed } from "./CommitFeed.js"
import { EventHub } from "./EventHub.js"
import { InstanceId } from "./InstanceId.js"
import * as KeyedLock from "./KeyedLock.js"
import { EngineMetrics } from "../observability/Metrics.js"
import { isTracing, traced } from "../observability/Tracing.js"

/** The machine refused the command; nothing was written. */
export class CommandRefused extends Data.TaggedError("CommandRefused")<{
  readonly taskId: string
  readonly refusal: Refusal
  readonly message: string
}> {
  constructor(taskId: string, refusal: Refusal) {
    super({ taskId, refusal, message: refusal._tag === "TaskIsTerminal" ? `task ${taskId} is already ${refusal.state}` : refusal.detail })
  }
}

/**
 * Why a commit did not happen: unknown task, refused by the machine, the
 * worker's lease is gone, the user message was already accepted, or the store failed.
 */
export type CommitError = TaskNotFound | CommandRefused | LeaseLost | DuplicateMessage | StoreFailure

/**
 * What one commit records: a command, or several decided as one (a worker
 * turn's start with its first emission), each on the state the ones before
 * it leave; all of their facts land, or none.
 */
export type Commands = Command | ReadonlyArray<Command>

const decideCommands = (s: AnySnapshot, commands: Commands, at: string) =>
  isCommandList(commands) ? decideAll(s, commands, at) : decide(s, commands, at)

const isCommandList = (commands: Commands): commands is ReadonlyArray<Command> => Array.isArray(commands)

/** The command that leads: a list's first (a handed-off task's Submit leads its turn's first commit). */
const leading = (commands: Commands): Command | undefined => (isCommandList(commands) ? commands[0] : commands)

const startsTask = (commands: Commands) => leading(commands)?.type === "Submit"

/** The user message a commit records, keyed for idempotency: its leading Submit's, or ProvideInput's. */
const messageKeyOf = (s: AnySnapshot, commands: Commands): MessageKey | undefined => {
  const command = leading(commands)
  if (command === undefined) return undefined
  switch (command.type) {
    case "Submit":
      return { tenant: command.tenant, owner: command.owner, messageId: command.message.messageId }
    case "ProvideInput":
      return { tenant: s.tenant, owner: s.owner, messageId: command.message.messageId }
    default:
      return undefined
  }
}

/** A commit's fence as a plan carries it. */
const fenceOf = (fence: NonNullable<CommitOptions["fence"]>): NonNullable<CommitPlan["fence"]> => ({
  owner: fence.owner,
  epoch: fence.lease.epoch,
  ...(fence.createUntil !== undefined ? { createUntil: fence.createUntil } : {})
})

/** Written in the same transaction as the command's events. */
export interface CommitOptions {
  /** A push config sent with the message (SendMessage's configuration), so the task's first events reach it. */
  readonly pushConfig?: Omit<PushConfig, "taskId" | "tenant">
  /**
   * A user message whose messageId is already taken: refused as a DuplicateMessage
   * (default), or, with idempotency off, accepted anyway (its key stays with the first task).
   */
  readonly duplicates?: "refuse" | "accept"
  /**
   * A worker's commit on a shared store: written only while `owner` still holds this lease. With
   * `createUntil` (epoch ms), the first commit of a task handed straight to a worker: the lease is made
   * with the task instead (its id is new, so nobody else can hold it).
   */
  readonly fence?: { readonly owner: string; readonly lease: Lease; readonly createUntil?: number }
  /**
   * Answer once committed, before the commit is synced to disk (a worker's own emissions: the agent goes
   * on at once). Its events are still published only after the sync, so no client sees them sooner, and
   * a sync that fails still fails the store. Everyone else is answered after the sync (Durability).
   */
  readonly answerAtCommit?: boolean
}

export interface CommitResult {
  /** The task as this commit left it: detached (its head only) for a big task (TaskReadModel.whole). */
  readonly snapshot: TaskSnapshot
  readonly events: ReadonlyArray<VersionedEvent>
  /**
   * Answered at commit (`answerAtCommit`) before the disk sync: succeeds once the commit is on disk, fails
   * if that sync failed. Absent when the answer came after the sync (or the store's commit is durable).
   */
  readonly synced?: Effect.Effect<void, StoreFailure>
}

/**
 * The one writer per task. A commit loads the task's state, lets the decider
 * judge the command, appends the new facts at the expected version and saves
 * the folded read-model row in one transaction, then publishes to the hub.
 *
 * Commits from all tasks go through one committer fiber, which drains a FIFO
 * queue and writes each batch in a single transaction (group commit): one
 * fsync for many tasks, and no starvation under load. Callers hold their
 * task's lock while they wait, so a batch never holds two commands for the
 * same task. Waiting is uninterruptible: a caller never walks away from a
 * fact that may be committed but not yet announced.
 *
 * A store fault (disk full, a lost connection, a locked file) fails the
 * commands of the batch it hit with a StoreFailure, and nothing else: the
 * committer goes on with the next batch, so service comes back by itself when
 * the store does. Every wait is bounded by the engine's store timeout: a
 * batch the store does not finish in time is answered as failed, and a
 * command that waited in the queue longer than that is refused unwritten.
 */
export class TaskWriter extends Context.Tag("a2a-ledger/TaskWriter")<
  TaskWriter,
  {
    readonly commit: (taskId: string, command: Commands, options?: CommitOptions) => Effect.Effect<CommitResult, CommitError>
    /** Run `effect` holding the task's lock; `commitHeld` may be used inside it. */
    readonly withTaskLock: (taskId: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
    readonly commitHeld: (taskId: string, command: Commands, options?: CommitOptions) => Effect.Effect<CommitResult, CommitError>
    /**
     * The task as last committed (from memory while it is unfinished, else read), for a decision under the
     * task's lock: detached for a big task. It may not be on disk yet: never show it to a client.
     */
    readonly current: (taskId: string) => Effect.Effect<Option.Option<TaskSnapshot>, StoreFailure>
    /** Whether the store takes commits (tried again now if it was failing): what readiness reports. */
    readonly health: Effect.Effect<StoreHealth>
  }
>() {}

/** The store as the writer last found it: taking commits, or failing since `since` (epoch ms). */
export type StoreHealth = { readonly ok: true } | { readonly ok: false; readonly since: number; readonly reason: string }

interface WriteResult extends CommitResult {
  /** Webhook deliveries queued with the events. */
  readonly queued: number
}

interface Pending {
  readonly taskId: string
  readonly command: Commands
  readonly options: CommitOptions | undefined
  /** Answers the caller; only the first answer counts. */
  readonly done: (answer: Exit.Exit<CommitResult, CommitError>) => void
  /** When the caller stops waiting for a batch to take it (epoch ms): past it, it is refused unwritten. */
  readonly deadline: number
  /** The caller's span (tracing on): the batch's span links to it. */
  readonly span?: Tracer.AnySpan | undefined
}

/** A command's types, for its span. */
const commandTypes = (commands: Commands) => (Array.isArray(commands) ? commands.map((c: Command) => c.type).join(",") : (commands as Command).type)

/** A store's one call per batch: the SQLite writer's thread, or PostgreSQL's batch function. */
interface BatchCommits {
  readonly write: (plans: ReadonlyArray<CommitPlan>) => Effect.Effect<Written, StoreFailure>
  readonly load: (taskId: string) => Effect.Effect<string | undefined, StoreFailure>
}

/** The most commands written in one transaction. */
const maxBatch = 256

/** Decisions per command when the log keeps moving under it (shared store). */
const maxAttempts = 3

/** While the store is failing and nothing else writes, how often a probe tries it again. */
const probeInterval = Duration.seconds(1)
const maxProbeInterval = Duration.seconds(10)

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  /** A transaction on the store's client, failing as the store services do. */
  const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>) => storeFailing(sql.withTransaction(effect))
  const log = yield* EventLog
  const readModel = yield* TaskReadModel
  const hub = yield* EventHub
  const instanceId = yield* InstanceId
  const push = yield* PushStore
  const outbox = yield* OutboxSignal
  const feed = yield* CommitFeed
  const metrics = yield* EngineMetrics
  const leases = yield* LeaseStore
  const messages = yield* MessageIndex
  const { storeTimeoutMs, idempotencyWindowMs } = yield* EngineConfig
  const file = yield* StoreFile
  // SQLite: the writer's own connection, one call per batch (SqliteCommits); elsewhere the generic path below.
  // PostgreSQL: one statement per batch (PgCommits), answered at commit like SQLite's thread.
  const sqliteCommits = yield* Effect.serviceOption(SqliteCommits)
  const pgCommits = yield* Effect.serviceOption(PgCommits)
  const lean: Option.Option<BatchCommits> = Option.orElse(sqliteCommits, () => pgCommits)
  const metadata = JSON.stringify({ instanceId })
  const lock = yield* KeyedLock.make
  const queue = yield* Queue.unbounded<Pending>()
  // Committed snapshots of unfinished tasks: saves reading and parsing the row on every command.
  // Only this committer writes (one engine per store), and it updates the cache only after a commit.
  // A big task's is kept detached, as its row is (its history and artifacts are in its events): ten
  // thousand tasks sixty messages long hold their heads only, and a fact does not copy the history.
  // Its next decisions stay detached, and so do the snapshots its commits answer with: whoever shows
  // the task to an agent or a client makes it whole first (TaskReadModel.whole).
  const cache = new Map<string, TaskSnapshot>()
  const maxCached = 10_000
  const remember = (s: TaskSnapshot) => {
    const id = s.task.id
    cache.delete(id)
    if (isTerminal(s.state)) return
    cache.set(id, s.version > inlineVersions ? detach(s) : s)
    if (cache.size > maxCached) cache.delete(cache.keys().next().value!)
  }

  /**
   * Decide and write one command inside the batch's transaction. A refusal
   * is this command's answer (nothing of it was written); a SQL error fails
   * the whole batch.
   *
   * When the log is ahead of what the command was decided on (another writer
   * on a shared store committed first, so the cached snapshot was stale), the
   * append is refused by version; the command is then decided again on the
   * committed state, a few times at most. The machine judges it again too,
   * and a refusal judged on the cache is confirmed on the committed state.
   */
  const write = (p: Pending, at: string, now: number): Effect.Effect<Either.Either<WriteResult, CommitError>, StoreFailure> =>
    Effect.gen(function* () {
      let attempt = 0
      for (;;) {
        const cached = attempt === 0 ? cache.get(p.taskId) : undefined
        const current = cached ?? Option.getOrElse(yield* readModel.load(p.taskId), () => initialState)
        if (current.version === 0 && !startsTask(p.command)) return Either.left(new TaskNotFound({ taskId: p.taskId }))
        const fence = p.options?.fence
        if (fence !== undefined && fence.createUntil === undefined && !(yield* leases.holds(fence.owner, fence.lease, now))) {
          return Either.left(new LeaseLost({ taskId: p.taskId, epoch: fence.lease.epoch }))
        }
        const decision = decideCommands(current, p.command, at)
        if (!decision.ok) {
          // A refusal judged on a cached snapshot is confirmed on the committed state first.
          if (cached !== undefined) {
            cache.delete(p.taskId)
            attempt++
            continue
          }
          return Either.left(new CommandRefused(p.taskId, decision.refusal))
        }
        const append = log.append(p.taskId, current.version, decision.events, { instanceId })
        const key = messageKeyOf(current, p.command)
        // The message's key and its event are written together or not at all (a savepoint):
        // a duplicate racing past the engine's look-up loses here, at the key.
        const appended = yield* (
          key === undefined ? append : claimThenAppend(key, p.taskId, current.version + 1, now, append, p.options?.duplicates ?? "refuse")
        ).pipe(Effect.either)
        if (Either.isLeft(appended) && appended.left instanceof DuplicateMessage) return Either.left(appended.left)
        // Anything but a version conflict is the store failing: the transaction may be gone, so the whole batch fails.
        if (Either.isLeft(appended) && appended.left._tag === "StoreFailure") return yield* Effect.fail(appended.left)
        if (Either.isLeft(appended)) {
          cache.delete(p.taskId)
          if (++attempt < maxAttempts) continue
          return Either.left(new StoreFailure({ cause: appended.left }))
        }
        if (fence?.createUntil !== undefined) yield* leases.create(fence.owner, fence.lease, fence.createUntil)
        return Either.right(yield* saveAndEnqueue(p, now, decision.state, appended.right))
      }
    })

  /** The committed task through a store's batch connection (a detached row completed from its events). */
  const loadFrom = (commits: BatchCommits, taskId: string) =>
    Effect.flatMap(commits.load(taskId), (json) =>
      json === undefined ? Effect.succeed(Option.none<TaskSnapshot>()) : Effect.map(Effect.flatMap(parseStored(json), readModel.whole), Option.some)
    )

  /**
   * A command decided into a plan for SqliteCommits: on the cached state, or
   * on the committed row (a refusal judged on the cache is confirmed there).
   */
  const planFor = Effect.fnUntraced(function* (commits: BatchCommits, p: Pending, at: string, now: number, attempt: number) {
    // A new task's first command is decided on the initial state without a read (a round trip to the
    // writer's thread): were the id taken after all, its insert would be refused and it decided again.
    let cached = cache.get(p.taskId) ?? (attempt === 0 && startsTask(p.command) ? initialState : undefined)
    for (;;) {
      const current = cached ?? Option.getOrElse(yield* loadFrom(commits, p.taskId), () => initialState)
      if (current.version === 0 && !startsTask(p.command)) return Either.left<CommitError>(new TaskNotFound({ taskId: p.taskId }))
      const decision = decideCommands(current, p.command, at)
      if (!decision.ok) {
        if (cached !== undefined) {
          cache.delete(p.taskId)
          cached = undefined
          continue
        }
        return Either.left<CommitError>(new CommandRefused(p.taskId, decision.refusal))
      }
      const snapshot = decision.state
      const key = messageKeyOf(current, p.command)
      const pushConfig = p.options?.pushConfig
      const plan: CommitPlan = {
        taskId: p.taskId,
        expectedVersion: current.version,
        events: decision.events.map(eventRow),
        metadata,
        row: taskRow(snapshot),
        now,
        at,
        ...(p.options?.fence !== undefined ? { fence: fenceOf(p.options.fence) } : {}),
        ...(key !== undefined
          ? { messageKey: extend(key, { duplicates: p.options?.duplicates ?? "refuse", expiresBefore: now - idempotencyWindowMs }) }
          : {}),
        ...(pushConfig !== undefined ? { pushConfig: configRow(extend(pushConfig, { taskId: p.taskId, tenant: snapshot.tenant })) } : {})
      }
      const events = decision.events.map((event, i): VersionedEvent => ({ taskId: p.taskId, version: current.version + i + 1, event }))
      return Either.right({ plan, snapshot, events })
    }
  })

  /**
   * A batch on the writer's own SQLite connection: decide every command, then
   * one call writes them all. A plan refused by version (the row moved under
   * a stale cache: a tool wrote the file) is decided again on the committed
   * row in a second transaction, a few times at most.
   */
  const writeLean = Effect.fnUntraced(function* (commits: BatchCommits, pending: ReadonlyArray<Pending>, at: string, now: number) {
    const results: Array<Either.Either<WriteResult, CommitError>> = new Array(pending.length)
    // When each round's commit is on disk.
    const synced: Array<Effect.Effect<void, StoreFailure>> = []
    let todo = pending.map((_, i) => i)
    for (let attempt = 0; todo.length > 0; attempt++) {
      const planned: Array<{
        readonly i: number
        readonly plan: CommitPlan
        readonly snapshot: TaskSnapshot
        readonly events: ReadonlyArray<VersionedEvent>
      }> = []
      for (const i of todo) {
        const decided = yield* planFor(commits, pending[i]!, at, now, attempt)
        if (Either.isLeft(decided)) results[i] = Either.left(decided.left)
        else planned.push({ i, ...decided.right })
      }
      if (planned.length === 0) break
      // Retried alone when the lock is busy: an earlier round of this batch is committed already, so
      // a later round that fails fails only its own commands, not the batch.
      const written = retryTransient(commits.write(planned.map((x) => x.plan)))
      const round = attempt === 0 ? yield* written : yield* Effect.orElseSucceed(written, () => undefined)
      if (round === undefined) {
        for (const { i } of planned) results[i] = Either.left(new StoreFailure({ cause: `task ${pending[i]!.taskId} could not be written again` }))
        break
      }
      synced.push(round.synced)
      todo = []
      for (const [j, outcome] of round.outcomes.entries()) {
        const { i, snapshot, events } = planned[j]!
        if (outcome._tag === "Written") results[i] = Either.right({ snapshot, events, queued: outcome.queued })
        else if (outcome._tag === "Duplicate") results[i] = Either.left(new DuplicateMessage({ taskId: outcome.taskId, version: outcome.version }))
        else if (outcome._tag === "LeaseLost")
          results[i] = Either.left(new LeaseLost({ taskId: pending[i]!.taskId, epoch: pending[i]!.options!.fence!.lease.epoch }))
        else {
          cache.delete(pending[i]!.taskId)
          if (attempt + 1 < maxAttempts) todo.push(i)
          else results[i] = Either.left(new StoreFailure({ cause: `task ${pending[i]!.taskId} kept changing under the writer` }))
        }
      }
    }
    return { results, synced: synced.length === 0 ? Effect.void : synced.length === 1 ? synced[0]! : Effect.all(synced, { discard: true }) }
  })

  const claimThenAppend = <A, E>(
    key: MessageKey,
    taskId: string,
    version: number,
    now: number,
    append: Effect.Effect<A, E | StoreFailure>,
    duplicates: "refuse" | "accept"
  ) =>
    transaction(
      Effect.gen(function* () {
        const expiresBefore = now - idempotencyWindowMs
        if (!(yield* messages.claim({ key, accepted: { taskId, version }, at: now }, expiresBefore)) && duplicates === "refuse") {
          const taken = yield* messages.find(key, expiresBefore)
          return yield* Option.match(taken, {
            // Claimed and gone again (pruned) between the two statements: the store moved under us, as when
            // another writer appended first. Decided again, as for that conflict.
            onNone: () => Effect.fail(new VersionConflict({ taskId, expectedVersion: version - 1, actualVersion: version - 1 })),
            onSome: (accepted) => Effect.fail(new DuplicateMessage(accepted))
          })
        }
        return yield* append
      })
    )

  const saveAndEnqueue = (p: Pending, now: number, snapshot: TaskSnapshot, events: ReadonlyArray<VersionedEvent>) =>
    Effect.gen(function* () {
      yield* readModel.save(snapshot)
      const pushConfig = p.options?.pushConfig
      if (pushConfig !== undefined) yield* push.saveConfig({ ...pushConfig, taskId: p.taskId, tenant: snapshot.tenant })
      const queued = yield* push.enqueue(p.taskId, snapshot.task.contextId, events, now)
      return { snapshot, events, queued } satisfies WriteResult
    })

  // Healthy, or failing since the first failed batch. Logged with its cause once per outage, and once
  // when it ends; an outage that flaps (the probe's small write passes, the next commit fails again)
  // gets a one-line warning per failure, without the cause, unless its reason changed or a minute passed.
  let health: StoreHealth = { ok: true }
  let refused = 0
  let lastLogged = { reason: "", at: 0 }
  const faulted = (cause: Cause.Cause<unknown>, commands: number) =>
    Effect.gen(function* () {
      refused += commands
      if (!health.ok) return
      const reason = describeStoreFault(Cause.squash(cause))
      const now = yield* Clock.currentTimeMillis
      health = { ok: false, since: now, reason }
      if (reason === lastLogged.reason && now - lastLogged.at < 60_000) {
        return yield* Effect.logWarning(`the store failed again (${reason})`)
      }
      lastLogged = { reason, at: now }
      yield* Effect.logError(`the store failed (${reason}); commands are refused until it recovers`, cause)
    })
  const recovered = Effect.gen(function* () {
    if (health.ok) return
    const seconds = ((yield* Clock.currentTimeMillis) - health.since) / 1000
    yield* Effect.logInfo(`the store recovered after ${seconds.toFixed(1)} s; ${refused} command(s) were refused meanwhile`)
    health = { ok: true }
    refused = 0
  })

  /**
   * Run a transaction on the store, and answer within the store timeout.
   * Every cause counts as a fault here, defects included. (The store's
   * transactions end themselves cleanly on failure: Transactions.ts.)
   *
   * On PostgreSQL the transaction runs in a fiber of its own and a timer
   * answers for it when it is late, so a server that stops answering cannot
   * hold the committer (or a shutdown) past the timeout. A SQLite transaction
   * is a few synchronous calls that never wait for a lock (busy_timeout 0;
   * a busy lock is retried here, for about 1.3 s), so it needs neither.
   */
  const retried = <A>(transaction: Effect.Effect<A, StoreFailure>) =>
    // The file the store writes must still be the one at its path (StoreFile): else nothing is written.
    Effect.zipRight(
      file.check,
      // A deadlock, a serialization failure or a busy lock wrote nothing: the batch is decided and written again.
      retryTransient(transaction)
    )
  const inFiber = <A>(transaction: Effect.Effect<A, StoreFailure>) =>
    Effect.gen(function* () {
      const result = new Answer<A, StoreFailure | StoreFileGone>()
      yield* retried(transaction).pipe(
        Effect.exit,
        Effect.flatMap((exit) => Effect.sync(() => result.complete(exit))),
        Effect.forkDaemon
      )
      const timer = setTimeout(
        () => result.complete(Exit.fail(new StoreFailure({ cause: "timeout", reason: `the store did not answer within ${storeTimeoutMs} ms` }))),
        storeTimeoutMs
      )
      return yield* result.await.pipe(Effect.ensuring(Effect.sync(() => clearTimeout(timer))), Effect.exit)
    })
  const inPlace = <A>(transaction: Effect.Effect<A, StoreFailure>): Effect.Effect<Exit.Exit<A, StoreFailure | StoreFileGone>> =>
    Effect.exit(retried(transaction))
  const bounded = sql.onDialectOrElse({ sqlite: () => inPlace, orElse: () => inFiber })

  const announced = (results: ReadonlyArray<Either.Either<WriteResult, CommitError>>) =>
    results.flatMap((r) =>
      r._tag === "Right" ? [{ taskId: r.right.snapshot.task.id, contextId: r.right.snapshot.task.contextId, version: r.right.snapshot.version }] : []
    )

  /** Answer a committed batch's callers when its commit is on disk (`synced`); a failed sync fails them all. */
  const answer = (
    pending: ReadonlyArray<Pending>,
    results: ReadonlyArray<Either.Either<WriteResult, CommitError>>,
    synced: Effect.Effect<void, StoreFailure>,
    began: number
  ) =>
    Effect.matchCauseEffect(synced, {
      onFailure: (cause) =>
        Effect.gen(function* () {
          for (const p of pending) cache.delete(p.taskId)
          yield* faulted(cause, pending.length)
          const failure = new StoreFailure({ cause: Cause.squash(cause) })
          for (const p of pending) p.done(Exit.fail(failure))
        }),
      onSuccess: () =>
        Effect.gen(function* () {
          yield* recovered
          if (metrics.enabled) metrics.batch((performance.now() - began) / 1000, pending.length)
          if (results.some((r) => r._tag === "Right" && r.right.queued > 0)) yield* outbox.wake
          // Published here below: the notices of these versions need no read when they come back.
          feed.published(announced(results))
          for (const [i, result] of results.entries()) {
            const p = pending[i]!
            if (result._tag === "Left") {
              p.done(Exit.fail(result.left))
              continue
            }
            const { snapshot, events } = result.right
            metrics.committed(events, snapshot)
            const contextId = snapshot.task.contextId
            const lastIndex = events.length - 1
            yield* hub.publish(events.map((e, i) => (i === lastIndex ? extend(e, { contextId, snapshot }) : extend(e, { contextId }))))
            p.done(Exit.succeed({ snapshot, events }))
          }
        })
    }).pipe(Effect.catchAllDefect((defect) => Effect.logError("the committer failed to answer a batch", defect)))

  const runBatch = (batch: Iterable<Pending>) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      // A command that waited in the queue past its deadline (the batches before it were slow or
      // stuck) is refused, not written: its caller is answered now, within about twice the timeout.
      const pending: Array<Pending> = []
      for (const p of batch) {
        if (p.deadline >= now) pending.push(p)
        else {
          const reason = `the store did not take the command within ${storeTimeoutMs} ms`
          p.done(Exit.fail(new StoreFailure({ cause: "timeout", reason })))
        }
      }
      if (pending.length === 0) return Effect.void
      const at = new Date(now).toISOString()
      // A notice of this batch's commits that comes back before the batch's answer waits for it (CommitFeed):
      // it lands once the batch is answered (on a store that syncs, once its answer is on its way).
      const flight = feed.landing(pending.map((p) => p.taskId))
      const written = Effect.ensuring(writeAndAnswer(pending, at, now), Effect.sync(flight.landed))
      // Traced: the batch is a span of its own, linked to each command's (a batch serves many traces).
      const links = pending.flatMap((p): Array<Tracer.SpanLink> => (p.span !== undefined ? [{ _tag: "SpanLink", span: p.span, attributes: {} }] : []))
      return links.length === 0
        ? written
        : Effect.withSpan(written, "a2a_ledger.commit_batch", {
            root: true,
            links,
            captureStackTrace: false,
            attributes: { "a2a_ledger.batch.size": pending.length }
          })
    }).pipe(
      // Whatever happens in a batch, the committer lives on to take the next one.
      Effect.catchAllDefect((defect) => Effect.logError("the committer failed on a batch", defect)),
      Effect.uninterruptible
    )

  const writeAndAnswer = Effect.fnUntraced(function* (pending: ReadonlyArray<Pending>, at: string, now: number) {
    const began = metrics.enabled ? performance.now() : 0
    const outcome = yield* Option.match(lean, {
      // One call per batch (its transient retry is per write, inside). SQLite: the writer's thread, which
      // checks the file (StoreFile) before each; PostgreSQL: bounded by the store timeout like any batch.
      onSome: (commits) =>
        Option.isSome(sqliteCommits) ? Effect.exit(writeLean(commits, pending, at, now)) : inFiber(writeLean(commits, pending, at, now)),
      onNone: () =>
        Effect.map(
          bounded(
            transaction(
              // Every process hears of the batch's new versions (CommitFeed), in one statement, when it commits.
              Effect.tap(
                Effect.forEach(pending, (p) => write(p, at, now)),
                (results) => feed.announce(announced(results))
              )
            )
          ),
          Exit.map((results) => ({ results, synced: Effect.void }))
        )
    })
    if (Exit.isFailure(outcome)) {
      for (const p of pending) cache.delete(p.taskId)
      yield* faulted(outcome.cause, pending.length)
      const squashed = Cause.squash(outcome.cause)
      const failure = squashed instanceof StoreFailure ? squashed : new StoreFailure({ cause: squashed })
      for (const p of pending) p.done(Exit.fail(failure))
      return
    }
    const { results, synced } = outcome.value
    // The next batch is decided on these states, so the cache takes them now.
    for (const result of results) if (result._tag === "Right") remember(result.right.snapshot)
    if (synced === Effect.void) return yield* answer(pending, results, synced, began)
    // The callers are answered (and the events published) once the commit is on disk, while the
    // committer goes on with the next batch; a worker's emissions are answered at commit.
    for (const [i, result] of results.entries()) {
      const p = pending[i]!
      if (result._tag === "Right" && p.options?.answerAtCommit === true) {
        p.done(Exit.succeed({ snapshot: result.right.snapshot, events: result.right.events, synced }))
      }
    }
    yield* Effect.forkDaemon(answer(pending, results, synced, began))
  })

  // While the store is failing and nobody commits, try it now and then (every second, backing off to
  // every ten), so service and readiness come back by itself; a readiness check tries it at once (at
  // most once a second). The probe rewrites one row of the migrations table in place: it needs the
  // write lock and room in the journal, as a commit does, and changes nothing.
  const probeStatement = sql`UPDATE a2a_migrations SET name = name WHERE migration_id = (SELECT MIN(migration_id) FROM a2a_migrations)`
  let lastProbe = 0
  const probe = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (health.ok || now - lastProbe < Duration.toMillis(probeInterval) || (yield* Queue.size(queue)) > 0) return health
    lastProbe = now
    const outcome = yield* bounded(transaction(probeStatement))
    if (Exit.isSuccess(outcome)) yield* recovered
    return health
  })
  yield* Effect.gen(function* () {
    let wait = probeInterval
    for (;;) {
      yield* Effect.sleep(wait)
      wait = (yield* probe).ok ? probeInterval : Duration.min(Duration.times(wait, 2), maxProbeInterval)
    }
  }).pipe(Effect.forkScoped)

  // At shutdown: the committer finishes its batch, then whatever is still queued is refused.
  yield* Effect.addFinalizer(() =>
    Queue.takeAll(queue).pipe(
      Effect.flatMap((rest) =>
        Effect.sync(() => {
          for (const p of rest) p.done(Exit.fail(new StoreFailure({ cause: "shutdown", reason: "the engine is shutting down" })))
        })
      ),
      Effect.zipRight(Queue.shutdown(queue))
    )
  )
  yield* Queue.takeBetween(queue, 1, maxBatch).pipe(Effect.flatMap(runBatch), Effect.forever, Effect.forkScoped)

  const commitHeld = (taskId: string, command: Commands, options?: CommitOptions) =>
    Effect.uninterruptible(
      Effect.withFiberRuntime<CommitResult, CommitError>((fiber) => {
        const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        const span = isTracing(fiber) ? fiber.currentSpan : undefined
        // Uninterruptible, so it needs no canceler: the committer answers through the fiber's own resume.
        return Effect.async<CommitResult, CommitError>((resume) => {
          let answered = false
          const done = (answer: Exit.Exit<CommitResult, CommitError>) => {
            if (answered) return
            answered = true
            resume(answer)
          }
          // Refused once the queue is shut down (the engine is stopping), as `Queue.offer` would be.
          if (!Queue.unsafeOffer(queue, { taskId, command, options, done, deadline: now + storeTimeoutMs, span })) done(Exit.interrupt(FiberId.none))
        })
      })
    ).pipe(traced("a2a_ledger.commit", () => ({ attributes: { "a2a.task.id": taskId, "a2a_ledger.commands": commandTypes(command) } })))

  const current = (taskId: string) => {
    const cached = cache.get(taskId)
    if (cached !== undefined) return Effect.succeed(Option.some(cached))
    return Option.match(lean, {
      onSome: (commits) => loadFrom(commits, taskId),
      onNone: () => readModel.load(taskId)
    })
  }

  return TaskWriter.of({
    current,
    commitHeld,
    withTaskLock: lock.withLock,
    health: probe,
    commit: (taskId, command, options) => lock.withLock(taskId)(commitHeld(taskId, command, options))
  })
})

export const layer = Layer.scoped(TaskWriter, make)
