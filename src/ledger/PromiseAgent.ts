import { Cause, type Duration, Effect, Exit, Runtime } from "effect"
import {
  type Agent,
  type AgentContext,
  type AgentSkill,
  type DelegateOptions,
  type DelegationResult,
  Outcome,
  type StepOptions,
  type TurnOutcome
} from "../agent/Agent.js"
import type { Artifact, Message, Part } from "../domain/Message.js"
import type { Task } from "../domain/TaskView.js"

/**
 * An agent written with Promises, for applications that do not use Effect (`createLedger`). The engine
 * turns it into an Effect agent: one turn is one call of `run`, every report is committed before its
 * Promise resolves, and a cancel aborts `signal`.
 */
export interface PromiseAgent {
  readonly name: string
  readonly description: string
  readonly version: string
  readonly skills?: ReadonlyArray<AgentSkill>
  readonly defaultInputModes?: ReadonlyArray<string>
  readonly defaultOutputModes?: ReadonlyArray<string>
  /**
   * One worker turn: the task's first message, or the answer to a question the agent asked. What it
   * resolves to ends the turn (nothing: COMPLETED); what it throws or rejects with fails the task, with
   * the error's message as the reason.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: an async function that returns nothing is a Promise<void>, and means COMPLETED
  readonly run: (ctx: PromiseAgentContext) => Promise<TurnResult | void>
  /** As an Effect agent's (`Agent.onStepMismatch`): when a turn's steps no longer match their records. */
  readonly onStepMismatch?: "fail" | "rerun"
}

export interface PromiseAgentContext {
  readonly taskId: string
  readonly contextId: string
  /** The user message this turn answers. */
  readonly input: Message
  /** The task as it stood when the turn started (history, artifacts). */
  readonly task: Task
  /**
   * Aborted when the task is canceled (or the engine closes) while the turn runs. Pass it on to
   * `fetch` and the like: the turn's result no longer counts, and every report after it is refused.
   */
  readonly signal: AbortSignal
  /** A WORKING status update whose message also lands in the task's history; resolves once committed. */
  readonly progress: (message: string | ReadonlyArray<Part>) => Promise<void>
  /** An artifact whole, or one chunk of it (`append` to extend, `lastChunk` to close it); resolves once committed. */
  readonly artifact: (artifact: Artifact, options?: { readonly append?: boolean; readonly lastChunk?: boolean }) => Promise<void>
  /**
   * A durable step (`AgentContext.step`): `run` is called and its result recorded in the task's log before
   * this resolves; when the turn runs again after a crash, a recorded step resolves with its result without
   * calling `run`. Call steps in the same order every time. A `run` that rejects is tried again by
   * `options.retry` (default: 3 attempts); the last rejection rejects with `StepFailed`. Let errors from
   * `step` itself propagate: a step order that no longer matches the record is reported through them.
   */
  readonly step: <T>(name: string, run: () => Promise<T>, options?: StepOptions<T, unknown>) => Promise<T>
  /**
   * A durable timer (`AgentContext.sleep`): milliseconds, or a duration such as `"2 hours"`. A long one
   * stops the turn (its Promise never resolves and `signal` is aborted) and runs the turn again from its
   * start when the timer is due, its recorded steps and this sleep resolving at once: put the work before
   * a sleep in steps.
   */
  readonly sleep: (duration: Duration.DurationInput) => Promise<void>
  /**
   * Delegate to another A2A agent (`AgentContext.delegate`): resolves with where its task ended (or asks
   * for input); a remote task that failed, after the retries, rejects with `StepFailed`.
   */
  readonly delegate: (url: string, message: string | ReadonlyArray<Part>, options?: DelegateOptions) => Promise<DelegationResult>
}

/** How a Promise agent ends its turn; each state is the A2A state of that name. */
export type TurnResult =
  | { readonly state: "completed"; readonly message?: string | ReadonlyArray<Part>; readonly artifacts?: ReadonlyArray<Artifact> }
  | { readonly state: "input-required" | "auth-required"; readonly message: string | ReadonlyArray<Part> }
  | { readonly state: "failed" | "rejected"; readonly message: string }

