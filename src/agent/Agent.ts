import { type Context, Data, type Duration, Effect, type Schema } from "effect"
import { randomUUID } from "node:crypto"
import type { Artifact, Message, Part } from "../domain/Message.js"
import type { TaskState } from "../domain/TaskState.js"
import type { Task } from "../domain/TaskView.js"

/**
 * The port an agent author writes against. A worker turn is an Effect that
 * reports through its `AgentContext` and ends with a `TurnOutcome`. The
 * engine runs it in a supervised fiber, records every report as an event,
 * turns any failure into FAILED, and interrupts it on cancel.
 */
export interface AgentSkill {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly tags: ReadonlyArray<string>
  readonly examples?: ReadonlyArray<string>
  readonly inputModes?: ReadonlyArray<string>
  readonly outputModes?: ReadonlyArray<string>
}

/** An agent's extended card: what is added to (or replaces in) its public card for authenticated callers. */
export interface ExtendedCard {
  /** Replaces the public description. */
  readonly description?: string
  /** Added after the public skills. */
  readonly skills?: ReadonlyArray<AgentSkill>
}

export interface AgentContext {
  readonly taskId: string
  readonly contextId: string
  /** The user message this turn answers: the first message, or the latest answer to a question. */
  readonly input: Message
  /** The task as it stood when the turn started (history, artifacts). */
  readonly task: Task
  /** Report progress: a WORKING status update whose agent message also lands in history. */
  readonly progress: (message: string | ReadonlyArray<Part>) => Effect.Effect<void, AgentEmitError>
  /** Emit an artifact whole, or one chunk of it (`append` to extend, `lastChunk` to close it). */
  readonly artifact: (
    artifact: Artifact,
    options?: { readonly append?: boolean; readonly lastChunk?: boolean }
  ) => Effect.Effect<void, AgentEmitError>
  /**
   * Run `effect` as a durable step: its result is recorded in the task's log before `step` returns. When
   * the turn runs again (after a crash, a lost lease, a restart), a step already recorded returns its
   * result without running, so neither its effect nor the emissions made inside it are repeated. Steps are
   * matched by their order in the turn and checked by name; call them in the same order every time.
   * A failing effect is tried again by the step's policy (`options.retry`); each failed attempt is
   * recorded; the last one fails the step with `StepFailed`. The effect runs at least once (a crash
   * between it and its record runs it again); its result is recorded at most once.
   */
  readonly step: <A, E, R, I = unknown>(
    name: string,
    effect: Effect.Effect<A, E, R>,
    options?: StepOptions<A, E, I>
  ) => Effect.Effect<A, StepFailed, R>
  /**
   * A durable timer: wait `duration`, recorded in the task's log with its due time before the wait. It
   * takes the turn's next place, as a step does. A long sleep (5 seconds or more by default,
   * `parkSleepsFromMs`) gives its worker up: the turn stops, holding no worker and no fiber, and runs again
   * from its start when the timer is due, its recorded steps and this sleep passing at once. So put the work
   * before a sleep in steps, and do not race a long sleep against work that is not a step: the sleep parks
   * the whole turn (a step running beside it keeps the sleep in its worker instead). After a restart the
   * turn waits only for what is left. A cancel during a sleep records CANCELED at once.
   */
  readonly sleep: (duration: Duration.DurationInput) => Effect.Effect<void>
  /**
   * Delegate work to another A2A agent (v1.0, JSON-RPC): send it `message` and wait until its task is
   * finished or asks for input, as a durable step of its own. The remote task is recorded as soon as it
   * exists (`DelegationStarted`), so a turn that runs again (after a crash, on another instance) watches
   * that task again instead of sending the message again. The result is recorded like a step's. A remote
   * task that ends FAILED, REJECTED or CANCELED fails the attempt with `DelegationFailed`, and the step's
   * retry policy applies (each attempt a new remote task); so does a remote that cannot be reached.
   * Canceling this task cancels the remote task it waits on. Credentials for the remote host come from the
   * engine's configuration (`delegation.credentials`), never from the message.
   */
  readonly delegate: (url: string, message: string | ReadonlyArray<Part>, options?: DelegateOptions) => Effect.Effect<DelegationResult, StepFailed>
}

