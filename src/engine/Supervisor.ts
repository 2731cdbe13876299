import { Clock, Context, Duration, Effect, Fiber, FiberMap, Layer, Option, Queue, Schedule } from "effect"
import { type Command, decide, initialState, sleepingUntil, type TaskSnapshot } from "../domain/Task.js"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { CurrentAgent, EngineConfig, recoveryCommand } from "./EngineConfig.js"
import type { CommitError, CommitOptions, CommitResult, Commands } from "./TaskWriter.js"
import { Answer } from "./Answer.js"
import { InstanceId } from "./InstanceId.js"
import { TaskWriter } from "./TaskWriter.js"
import * as WorkerSlots from "./WorkerSlots.js"
import { journalLoader } from "./steps.js"
import { FairQueue, type Waiting } from "./FairQueue.js"
import { FlowControl, priorityOf, runningCounter } from "./FlowControl.js"
import type { StoreFailure } from "./errors.js"
import * as TimerQueue from "./TimerQueue.js"
import { RemoteAgents } from "./RemoteAgents.js"
import { failTask, finish, type HandedOff, handedOffCommits, runAgent, startWithFirstEmission, workerStarter } from "./turn.js"
import { EngineMetrics } from "../observability/Metrics.js"

/**
 * Owns the worker fibers. Tasks that need a turn are queued FIFO; one
 * dispatcher fiber starts them while fewer than `maxWorkers` run. Workers
 * live in a FiberMap keyed by task id inside the supervisor's own scope, so
 * no HTTP request owns them and a client disconnect stops nothing.
 *
 * Recovery: at start-up, the tasks a dead process left SUBMITTED or WORKING
 * are queued again (WORKING by the recovery policy). A turn that a store
 * fault stopped (its commits failed, so it could not even record FAILED) is
 * recovered the same way once the store takes commits again: it is tried
 * every second until then.
 *
 * Durable timers: a turn that parks on a long sleep (`ctx.sleep`) ends, and its task (WORKING, sleeping)
 * is kept in a timer queue, not a worker; when the timer is due the task is queued for a worker like a
 * new one, and its turn runs again (the timer fired, its journal replayed). At start-up a sleeping task is
 * put back in the timer queue, waiting only for what is left.
 */
export class Supervisor extends Context.Tag("a2a-ledger/Supervisor")<
  Supervisor,
  {
    /** Queue a SUBMITTED task for a worker turn. */
    readonly enqueue: (taskId: string) => Effect.Effect<void>
    /**
     * A task just recorded SUBMITTED, by a caller not holding its lock: its turn starts now on a worker
     * free now, or it is queued (`enqueue`). Saves the dispatcher's round for a task that need not wait.
     */
    readonly startOrEnqueue: (taskId: string) => Effect.Effect<void>
    /** Interrupt the task's worker, if any, and wait until it has stopped. Call under the task's lock. */
    readonly stop: (taskId: string) => Effect.Effect<void>
    /**
     * A new task straight to a free worker, its Submit not yet committed: the turn commits the Submit with
     * its start and its first emission, or its outcome (one commit for an agent that answers at once).
     * The answer is that first commit's: the send waits on it as it would on its own commit. None when no
     * worker is free for it (none free, or a queued task waits for one): commit the Submit instead, and
     * `startOrEnqueue` it.
     */
    readonly handOff: (taskId: string, submit: Command, options: CommitOptions) => Effect.Effect<Option.Option<Answer<CommitResult, CommitError>>>
  }
>() {}

