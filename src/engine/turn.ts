import { Cause, Effect, Exit, FiberId, FiberMap, FiberRef, FiberRefs, HashMap, Option, Runtime } from "effect"
import { type Agent, AgentEmitError, agentMessage, type AgentContext, type TurnOutcome } from "../agent/Agent.js"
import { type Command, type TaskSnapshot, turnOf } from "../domain/Task.js"
import { Answer } from "./Answer.js"
import { parentOf, traced } from "../observability/Tracing.js"
import { describeCause } from "./describeCause.js"
import { emptyJournal, type Journal, RestartSteps, stepRunner } from "./steps.js"
import { delegator } from "./delegation.js"
import type { RemoteAgents } from "./RemoteAgents.js"
import { StoreFailure } from "./errors.js"
import { CommandRefused, type CommitError, type CommitOptions, type CommitResult, type Commands } from "./TaskWriter.js"

/*
 * One worker turn, the part both supervisors share: the agent runs with a
 * context whose emissions become commands, and its outcome becomes the
 * closing command. How commands are committed (fenced by a lease or not)
 * is the caller's.
 */

/**
 * How a supervisor starts a worker: `start(taskId, turn)` forks the turn into `workers`, keyed by its task,
 * with the supervisor's own runtime (its logger, its services) whoever asks (a hand-off asks from the
 * sender's request), and every log of the turn names its task. A plain call, so a worker taken for a task
 * is never left between taking and starting. The fiber starts on the scheduler's next round, as one
 * `FiberMap.run` forks would, not inside the caller's step.
 */
export const workerStarter = (workers: FiberMap.FiberMap<string>) =>
  Effect.map(FiberMap.runtime(workers)<never>(), (run) => (taskId: string, turn: Effect.Effect<void>): void => {
    run(taskId, turn, {
      immediate: false,
      // Set as the fiber is made, for its whole life (`Effect.annotateLogs` would cost a scope a turn).
      updateRefs: (refs, fiberId) =>
        FiberRefs.updateAs(refs, {
          fiberId,
          fiberRef: FiberRef.currentLogAnnotations,
          value: HashMap.set(FiberRefs.getOrDefault(refs, FiberRef.currentLogAnnotations), "taskId", taskId as unknown)
        })
    })
  })

/** The commands that close a turn: the completion's artifacts, if any, then the closing one. */
export const outcomeCommands = (outcome: TurnOutcome): Commands => {
  switch (outcome._tag) {
    case "Completed": {
      const complete: Command = outcome.message === undefined ? { type: "Complete" } : { type: "Complete", message: agentMessage(outcome.message) }
      if (outcome.artifacts === undefined) return complete
      return [...outcome.artifacts.map((artifact): Command => ({ type: "EmitArtifact", artifact, append: false, lastChunk: false })), complete]
    }
    case "Failed":
      return { type: "Fail", reason: outcome.reason, message: agentMessage(outcome.reason) }
    case "InputRequired":
      return { type: "RequestInput", message: agentMessage(outcome.message) }
    case "AuthRequired":
      return { type: "RequestAuth", message: agentMessage(outcome.message) }
    case "Rejected":
      return { type: "Reject", reason: outcome.reason, message: agentMessage(outcome.reason) }
  }
}

const listOf = (commands: Commands): ReadonlyArray<Command> => (Array.isArray(commands) ? commands : [commands as Command])

type Commit = (commands: Commands) => Effect.Effect<unknown, CommitError>

/**
 * How a turn parks on a long sleep (steps.ts): sleeps of `fromMs` or longer may; `onPark` is told the due
 * time as the turn's fiber is stopped, so its supervisor wakes the task then.
 */
export interface Parking {
  readonly fromMs: number
  readonly onPark: (dueAt: number) => void
}

/**
 * Run the agent on the snapshot its Start produced, then commit its outcome.
 * An emission the machine refuses is the agent's mistake and fails the turn.
 * `journal`: what the turn's steps recorded before it ran again (steps.ts).
 * A turn that parks on a sleep (`parking`) is interrupted, as a cancel interrupts it: it records nothing more.
 */