/** How `ctx.delegate` names its step, forwards progress and tries again. */
export interface DelegateOptions {
  /** The step's name (default: "delegate to" and the URL). */
  readonly name?: string
  /** Report each status message of the remote task as this task's progress (its text). Default false. */
  readonly forwardProgress?: boolean
  /** Continue a context the remote agent knows (its `contextId`). */
  readonly contextId?: string
  /** As a step's (`StepOptions.retry`): a failed remote task or an unreachable remote is tried again. */
  readonly retry?: StepOptions<DelegationResult, DelegationFailed>["retry"]
}

/** Where a delegated task ended (or paused: `TASK_STATE_INPUT_REQUIRED`, `TASK_STATE_AUTH_REQUIRED`). */
export interface DelegationResult {
  readonly url: string
  /** The remote task (absent when the remote agent answered with a message and made no task). */
  readonly taskId?: string
  readonly contextId?: string
  readonly state: TaskState
  /** The remote's last status message (or its direct answer), if any, and its text. */
  readonly message?: Message
  readonly text: string
  readonly artifacts: ReadonlyArray<Artifact>
}

/** A delegation's remote task ended FAILED, REJECTED or CANCELED, or the remote agent could not be asked. */
export class DelegationFailed extends Data.TaggedError("DelegationFailed")<{
  readonly url: string
  readonly taskId?: string
  readonly state?: TaskState
  readonly message: string
}> {}

/** How a step (`AgentContext.step`) keeps its result and tries again. */
export interface StepOptions<A, E, I = unknown> {
  /**
   * The result as this schema encodes it (its encoded side must be JSON), decoded again on replay. Without
   * one, the result must be JSON itself (no Date, Map or class instance inside): a clear error at the step.
   */
  readonly schema?: Schema.Schema<A, I>
  /** Retries of a step whose effect fails (a defect or an interruption is never retried). Default: 3 attempts. */
  readonly retry?: {
    /** Attempts in all, the first included (1: no retry). Default 3. */
    readonly attempts?: number
    /** The wait before the second attempt; it doubles for each next one. Default 500 ms. */
    readonly initialDelayMs?: number
    /** The longest wait between attempts. Default 30 s. */
    readonly maxDelayMs?: number
    /** Each wait is drawn between half and all of it, so retries of many tasks spread out. Default true. */
    readonly jitter?: boolean
    /** Whether this error is worth another attempt. Default: every error is. */
    readonly retryable?: (error: E) => boolean
  }
}

/** A step failed on its last attempt (or, replayed, had failed so before the turn ran again). */
export class StepFailed extends Data.TaggedError("StepFailed")<{
  readonly name: string
  /** Its place in the turn, from 1. */
  readonly sequence: number
  readonly attempts: number
  /** The last attempt's error, in words. */
  readonly message: string
  /** The last attempt's error itself (absent on replay: only its words were recorded). */
  readonly cause?: unknown
}> {}

/** An emission the task's machine refused (e.g. appending to an unknown artifact). */
export class AgentEmitError extends Data.TaggedError("AgentEmitError")<{ readonly message: string }> {
  constructor(message: string) {
    super({ message })
  }
}

export type TurnOutcome =
  | { readonly _tag: "Completed"; readonly message?: ReadonlyArray<Part>; readonly artifacts?: ReadonlyArray<Artifact> }
  | { readonly _tag: "Failed"; readonly reason: string }
  | { readonly _tag: "InputRequired"; readonly message: ReadonlyArray<Part> }
  | { readonly _tag: "AuthRequired"; readonly message: ReadonlyArray<Part> }
  | { readonly _tag: "Rejected"; readonly reason: string }

