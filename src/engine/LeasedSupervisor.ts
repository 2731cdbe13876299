import { Clock, Duration, Effect, Exit, FiberId, FiberMap, Layer, Option, Queue, Schedule } from "effect"
import { extend } from "../domain/extend.js"
import { type Command, decide, initialState, sleepingUntil, type TaskSnapshot } from "../domain/Task.js"
import { isTerminal, stateAfter } from "../domain/TaskState.js"
import { type Lease, LeaseStore } from "../eventlog/LeaseStore.js"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { CurrentAgent, EngineConfig, recoveryCommand } from "./EngineConfig.js"
import { EventHub } from "./EventHub.js"
import { Answer } from "./Answer.js"
import { InstanceId } from "./InstanceId.js"
import { Supervisor } from "./Supervisor.js"
import * as WorkerSlots from "./WorkerSlots.js"
import { journalLoader } from "./steps.js"
import * as TimerQueue from "./TimerQueue.js"
import { RemoteAgents } from "./RemoteAgents.js"
import { FlowControl } from "./FlowControl.js"
import { failTask, finish, type HandedOff, handedOffCommits, runAgent, startWithFirstEmission, workerStarter } from "./turn.js"
import { EngineMetrics } from "../observability/Metrics.js"
import { type CommitError, type CommitOptions, type CommitResult, type Commands, TaskWriter } from "./TaskWriter.js"

/** How long a claim lasts without renewal; renewed every third of it. */
export const defaultLeaseMs = 15_000

/** How often an idle instance looks for work nobody announced to it (another instance's new tasks, expired leases). */
const claimPollMs = 1_000

/** Set when a turn's lease is lost (its commit was fenced off): the turn then records nothing more. */
type Lost = Answer<void, never>

/** The most tasks one claim takes. */
const maxClaim = 16

/**
 * The supervisor for a store shared by several processes. The queue is the
 * database: each process claims the oldest tasks needing a worker with a
 * lease (`LeaseStore`), as many as it has free workers, and renews the leases
 * of the turns it runs. A turn whose lease is lost stops, and its commits are
 * fenced by the lease, so two processes never both advance one task. A task
 * left WORKING by a process that died is claimed once its lease expires and
 * handled by the recovery policy. A running turn listens to its task: when
 * another process cancels it, the turn stops within the time a commit notice
 * takes to arrive.
 *
 * Durable timers: a turn that parks on a long sleep ends and gives its lease up; its task (WORKING,
 * sleeping) carries its due time in its row, and the first process to claim it once it is due wakes it
 * (its timer fired, its turn run again). The process that parked it wakes its own claim loop then.
 */