export const runAgent = (
  agent: Agent,
  snapshot: TaskSnapshot,
  commit: Commit,
  options: { readonly journal?: Journal; readonly parking?: Parking; readonly remote?: typeof RemoteAgents.Service } = {}
) =>
  Effect.withFiberRuntime<Exit.Exit<TurnOutcome, unknown>>((worker) => {
    const { parking, remote } = options
    // The sleep's own fiber may be another (a Promise agent's): it waits for the worker's interruption.
    const park =
      parking === undefined
        ? undefined
        : {
            fromMs: parking.fromMs,
            until: (dueAt: number): Effect.Effect<never> =>
              Effect.zipRight(
                Effect.sync(() => {
                  parking.onPark(dueAt)
                  worker.unsafeInterruptAsFork(FiberId.none)
                }),
                Effect.never
              )
          }
    const task = snapshot.task
    const turn = turnOf(task.history)
    const emit = (command: Command) =>
      commit(command).pipe(
        Effect.asVoid,
        Effect.catchAll((e) =>
          Effect.fail(new AgentEmitError(e instanceof CommandRefused ? `agent emitted an illegal update: ${e.message}` : String(e)))
        )
      )
    /** The context's durable parts (steps.ts, delegation.ts), over one run's journal. */
    const journaled = (journal: Journal): Pick<AgentContext, "step" | "sleep" | "delegate"> => {
      const runner = stepRunner({ turn, journal, commit, onMismatch: agent.onStepMismatch ?? "fail", ...(park !== undefined ? { park } : {}) })
      return {
        step: runner.step,
        sleep: runner.sleep,
        delegate:
          remote === undefined
            ? () => Effect.dieMessage("delegation is not available here: the engine was built without RemoteAgents")
            : delegator({
                taskId: task.id,
                turn,
                journal,
                remote,
                record: (command) => Effect.asVoid(Effect.orDie(commit(command))),
                // A forwarded message the task cannot take (it was canceled meanwhile) is not the delegation's failure.
                progress: (text) => Effect.ignore(emit({ type: "Progress", message: agentMessage(text) })),
                stepWith: runner.stepWith
              })
      }
    }
    const runWith = (journal: Journal): Effect.Effect<Exit.Exit<TurnOutcome, unknown>> => {
      const ctx: AgentContext = {
        taskId: task.id,
        contextId: task.contextId,
        input: snapshot.turnInput!,
        task,
        progress: (message) => emit({ type: "Progress", message: agentMessage(message) }),
        artifact: (artifact, options) =>
          emit({ type: "EmitArtifact", artifact, append: options?.append ?? false, lastChunk: options?.lastChunk ?? false }),
        ...journaled(journal)
      }
      // Under Effect.exit, an interruption raised by the agent itself comes back as a value (a
      // cancel or shutdown interrupts this whole fiber instead and never gets here): it fails the
      // task rather than leaving it WORKING.
      return Effect.flatMap(Effect.exit(agent.run(ctx)), (exit) => {
        // The steps changed under the task and the agent asked to run them again: the journal is set aside, once.
        // (A defect of the step; a Promise agent that lets it propagate makes it the turn's failure.)
        const restart = Exit.isFailure(exit)
          ? [...Cause.defects(exit.cause), ...Cause.failures(exit.cause)].find((e): e is RestartSteps => e instanceof RestartSteps)
          : undefined
        if (restart === undefined || journal.steps.length === 0) return Effect.succeed(exit)
        return Effect.zipRight(Effect.orDie(commit({ type: "ResetSteps", turn, reason: restart.reason })), runWith(emptyJournal))
      })
    }
    // The turn's span joins the trace of the message that began it (stored with the task: after a restart too).
    return runWith(options.journal ?? emptyJournal).pipe(
      traced(`invoke_agent ${agent.name}`, () => {
        const parent = parentOf(snapshot.traceparent)
        return {
          kind: "internal",
          ...(parent !== undefined ? { parent } : { root: true }),
          attributes: {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent.name,
            "gen_ai.conversation.id": task.contextId,
            "a2a.task.id": task.id,
            "a2a.context.id": task.contextId,
            "a2a_ledger.turn": turn
          }
        }
      })
    )
  })

/** The outcome of `runAgent` as the closing command, or the failure that fails the task. */
export const finish = (exit: Exit.Exit<TurnOutcome, unknown>, commit: Commit) =>
  Exit.isFailure(exit)
    ? Effect.failCause(Cause.isInterruptedOnly(exit.cause) ? Cause.die(new Error("the agent interrupted its own turn")) : exit.cause)
    : commit(outcomeCommands(exit.value))

/** Any failure of a turn, typed or defect, becomes FAILED; an interruption (cancel, shutdown) records nothing. */
export const failTask = (taskId: string, cause: Cause.Cause<unknown>, commit: Commit) => {
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  const reason = describeCause(cause)
  return Effect.logWarning(`task ${taskId} failed: ${reason}`).pipe(
    Effect.zipRight(commit({ type: "Fail", reason, message: agentMessage(reason) })),
    Effect.catchAllCause((e) => (Cause.isInterruptedOnly(e) ? Effect.void : Effect.logWarning(`task ${taskId}: could not record failure`, e)))
  )
}

