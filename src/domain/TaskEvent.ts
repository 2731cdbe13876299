import type { Artifact, JsonValue, Message } from "./Message.js"

/**
 * The persisted facts of a task's life, past tense. Each is stored with a
 * schema version (see `EventSchemaVersions`) so old logs stay replayable
 * when a payload changes: readers upcast by (type, schemaVersion).
 *
 * `at` is when the fact happened (ISO-8601 UTC, milliseconds); time comes
 * from the Effect clock in the engine, never from the domain.
 */
export type TaskEvent =
  | {
      readonly type: "TaskSubmitted"
      readonly at: string
      readonly taskId: string
      readonly contextId: string
      readonly tenant: string
      /** The principal the task belongs to ("" when the server runs without authentication). Since schema 2. */
      readonly owner: string
      readonly message: Message
      /** The W3C trace context of the request that sent it, when tracing was on (docs/operations.md#traces). */
      readonly traceparent?: string
    }
  | {
      readonly type: "TaskStarted"
      readonly at: string
      readonly instanceId: string
      /** The work lease the turn runs under, on a store shared by several processes (informational; absent otherwise). */
      readonly leaseEpoch?: number
    }
  | { readonly type: "StatusMessageAdded"; readonly at: string; readonly message: Message }
  | { readonly type: "ArtifactAdded"; readonly at: string; readonly artifact: Artifact; readonly append: boolean; readonly lastChunk: boolean }
  | { readonly type: "InputRequested"; readonly at: string; readonly message: Message }
  | { readonly type: "AuthRequested"; readonly at: string; readonly message: Message }
  | { readonly type: "InputProvided"; readonly at: string; readonly message: Message; readonly traceparent?: string }
  | { readonly type: "TaskRequeued"; readonly at: string; readonly reason: string }
  | { readonly type: "TaskCompleted"; readonly at: string; readonly message?: Message }
  | { readonly type: "TaskFailed"; readonly at: string; readonly reason: string; readonly message: Message }
  | { readonly type: "TaskCanceled"; readonly at: string; readonly reason?: string }
  | { readonly type: "TaskRejected"; readonly at: string; readonly reason: string; readonly message: Message }
  // The step journal of a turn (`ctx.step`): facts about the agent's own work, kept for the turn that runs
  // again after a crash, never shown to clients. `turn` counts the task's turns (its submission is 1, each
  // answer to a question adds one); `sequence` is the step's place in its turn, from 1.
  | {
      readonly type: "StepCompleted"
      readonly at: string
      readonly turn: number
      readonly sequence: number
      readonly name: string
      /** What the step returned, as JSON; absent when it returned nothing. */
      readonly result?: JsonValue
    }
  | {
      readonly type: "StepAttemptFailed"
      readonly at: string
      readonly turn: number
      readonly sequence: number
      readonly name: string
      readonly attempt: number
      readonly error: string
      /** When the next attempt runs; absent when there is none (the turn fails). */
      readonly retryAt?: string
    }
  /** The turn's journal is set aside: its steps run again (the agent's code changed under it, and it asked for that). */
  | { readonly type: "StepsReset"; readonly at: string; readonly turn: number; readonly reason: string }
  /**
   * A durable timer (`ctx.sleep`) took the turn's next place: the turn goes on when `dueAt` has come. A
   * long sleep's turn stops meanwhile, holding no worker; any process may wake it once it is due.
   */
  | { readonly type: "TimerStarted"; readonly at: string; readonly turn: number; readonly sequence: number; readonly dueAt: string }
  /**
   * The turn's pending timer came due and the turn goes on: in the worker that slept (a short sleep), or in
   * a worker that woke it, which names itself as a start does.
   */
  /**
   * A delegation (`ctx.delegate`, a step of its own) made its remote task: the step's attempt and where the
   * task lives. A turn that runs again watches that task again instead of sending the message again.
   */
  | {
      readonly type: "DelegationStarted"
      readonly at: string
      readonly turn: number
      readonly sequence: number
      readonly attempt: number
      /** The remote agent's URL, as the agent named it. */
      readonly url: string
      readonly remoteTaskId: string
      readonly remoteContextId: string
    }
  | {
      readonly type: "TimerFired"
      readonly at: string
      readonly sequence: number
      readonly instanceId?: string
      readonly leaseEpoch?: number
    }

export type TaskEventType = TaskEvent["type"]

export const EventSchemaVersions: { readonly [K in TaskEventType]: number } = {
  TaskSubmitted: 2,
  TaskStarted: 1,
  StatusMessageAdded: 1,
  ArtifactAdded: 1,
  InputRequested: 1,
  AuthRequested: 1,
  InputProvided: 1,
  TaskRequeued: 1,
  TaskCompleted: 1,
  TaskFailed: 1,
  TaskCanceled: 1,
  TaskRejected: 1,
  StepCompleted: 1,
  StepAttemptFailed: 1,
  StepsReset: 1,
  TimerStarted: 1,
  TimerFired: 1,
  DelegationStarted: 1
}

/** The step journal's event types: the agent's own bookkeeping, not a change a client sees. */
export const journalEventTypes: ReadonlySet<TaskEventType> = new Set([
  "StepCompleted",
  "StepAttemptFailed",
  "StepsReset",
  "TimerStarted",
  "TimerFired",
  "DelegationStarted"
])

/** Is this one of the step journal's events (`journalEventTypes`)? */
export const isJournalEvent = (event: TaskEvent): boolean => journalEventTypes.has(event.type)

export const TaskEventTypes = Object.keys(EventSchemaVersions) as ReadonlyArray<TaskEventType>

/** A fact as stored: the event plus its place in the task's stream. */
export interface VersionedEvent {
  readonly taskId: string
  readonly version: number
  readonly event: TaskEvent
}