export const make = (leaseMs: number = defaultLeaseMs) =>
  Effect.gen(function* () {
    const config = yield* EngineConfig
    const agent = yield* CurrentAgent
    const writer = yield* TaskWriter
    const readModel = yield* TaskReadModel
    const leases = yield* LeaseStore
    const hub = yield* EventHub
    const instanceId = yield* InstanceId
    const loadJournal = yield* journalLoader
    const remote = yield* RemoteAgents

    // Leases given up by turns that ended, released together: one statement for all the turns that ended
    // while the one before it ran. (Started before the workers, so it is stopped after them.)
    const toRelease = yield* Queue.unbounded<{ readonly lease: Lease; readonly done: Answer<void, never> }>()
    yield* Effect.gen(function* () {
      const first = yield* Queue.take(toRelease)
      const all = [first, ...(yield* Queue.takeAll(toRelease))]
      yield* leases
        .release(
          instanceId,
          all.map((r) => r.lease)
        )
        .pipe(Effect.ignore)
      for (const r of all) r.done.complete(Exit.void)
    }).pipe(Effect.forever, Effect.forkScoped)
    const releaseLease = (lease: Lease) =>
      Effect.suspend(() => {
        const done = new Answer<void, never>()
        return Effect.zipRight(Queue.offer(toRelease, { lease, done }), done.await)
      })

    const workers = yield* FiberMap.make<string>()
    const startWorker = yield* workerStarter(workers)
    const runtime = yield* Effect.runtime<never>()
    const held = new Map<string, Lease>()
    const metrics = yield* EngineMetrics
    yield* metrics.read(
      "leasesHeld",
      Effect.sync(() => [[{}, held.size]] as const)
    )
    const slots = yield* WorkerSlots.make(config.maxWorkers)
    // Handed-off tasks whose first commit (which makes their lease) has not landed: not renewed yet.
    const creating = new Set<string>()
    const wake = yield* Queue.sliding<void>(1)
    const flow = yield* FlowControl
    /**
     * The running limits as they stand: tenants and principals at theirs (a claim passes them over), and
     * `admit`, which counts each task let in against what its tenant and principal have room for.
     */
    const runningLimits = Effect.flatMap(Clock.currentTimeMillis, (t) => leases.running(t)).pipe(
      Effect.map((running) => {
        const byTenant = new Map<string, number>()
        const byPrincipal = new Map<string, number>()
        const key = (tenant: string, principal: string) => `${tenant}\u0000${principal}`
        for (const r of running) {
          byTenant.set(r.tenant, (byTenant.get(r.tenant) ?? 0) + r.running)
          byPrincipal.set(key(r.tenant, r.principal), r.running)
        }
        const tenantFull = (tenant: string) => (byTenant.get(tenant) ?? 0) >= (flow.limitsOf(tenant).maxRunning ?? Number.POSITIVE_INFINITY)
        const principalFull = (tenant: string, principal: string) =>
          (byPrincipal.get(key(tenant, principal)) ?? 0) >= (flow.limitsOf(tenant).maxRunningPerPrincipal ?? Number.POSITIVE_INFINITY)
        return {
          exclude: {
            tenants: [...byTenant.keys()].filter(tenantFull),
            principals: running.filter((r) => principalFull(r.tenant, r.principal)).map((r) => ({ tenant: r.tenant, principal: r.principal }))
          },
          admit: (tenant: string, principal: string) => {
            if (tenantFull(tenant) || principalFull(tenant, principal)) return false
            byTenant.set(tenant, (byTenant.get(tenant) ?? 0) + 1)
            byPrincipal.set(key(tenant, principal), (byPrincipal.get(key(tenant, principal)) ?? 0) + 1)
            return true
          }
        }
      })
    )
    // The tenants whose tasks this process started lately, the latest last: claims take the others first.
    const served: Array<string> = []
    const servedTenant = (tenant: string) => {
      const at = served.indexOf(tenant)
      if (at >= 0) served.splice(at, 1)
      served.push(tenant)
      if (served.length > 64) served.shift()
    }
    // Turns parked here: the claim loop is woken when each is due (any process may claim it then).
    const timers = yield* TimerQueue.make(() => Queue.offer(wake, undefined))
    // Tasks whose lease is being given up, and tasks sent work meanwhile (while their lease was held
    // here, so a claim skipped them): those are claimed again as soon as the lease is released.
    const releasing = new Set<string>()
    const rewake = new Set<string>()

    const now = Clock.currentTimeMillis

    /**
     * A commit made for a turn, fenced by its lease. A lost lease stops the turn without a word:
     * `lost` is set first, so however the agent reacts to the interruption, the turn records nothing.
     */
    const commitFenced = (lease: Lease, lost: Lost, command: Commands, options: CommitOptions = { fence: { owner: instanceId, lease } }) =>
      writer.commit(lease.taskId, command, options).pipe(
        Effect.catchIf(
          (e: CommitError) => e._tag === "LeaseLost",
          () =>
            Effect.zipRight(
              Effect.sync(() => lost.complete(Exit.void)),
              Effect.interrupt
            )
        )
      )

    /**
     * The agent's work (`body`, on the worker's fiber) until its task becomes terminal elsewhere (a
     * cancel on another process): then the worker is interrupted, as a cancel here interrupts it. A
     * listener on the hub, told as each event is published: no fiber, scope or queue of its own per
     * turn. Only while the agent works: its emissions are never terminal. The turn's closing commit comes
     * after; it is terminal itself, and answers a blocking send through this fiber, which must not be
     * interrupted by it. (A cancel elsewhere that lands during that commit refuses it: the turn logs it.)
     */
    const untilTerminal = <A, E, R>(taskId: string, body: Effect.Effect<A, E, R>) =>
      Effect.withFiberRuntime<A, E, R>((fiber) => {
        const unlisten = hub.listen(taskId, (c) => {
          const s = stateAfter(c.event)
          if (s !== undefined && isTerminal(s)) fiber.unsafeInterruptAsFork(FiberId.none)
        })
        return Effect.ensuring(body, Effect.sync(unlisten))
      })

    /**
     * The agent's turn on `current` (SUBMITTED): its start is committed with its first emission, as on
     * one process (turn.ts); `use` hands the turn's commit to the caller's failure handling.
     */
    // Made once (not a generator function per turn: docs/design.md, Writing code on the hot path).
    const runTurn = Effect.fnUntraced(function* (
      lease: Lease,
      lost: Lost,
      current: TaskSnapshot,
      commitNow: (commands: Commands) => Effect.Effect<CommitResult, CommitError>,
      state: TurnState,
      fresh: HandedOff | undefined
    ) {
      // A new turn starts; a sleeping task's turn goes on, its timer fired.
      const start: Command =
        current.state === "TASK_STATE_WORKING"
          ? { type: "FireTimer", instanceId, leaseEpoch: lease.epoch }
          : { type: "Start", instanceId, leaseEpoch: lease.epoch }
      // What the agent sees: the task as its start leaves it (the writer decides it again on commit).
      const at = new Date(yield* Clock.currentTimeMillis).toISOString()
      const decision = decide(current, start, at)
      if (!decision.ok) return
      if (start.type === "Start") metrics.turnStarted(current, at)
      // What the turn's steps recorded before it ran again (none without a read for a task that never kept any).
      const journal = yield* loadJournal(decision.state, decision.events).pipe(Effect.tapError(() => Effect.sync(() => (state.storeFailed = true))))
      const starting = startWithFirstEmission(fresh === undefined ? start : [fresh.submit, start], commitNow, config.startDelayMs, runtime)
      state.commit = starting.commit
      const parking = { fromMs: config.parkSleepsFromMs, onPark: (dueAt: number) => void (state.parkedUntil = dueAt) }
      const exit = yield* Effect.ensuring(
        untilTerminal(lease.taskId, runAgent(agent, decision.state, starting.commit, { journal, parking, remote })),
        Effect.sync(starting.end)
      )
      // The lease went while the agent ran: whatever the agent made of that, the turn records nothing.
      if (lost.done) return yield* Effect.interrupt
      yield* finish(exit, starting.commit)
    })

    /** What a turn's body shares with its failure handling, set as the turn goes. */
    interface TurnState {
      storeFailed: boolean
      /** The agent's turn commits through its start (runTurn) once it began; before, as they are. */
      commit: (commands: Commands) => Effect.Effect<CommitResult, CommitError>
      /** Set when the turn parks on a sleep: this process wakes its claim loop then. */
      parkedUntil?: number
    }

    const turnBody = Effect.fnUntraced(function* (
      lease: Lease,
      lost: Lost,
      claimedAs: TaskSnapshot | undefined,
      fresh: HandedOff | undefined,
      commitNow: (commands: Commands) => Effect.Effect<CommitResult, CommitError>,
      state: TurnState
    ) {
      // A read the store fails is the store's fault, not the agent's: the task is recovered, not failed.
      // The task as read right after its claim (with the others of that claim), or read now.
      const current =
        claimedAs !== undefined
          ? Option.some(claimedAs)
          : yield* readModel.get(lease.taskId).pipe(Effect.tapError(() => Effect.sync(() => (state.storeFailed = true))))
      if (Option.isNone(current)) return
      let submitted = current.value
      const due = sleepingUntil(submitted)
      if (due !== undefined) {
        // Sleeping: claimed once its timer is due (its row says when), and woken.
        if (Date.parse(due) > (yield* now)) return
      } else if (submitted.state === "TASK_STATE_WORKING") {
        // Its lease lapsed with the turn unfinished (a process died, or lost its lease): taken over here.
        metrics.leaseTakeover()
        const recovered = yield* state.commit(recoveryCommand(config.recovery, "the process running this turn stopped"))
        if (config.recovery === "fail") return
        submitted = recovered.snapshot
      } else if (submitted.state !== "TASK_STATE_SUBMITTED") {
        return
      }
      // A big task's commit answers with its head only: the agent is shown the whole task.
      if (submitted.detached === true) {
        submitted = yield* readModel.whole(submitted).pipe(Effect.tapError(() => Effect.sync(() => (state.storeFailed = true))))
      }
      yield* runTurn(lease, lost, submitted, commitNow, state, fresh)
    })

    /**
     * What a claimed task needs: a turn (SUBMITTED), or recovery (WORKING, its owner gone).
     * A turn the store failed under records nothing more (the agent did nothing wrong): its lease
     * is released or lapses, and the task is claimed and recovered again like any orphan.
     */
    const turn = (lease: Lease, lost: Lost, claimedAs: TaskSnapshot | undefined, fresh?: HandedOff) => {
      // A handed-off task's first commit records it and makes its lease (nobody else knows the task yet).
      const firstOptions = (fresh: HandedOff) =>
        Effect.map(now, (t): CommitOptions => extend(fresh.options ?? {}, { fence: { owner: instanceId, lease, createUntil: t + leaseMs } }))
      const commits = handedOffCommits(fresh, (commands, first) =>
        (first && fresh !== undefined
          ? Effect.flatMap(firstOptions(fresh), (options) =>
              Effect.tap(commitFenced(lease, lost, commands, options), () => Effect.sync(() => creating.delete(lease.taskId)))
            )
          : commitFenced(lease, lost, commands)
        ).pipe(Effect.tapError((e: CommitError) => Effect.sync(() => (state.storeFailed ||= e._tag === "StoreFailure"))))
      )
      const state: TurnState = { storeFailed: false, commit: commits.commitNow }
      return turnBody(lease, lost, claimedAs, fresh, commits.commitNow, state).pipe(
        Effect.catchAllCause((cause) =>
          Effect.suspend(() =>
            // A handed-off task whose first commit failed was never recorded: nothing to fail.
            lost.done || state.storeFailed || commits.abandoned() ? Effect.void : failTask(lease.taskId, cause, state.commit)
          )
        ),
        Effect.ensuring(
          Effect.suspend(() => {
            commits.unanswered()
            if (state.parkedUntil !== undefined) timers.add(lease.taskId, state.parkedUntil)
            // A newer claim of the same task (a next turn) may already be registered: leave that one.
            if (held.get(lease.taskId)?.epoch === lease.epoch) held.delete(lease.taskId)
            // A handed-off task never recorded has no lease to give up.
            const recorded = !creating.delete(lease.taskId)
            releasing.add(lease.taskId)
            return Effect.zipRight(
              recorded ? releaseLease(lease) : Effect.void,
              Effect.suspend(() => {
                releasing.delete(lease.taskId)
                slots.release(1)
                // The task was sent more work while its lease was held here (its next turn): claim it now.
                return rewake.delete(lease.taskId) ? Queue.offer(wake, undefined) : Effect.void
              })
            )
          })
        )
      )
    }

    // Claim as many tasks as there are free workers (a few at a time), as long as claims come back full;
    // otherwise, or when no worker is free, wait to be woken (a new task, a free worker) or for the poll.
    yield* Effect.gen(function* () {
      yield* slots.whenFree
      // As many as there are free workers (a few at most); each claimed task runs on one.
      const asked = Math.min(maxClaim, slots.free())
      // Running limits (flow control): what runs now, across every process, and who is at a limit.
      const limits = flow.capsRunning ? yield* runningLimits.pipe(Effect.orElseSucceed(() => undefined)) : undefined
      const claimed = yield* leases
        .claim(instanceId, yield* now, leaseMs, asked, limits?.exclude, served)
        .pipe(Effect.catchAllCause((cause) => Effect.logWarning("claiming work failed", cause).pipe(Effect.as([] as ReadonlyArray<Lease>))))
      // Hand-offs may have taken workers while the claim ran (it holds none meanwhile, so they need not
      // wait for it): what no longer fits is given back at once, for any process to claim.
      let fits = claimed.slice(0, slots.free())
      const extra = claimed.slice(fits.length)
      // The claimed tasks, read in one statement once the claim holds them (a read inside the claim could
      // be older than a commit the claim waited for); a task this read missed is read by its turn.
      const rows = yield* readModel.getAll(fits.map((l) => l.taskId)).pipe(Effect.orElseSucceed(() => new Map<string, TaskSnapshot>()))
      // A claim may take more of a tenant's (or principal's) tasks than its limit has room for: the rest wait.
      if (limits !== undefined) {
        const over = fits.filter((l) => {
          const s = rows.get(l.taskId)
          return s !== undefined && s.state === "TASK_STATE_SUBMITTED" && !limits.admit(s.tenant, s.owner)
        })
        fits = fits.filter((l) => !over.includes(l))
        extra.push(...over)
      }
      slots.take(fits.length)
      if (extra.length > 0) yield* leases.release(instanceId, extra).pipe(Effect.ignore)
      for (const lease of fits) {
        const row = rows.get(lease.taskId)
        if (row !== undefined) servedTenant(row.tenant)
        held.set(lease.taskId, lease)
        startWorker(
          lease.taskId,
          Effect.suspend(() => turn(lease, new Answer(), rows.get(lease.taskId)))
        )
      }
      // Fewer than asked: nothing more is claimable now.
      if (claimed.length < asked) yield* Queue.take(wake).pipe(Effect.timeout(Duration.millis(claimPollMs)), Effect.ignore)
    }).pipe(Effect.forever, Effect.forkScoped)

    // Heartbeat: renew what runs here; a turn whose lease expired or was taken over stops.
    yield* Effect.gen(function* () {
      // Leases still to be made by their task's first commit are not renewed (there is nothing to renew yet).
      const asked = [...held.values()].filter((l) => !creating.has(l.taskId))
      if (asked.length === 0) return
      const kept = new Set(
        (yield* leases.renew(
          instanceId,
          asked.map((l) => l.taskId),
          yield* now,
          leaseMs
        )).map((l) => `${l.taskId} ${l.epoch}`)
      )
      for (const lease of asked) {
        // A turn that ended (and gave its lease up) while the renewal ran has lost nothing.
        if (kept.has(`${lease.taskId} ${lease.epoch}`) || held.get(lease.taskId) !== lease) continue
        yield* Effect.logWarning(`task ${lease.taskId}: the work lease was lost (not renewed in time, or taken over); stopping this turn`)
        held.delete(lease.taskId)
        yield* FiberMap.remove(workers, lease.taskId)
      }
    }).pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("renewing leases failed", cause)),
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(100, Math.floor(leaseMs / 3))))),
      Effect.forkScoped
    )

    const enqueue = (taskId: string) =>
      Effect.suspend(() => {
        if (held.has(taskId) || releasing.has(taskId)) rewake.add(taskId)
        return Queue.offer(wake, undefined)
      }).pipe(Effect.asVoid)

    return Supervisor.of({
      // The task is in the store already: wake the claim loop (other processes find it by polling).
      enqueue,
      // The task is claimed from the store like any other: another process may take it.
      startOrEnqueue: enqueue,
      stop: (taskId) => FiberMap.remove(workers, taskId),
      // A new task straight to a free worker here: its first commit records it with its lease (epoch 1), so
      // no other process can claim it, and none needs to.
      handOff: (taskId, submit, options) =>
        Effect.suspend(() => {
          // Under running limits every task goes through a claim, which counts what runs on every process.
          if (slots.free() === 0 || flow.capsRunning) return Effect.succeed(Option.none())
          slots.take(1)
          const lease: Lease = { taskId, epoch: 1 }
          held.set(taskId, lease)
          creating.add(taskId)
          // (No generator: a generator function made per send costs V8 a hidden class per send.)
          return Effect.map(now, (t) => {
            const first = new Answer<CommitResult, CommitError>()
            const lost: Lost = new Answer()
            const submitted = decide(initialState, submit, new Date(t).toISOString())
            if (!submitted.ok) {
              held.delete(taskId)
              creating.delete(taskId)
              slots.release(1)
              return Option.none()
            }
            startWorker(taskId, turn(lease, lost, submitted.state, { submit, options, first }))
            return Option.some(first)
          })
          // Uninterruptible: a sender that goes away (a dropped connection) must not leave the worker taken.
        }).pipe(Effect.uninterruptible)
    })
  })

export const layer = (leaseMs?: number) => Layer.scoped(Supervisor, make(leaseMs))