/**
 * A turn's start (with its task's Submit, for a task handed straight to a worker), committed with the
 * agent's first emission (one commit fewer), or alone once the agent has been quiet for `delayMs`, so a
 * slow agent's task still shows WORKING soon. Every later commit waits
 * until the start has landed. An emission the machine refuses does not take the start down with it: the
 * start lands alone, and the emission's refusal is the agent's error, as it would have been after a start
 * of its own. `commit` is the turn's commit from then on; `end` clears the timer (call it when the turn ends).
 * The lone start is committed on `runtime` (the supervisor's).
 */
export const startWithFirstEmission = (
  start: Commands,
  commitNow: (commands: Commands) => Effect.Effect<CommitResult, CommitError>,
  delayMs: number,
  runtime: Runtime.Runtime<never>
) => {
  let startPending = true
  const started = new Answer<void, CommitError>()
  const commitStart = Effect.onExit(commitNow(start), (exit) => Effect.sync(() => started.complete(Exit.asVoid(exit))))
  const commitWithStart = (commands: Commands): Effect.Effect<CommitResult, CommitError> =>
    Effect.matchEffect(commitNow([...listOf(start), ...listOf(commands)]), {
      onSuccess: (result) => {
        started.complete(Exit.void)
        return Effect.succeed(result)
      },
      onFailure: (error: CommitError): Effect.Effect<never, CommitError> =>
        Effect.zipRight(
          error instanceof CommandRefused ? Effect.asVoid(Effect.exit(commitStart)) : Effect.sync(() => started.complete(Exit.fail(error))),
          Effect.fail(error)
        )
    })
  const commit = (commands: Commands): Effect.Effect<CommitResult, CommitError> =>
    Effect.suspend(() => {
      if (!startPending) return Effect.zipRight(started.await, commitNow(commands))
      startPending = false
      return commitWithStart(commands)
    })
  const startAlone = Effect.suspend(() => {
    if (!startPending) return Effect.void
    startPending = false
    return Effect.ignore(commitStart)
  })
  // A plain timer, not a fiber per turn: most turns emit long before it fires, and clear it at their end.
  const timer = setTimeout(() => Runtime.runFork(runtime)(startAlone), delayMs)
  return { commit, end: () => clearTimeout(timer) }
}

/** A new task handed straight to a worker, its Submit not yet committed (`Supervisor.handOff`). */
export interface HandedOff {
  readonly submit: Command
  /** The send's commit options (idempotency), for the commit that records the task. */
  readonly options: CommitOptions
  /** The send waits on it: the commit that records the task, or why there is none. */
  readonly first: Answer<CommitResult, CommitError>
}

/**
 * A turn's commits when its task may have been handed off: `commit(commands, first)` makes one, and the first
 * that lands (the Submit leads it) answers the send. A first commit the machine refuses is the agent's
 * emission's fault: the start and the Submit land alone next (startWithFirstEmission), and that answers
 * it. Any other failure of the first commit means the task was never recorded: `abandoned()` tells the
 * turn to end without a word. `unanswered()` fails the send if the turn ends before any first commit (a
 * shutdown interrupted it); its error is made only then (an error's stack costs more than a quick turn).
 */
export const handedOffCommits = (
  handed: HandedOff | undefined,
  commit: (commands: Commands, first: boolean) => Effect.Effect<CommitResult, CommitError>
) => {
  let firstPending = handed !== undefined
  let abandoned = false
  const commitNow = (commands: Commands): Effect.Effect<CommitResult, CommitError> =>
    Effect.suspend(() => {
      if (!firstPending || handed === undefined) return commit(commands, false)
      firstPending = false
      return Effect.onExit(commit(commands, true), (exit) => {
        if (exit._tag === "Failure" && Option.exists(Cause.failureOption(exit.cause), (e) => e instanceof CommandRefused)) {
          firstPending = true
          return Effect.void
        }
        if (exit._tag === "Failure") abandoned = true
        // Interrupted (a shutdown): `unanswered` tells the send, with an error it can answer.
        if (exit._tag === "Failure" && Cause.isInterruptedOnly(exit.cause)) return Effect.void
        handed.first.complete(exit)
        return Effect.void
      })
    })
  const unanswered = () => {
    if (handed === undefined || handed.first.done) return
    handed.first.complete(Exit.fail(new StoreFailure({ cause: "shutdown", reason: "the engine stopped before the task was recorded" })))
  }
  return { commitNow, abandoned: () => abandoned, unanswered }
}