export const make = Effect.gen(function* () {
  const config = yield* EngineConfig
  const agent = yield* CurrentAgent
  const writer = yield* TaskWriter
  const readModel = yield* TaskReadModel
  const instanceId = yield* InstanceId

  const loadJournal = yield* journalLoader
  const remote = yield* RemoteAgents
  const workers = yield* FiberMap.make<string>()
  const startWorker = yield* workerStarter(workers)
  const runtime = yield* Effect.runtime<never>()
  const flow = yield* FlowControl
  const metrics = yield* EngineMetrics
  // One process per SQLite file: no leases (the series is there, at 0, as on PostgreSQL between turns).
  yield* metrics.read("leasesHeld", Effect.succeed([[{}, 0]] as const))
  const counts = runningCounter(flow)
  // Tasks waiting for a worker, taken fairly across tenants and principals (FairQueue); the dispatcher is
  // woken when one is queued or a turn ends (a running limit may allow one more).
  const waiting = new FairQueue()
  const changed = yield* Queue.sliding<void>(1)
  const whoOf = (s: TaskSnapshot): Waiting => ({ taskId: s.task.id, tenant: s.tenant, principal: s.owner, priority: priorityOf(s.turnInput) })
  /** Queue a task for a worker (as it stands, `known`, or as the writer has it). */
  const queue = (taskId: string, known?: TaskSnapshot): Effect.Effect<void, StoreFailure> =>
    Effect.map(known !== undefined ? Effect.succeed(Option.some(known)) : writer.current(taskId), (current) => {
      if (Option.isNone(current)) return
      waiting.offer(whoOf(current.value))
      Queue.unsafeOffer(changed, undefined)
    })
  const slots = yield* WorkerSlots.make(config.maxWorkers)
  // Parked turns' tasks, woken when due (recover queues a due one; it looks at the task again first).
  const timers: TimerQueue.TimerQueue = yield* TimerQueue.make((taskId) =>
    // (A wake the store fails is tried again with the turns a store fault stranded.)
    recover(taskId, "its process lost the turn").pipe(Effect.catchAllCause(() => Effect.sync(() => stranded.add(taskId))))
  )
  // Tasks a store fault left without a worker, to recover when the store is back.
  const stranded = new Set<string>()

  /** A task's turn, in a worker fiber of its own (`workers`), counted against `who`'s running limits. */
  const turn = (taskId: string, who: { readonly tenant: string; readonly principal: string }, fresh?: HandedOff) => {
    counts.began(who.tenant, who.principal)
    let storeFailed = false
    // Set when the turn parks on a sleep: its task is woken then.
    let parkedUntil: number | undefined
    const parking = { fromMs: config.parkSleepsFromMs, onPark: (dueAt: number) => void (parkedUntil = dueAt) }
    const commits = handedOffCommits(fresh, (commands, first) =>
      // The agent goes on as soon as its emission is committed; clients see it once it is on disk.
      writer
        .commit(taskId, commands, { ...(first && fresh !== undefined ? fresh.options : {}), answerAtCommit: true })
        .pipe(Effect.tapError((e: CommitError) => Effect.sync(() => (storeFailed ||= e._tag === "StoreFailure"))))
    )
    const commitNow = commits.commitNow
    // A new turn starts; a sleeping task's turn goes on, its timer fired.
    const startOf = (current: TaskSnapshot): Command =>
      current.state === "TASK_STATE_WORKING" ? { type: "FireTimer", instanceId } : { type: "Start", instanceId }
    // The agent's commits, the first of them with the turn's start (turn.ts); the failure of a turn that
    // never began is committed as it is.
    let commit: (commands: Commands) => Effect.Effect<CommitResult, CommitError> = commitNow
    let end = () => {}
    // What the agent sees: the task as its start leaves it (decided here; the writer decides it again on commit).
    const begin = (current: Option.Option<TaskSnapshot>, at: string): Effect.Effect<unknown, unknown> => {
      if (Option.isNone(current)) return Effect.void
      // A big task's is its head only: the agent is shown the whole task.
      if (current.value.detached === true) {
        return Effect.flatMap(
          Effect.tapError(readModel.whole(current.value), () => Effect.sync(() => (storeFailed = true))),
          (whole) => begin(Option.some(whole), at)
        )
      }
      const start = startOf(current.value)
      const decision = decide(current.value, start, at)
      // Not SUBMITTED (or sleeping) any more (canceled just before the turn began): nothing to do.
      if (!decision.ok) return Effect.void
      if (start.type === "Start") metrics.turnStarted(current.value, at)
      const starting = startWithFirstEmission(fresh === undefined ? start : [fresh.submit, start], commitNow, config.startDelayMs, runtime)
      commit = starting.commit
      end = starting.end
      return Effect.flatMap(
        Effect.tapError(loadJournal(decision.state, decision.events), () => Effect.sync(() => (storeFailed = true))),
        (journal) => Effect.flatMap(runAgent(agent, decision.state, commit, { journal, parking, remote }), (exit) => finish(exit, commit))
      )
    }
    // (No generator: a generator function made per turn costs V8 a hidden class per turn.)
    return Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<unknown, unknown> => {
      const at = new Date(now).toISOString()
      if (fresh === undefined) return Effect.flatMap(writer.current(taskId), (current) => begin(current, at))
      const submitted = decide(initialState, fresh.submit, at)
      return begin(submitted.ok ? Option.some(submitted.state) : Option.none(), at)
    }).pipe(
      // Interruption means cancel or shutdown, which record their own facts. A turn the store
      // failed under is not the agent's failure: it runs again once the store is back.
      // A handed-off task whose first commit failed was never recorded: nothing to fail or recover.
      Effect.catchAllCause((cause) => (storeFailed || commits.abandoned() ? Effect.void : failTask(taskId, cause, commit))),
      Effect.zipRight(Effect.suspend(() => (storeFailed && !commits.abandoned() ? Effect.sync(() => stranded.add(taskId)) : Effect.void))),
      // However the turn ends: its start timer cleared, its send answered, its worker free again.
      Effect.ensuring(
        Effect.sync(() => {
          end()
          commits.unanswered()
          slots.release(1)
          counts.ended(who.tenant, who.principal)
          if (flow.capsRunning) Queue.unsafeOffer(changed, undefined)
          if (parkedUntil !== undefined) timers.add(taskId, parkedUntil)
        })
      )
    )
  }

  /**
   * Bring a task with no worker back to work: SUBMITTED is queued; a sleeping task is queued when its
   * timer is due, else put back in the timer queue; WORKING otherwise (its turn died with a process or a
   * store fault) is requeued and run again, or failed, by the recovery policy. Fails when the store does.
   */
  const recover = (taskId: string, why: string): Effect.Effect<void, unknown> =>
    writer.withTaskLock(taskId)(
      Effect.gen(function* () {
        const current = yield* readModel.get(taskId)
        if (Option.isNone(current) || (yield* FiberMap.has(workers, taskId))) return
        const state = current.value.state
        const due = sleepingUntil(current.value)
        if (due !== undefined) {
          if (Date.parse(due) <= (yield* Clock.currentTimeMillis)) yield* queue(taskId, current.value)
          else timers.add(taskId, Date.parse(due))
        } else if (state === "TASK_STATE_WORKING") {
          const requeued = yield* writer.commitHeld(taskId, recoveryCommand(config.recovery, `${why} during this turn`))
          if (config.recovery === "rerun") yield* queue(taskId, requeued.snapshot)
        } else if (state === "TASK_STATE_SUBMITTED") {
          yield* queue(taskId, current.value)
        }
      })
    )

  /**
   * Whether a task wants a turn now: SUBMITTED, or sleeping with its timer due. A sleeping task whose
   * timer is not due yet goes back to the timer queue.
   */
  const wantsTurn = (current: TaskSnapshot, now: number) => {
    if (current.state === "TASK_STATE_SUBMITTED") return true
    const due = sleepingUntil(current)
    if (due === undefined) return false
    if (Date.parse(due) <= now) return true
    timers.add(current.task.id, Date.parse(due))
    return false
  }

  /** Start the task's turn if it still wants one; false when it does not (canceled meanwhile, say). */
  const startTurn = (taskId: string) =>
    Effect.suspend(() => {
      const start = writer.withTaskLock(taskId)(
        Effect.map(Effect.zip(writer.current(taskId), Clock.currentTimeMillis), ([current, now]) => {
          if (Option.isNone(current) || !wantsTurn(current.value, now) || FiberMap.unsafeHas(workers, taskId)) return false
          startWorker(taskId, turn(taskId, { tenant: current.value.tenant, principal: current.value.owner }))
          return true
        })
      )
      // A previous turn of this task may still be unwinding after its last commit.
      // (`unsafeGet`, not `get`: a missing key, the usual case, fails `get` with an error whose stack costs.)
      const previous = FiberMap.unsafeGet(workers, taskId)
      return Option.isSome(previous) ? Effect.zipRight(Fiber.await(previous.value), start) : start
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.logWarning(`task ${taskId}: could not start a turn; trying again when the store answers`, cause).pipe(
          Effect.zipRight(Effect.sync(() => stranded.add(taskId))),
          Effect.as(false)
        )
      )
    )

  /** `startTurn` on a worker already taken for it: given back when the task wants no turn after all. */
  const startOnTaken = (taskId: string) =>
    Effect.map(startTurn(taskId), (started) => {
      if (!started) slots.release(1)
    })

  /**
   * A worker is free for a task that was never queued: one is free, no queued task waits for one (they go
   * first), and its tenant and principal are under their running limits.
   */
  const freeForNew = (tenant: string, principal: string) =>
    slots.free() > 0 && waiting.size === 0 && counts.tenantMay(tenant) && counts.principalMay(tenant, principal)

  // The dispatcher: the next waiting task that may start, on the next free worker.
  yield* Effect.gen(function* () {
    yield* slots.whenFree
    const next = waiting.take(counts.tenantMay, counts.principalMay)
    if (next === undefined) return yield* Queue.take(changed)
    slots.take(1)
    yield* startOnTaken(next.taskId)
  }).pipe(Effect.forever, Effect.forkScoped)

  /** A task that could not be read to queue it (the store failed): recovered with the turns a fault stranded. */
  const notQueued = (taskId: string, e: StoreFailure) =>
    Effect.zipRight(
      Effect.logWarning(`task ${taskId}: could not be queued; trying again when the store answers`, e),
      Effect.sync(() => stranded.add(taskId))
    )

  // Start-up: what a dead process left unfinished.
  const active = yield* readModel.active
  for (const s of active)
    yield* recover(s.task.id, "the server restarted").pipe(Effect.catchAll((e) => Effect.logWarning(`recovery of ${s.task.id} failed`, e)))
  if (active.length > 0) yield* Effect.logInfo(`recovered ${active.length} unfinished task(s) (policy: ${config.recovery})`)

  // After a store fault: the turns it stopped, once the store takes commits again.
  yield* Effect.gen(function* () {
    for (const taskId of [...stranded]) {
      const done = yield* recover(taskId, "the store failed").pipe(
        Effect.as(true),
        Effect.orElseSucceed(() => false)
      )
      if (!done) return
      stranded.delete(taskId)
    }
  }).pipe(Effect.repeat(Schedule.spaced(Duration.seconds(1))), Effect.forkScoped)

  return Supervisor.of({
    enqueue: (taskId) => queue(taskId).pipe(Effect.catchAll((e) => notQueued(taskId, e))),
    startOrEnqueue: (taskId) =>
      Effect.flatMap(writer.current(taskId), (current) => {
        if (Option.isNone(current)) return Effect.void
        if (!freeForNew(current.value.tenant, current.value.owner)) return queue(taskId, current.value)
        slots.take(1)
        return startOnTaken(taskId)
      }).pipe(
        Effect.catchAll((e) => notQueued(taskId, e)),
        // Uninterruptible: a sender that goes away (a dropped connection) must not leave the worker taken.
        Effect.uninterruptible
      ),
    stop: (taskId) => FiberMap.remove(workers, taskId),
    handOff: (taskId, submit, options) =>
      // A task that would wait for a worker is committed first instead, so it is shown meanwhile.
      Effect.sync(() => {
        const who = submit.type === "Submit" ? { tenant: submit.tenant, principal: submit.owner } : { tenant: "", principal: "" }
        if (!freeForNew(who.tenant, who.principal)) return Option.none()
        slots.take(1)
        const first = new Answer<CommitResult, CommitError>()
        startWorker(taskId, turn(taskId, who, { submit, options, first }))
        return Option.some(first)
      })
  })
})

export const layer = Layer.scoped(Supervisor, make)