/** Text as one text part; parts as they are. */
export const partsOf = (message: string | ReadonlyArray<Part>): ReadonlyArray<Part> => (typeof message === "string" ? [{ text: message }] : message)

/** Ways to end a turn. */
export const Outcome = {
  /**
   * COMPLETED, with an optional closing message. `artifacts` are delivered with the completion, in one
   * commit: clients see each as an artifact update just before the COMPLETED status, and never the one
   * without the other.
   */
  complete: (message?: string | ReadonlyArray<Part>, options?: { readonly artifacts?: ReadonlyArray<Artifact> }): TurnOutcome => ({
    _tag: "Completed",
    ...(message === undefined ? {} : { message: partsOf(message) }),
    ...(options?.artifacts === undefined || options.artifacts.length === 0 ? {} : { artifacts: options.artifacts })
  }),
  fail: (reason: string): TurnOutcome => ({ _tag: "Failed", reason }),
  requireInput: (question: string | ReadonlyArray<Part>): TurnOutcome => ({ _tag: "InputRequired", message: partsOf(question) }),
  requireAuth: (explanation: string | ReadonlyArray<Part>): TurnOutcome => ({ _tag: "AuthRequired", message: partsOf(explanation) }),
  reject: (reason: string): TurnOutcome => ({ _tag: "Rejected", reason })
} as const

/**
 * An agent. `R` is what its turns need from the application (an LLM client, a database, config): the
 * engine layer built with it requires `R` too, so the application provides its services with ordinary
 * layers, built once, and every turn runs with them.
 */
export interface Agent<R = never> {
  readonly name: string
  readonly description: string
  readonly version: string
  readonly skills: ReadonlyArray<AgentSkill>
  readonly defaultInputModes?: ReadonlyArray<string>
  readonly defaultOutputModes?: ReadonlyArray<string>
  /**
   * What authenticated callers see besides the public card (GetExtendedAgentCard, spec §3.1.11): more
   * skills, and a fuller description. Declared in the public card (`capabilities.extendedAgentCard`)
   * only where authentication is on, since the spec has the extended card require it.
   */
  readonly extendedCard?: ExtendedCard
  /**
   * Optional direct answer: called for a message that starts no existing
   * task. Returning parts answers with a Message and creates no task;
   * returning undefined creates a task and runs `run`. Keep it quick: it
   * runs in the request.
   */
  readonly reply?: (message: Message) => Effect.Effect<ReadonlyArray<Part> | undefined, never, R>
  /** One worker turn. Failures and defects become FAILED with their message. */
  readonly run: (ctx: AgentContext) => Effect.Effect<TurnOutcome, unknown, R>
  /**
   * When a turn runs again and its steps no longer match what was recorded (the agent's code changed
   * under a running task): fail the task with a reason saying so ("fail", the default), or set the
   * recorded steps aside and run the turn's steps again ("rerun").
   */
  readonly onStepMismatch?: "fail" | "rerun"
}

/**
 * The agent with the services it requires given: what the engine runs. A turn gets `services` as its
 * context, on top of the engine's own; with no services at all, the agent is returned as it is.
 */
export const provideAgent = <R>(agent: Agent<R>, services: Context.Context<R>): Agent => {
  if (services.unsafeMap.size === 0) return agent as Agent
  const { reply, run, ...card } = agent
  return {
    ...card,
    ...(reply !== undefined ? { reply: (message: Message) => Effect.provide(reply(message), services) } : {}),
    run: (ctx) => Effect.provide(run(ctx), services)
  }
}

/** A fresh agent-authored message (the engine stamps task and context ids). */
export const agentMessage = (parts: string | ReadonlyArray<Part>): Message => ({
  messageId: randomUUID(),
  role: "ROLE_AGENT",
  parts: partsOf(parts)
})

/** A fresh user message (a client's, or a test's). */
export const userMessage = (parts: string | ReadonlyArray<Part>): Message => ({
  messageId: randomUUID(),
  role: "ROLE_USER",
  parts: partsOf(parts)
})