/** The error a report made after its turn was aborted rejects with. */
export class TurnAbortedError extends Error {
  override readonly name = "TurnAbortedError"
}

// biome-ignore lint/suspicious/noConfusingVoidType: what `run` resolves to, nothing included
const outcomeOf = (result: TurnResult | void): TurnOutcome => {
  if (result === undefined) return Outcome.complete()
  switch (result.state) {
    case "completed":
      return Outcome.complete(result.message, result.artifacts !== undefined ? { artifacts: result.artifacts } : undefined)
    case "input-required":
      return Outcome.requireInput(result.message)
    case "auth-required":
      return Outcome.requireAuth(result.message)
    case "failed":
      return Outcome.fail(result.message)
    case "rejected":
      return Outcome.reject(result.message)
    default:
      return Outcome.fail(
        `the agent's turn ended with state ${JSON.stringify((result as { state?: unknown }).state)}; expected "completed", "input-required", "auth-required", "failed" or "rejected"`
      )
  }
}

/** The Promise agent as the engine runs agents. */
export const fromPromiseAgent = (agent: PromiseAgent): Agent => ({
  name: agent.name,
  description: agent.description,
  version: agent.version,
  skills: agent.skills ?? [],
  ...(agent.defaultInputModes !== undefined ? { defaultInputModes: agent.defaultInputModes } : {}),
  ...(agent.defaultOutputModes !== undefined ? { defaultOutputModes: agent.defaultOutputModes } : {}),
  ...(agent.onStepMismatch !== undefined ? { onStepMismatch: agent.onStepMismatch } : {}),
  run: (ctx: AgentContext) =>
    Effect.flatMap(Effect.runtime<never>(), (runtime) => {
      const runPromise = Runtime.runPromise(runtime)
      const runPromiseExit = Runtime.runPromiseExit(runtime)
      return Effect.map(
        // Interrupting the turn (a cancel) aborts `signal`; the Promise may still run on, but what it
        // reports after that is refused here, and by the task's machine once the task is CANCELED.
        Effect.tryPromise({
          try: (signal) => {
            const aborted = () => new TurnAbortedError(`task ${ctx.taskId}: the turn was aborted (canceled or shut down); nothing more is recorded`)
            const report = (emit: Effect.Effect<void, unknown>) => (signal.aborted ? Promise.reject(aborted()) : runPromise(emit))
            // A step's own failure (StepFailed, or the defect naming a changed step order) rejects as itself.
            const step = <T>(name: string, run: () => Promise<T>, options?: StepOptions<T, unknown>): Promise<T> =>
              signal.aborted
                ? Promise.reject(aborted())
                : runPromiseExit(ctx.step(name, Effect.tryPromise({ try: () => run(), catch: (error) => error }), options)).then((exit) =>
                    Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause))
                  )
            const delegate = (url: string, message: string | ReadonlyArray<Part>, options?: DelegateOptions): Promise<DelegationResult> =>
              signal.aborted
                ? Promise.reject(aborted())
                : runPromiseExit(ctx.delegate(url, message, options)).then((exit) =>
                    Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause))
                  )
            const sleep = (duration: Duration.DurationInput): Promise<void> =>
              signal.aborted ? Promise.reject(aborted()) : runPromise(ctx.sleep(duration), { signal })
            return agent.run({
              taskId: ctx.taskId,
              contextId: ctx.contextId,
              input: ctx.input,
              task: ctx.task,
              signal,
              progress: (message) => report(ctx.progress(message)),
              artifact: (artifact, options) => report(ctx.artifact(artifact, options)),
              step,
              sleep,
              delegate
            })
          },
          // The failure itself, so the task's reason is its message (not "An unknown error occurred").
          catch: (error) => error
        }),
        outcomeOf
      )
    })
})
