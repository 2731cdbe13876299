import { assign, setup, type SnapshotFrom } from "xstate"
import type { TaskEvent } from "./TaskEvent.js"

/**
 * The law of a task's life. Each machine event is a domain event (its `type`
 * is the event type), so "may this fact be appended?" is exactly
 * `snapshot.can(event)`. States are named after the A2A states, plus
 * `NEW` for a stream with no events yet.
 *
 * States, guards and assigns only: no invoke, no delays. Time and fibers
 * belong to Effect.
 */
export interface MachineContext {
  /** artifactId -> true once its last chunk arrived (no more appends). */
  readonly artifacts: Readonly<Record<string, boolean>>
  /** Steps the current turn has recorded (its journal); absent before the first (and in rows from before steps). */
  readonly steps?: number
  /** The turn's pending durable timer (`ctx.sleep`): its place in the journal and when it is due. */
  readonly timer?: { readonly sequence: number; readonly dueAt: string }
}

export const taskMachine = setup({
  types: {
    context: {} as MachineContext,
    events: {} as TaskEvent
  },
  guards: {
    /** An appended chunk needs an open artifact of the same id to extend. */
    artifactAcceptable: ({ context, event }) => {
      if (event.type !== "ArtifactAdded" || !event.append) return true
      return context.artifacts[event.artifact.artifactId] === false
    },
    /** A step's record (or failed attempt) is the next step of the turn's journal: none skipped, none twice. */
    nextStep: ({ context, event }) =>
      (event.type !== "StepCompleted" && event.type !== "StepAttemptFailed" && event.type !== "TimerStarted" && event.type !== "DelegationStarted") ||
      event.sequence === (context.steps ?? 0) + 1,
    /** A timer fires only when one is pending, at its own place. */
    timerPending: ({ context, event }) => event.type === "TimerFired" && context.timer !== undefined && context.timer.sequence === event.sequence
  },
  actions: {
    /** Remember which artifacts are still open for appended chunks. */
    trackArtifact: assign({
      artifacts: ({ context, event }) =>
        event.type === "ArtifactAdded" ? { ...context.artifacts, [event.artifact.artifactId]: event.lastChunk } : context.artifacts
    }),
    /** One more step in the turn's journal. */
    countStep: assign({ steps: ({ context }) => (context.steps ?? 0) + 1 }),
    /** A failed attempt: the step's place is taken only when no attempt follows (and the count exists from now on). */
    countFinalFailure: assign({
      steps: ({ context, event }) => (context.steps ?? 0) + (event.type === "StepAttemptFailed" && event.retryAt === undefined ? 1 : 0)
    }),
    /**
     * A new turn (an answer to a question), or a journal set aside: no steps recorded. A task that never
     * recorded one keeps no count (its snapshot stays as it was before steps existed).
     */
    clearSteps: assign({ steps: ({ context }) => (context.steps === undefined ? undefined : 0), timer: () => undefined }),
    /**
     * A timer takes the turn's next place and is the pending one (a turn sleeps on one timer at a time: a
     * later one replaces a timer the agent's own code stopped waiting for, as in a race).
     */
    startTimer: assign({
      steps: ({ context }) => (context.steps ?? 0) + 1,
      timer: ({ event }) => (event.type === "TimerStarted" ? { sequence: event.sequence, dueAt: event.dueAt } : undefined)
    }),
    fireTimer: assign({ timer: () => undefined }),
    /** The journal's count exists from the first of its events on (so the turn's journal is read). */
    keepCount: assign({ steps: ({ context }) => context.steps ?? 0 })
  }
}).createMachine({
  id: "task",
  initial: "NEW",
  context: { artifacts: {} },
  states: {
    NEW: {
      on: { TaskSubmitted: "TASK_STATE_SUBMITTED" }
    },
    TASK_STATE_SUBMITTED: {
      on: {
        TaskStarted: "TASK_STATE_WORKING",
        TaskFailed: "TASK_STATE_FAILED",
        TaskCanceled: "TASK_STATE_CANCELED",
        TaskRejected: "TASK_STATE_REJECTED"
      }
    },
    TASK_STATE_WORKING: {
      on: {
        StatusMessageAdded: { target: "TASK_STATE_WORKING", reenter: false },
        ArtifactAdded: { guard: "artifactAcceptable", actions: "trackArtifact" },
        InputRequested: "TASK_STATE_INPUT_REQUIRED",
        AuthRequested: "TASK_STATE_AUTH_REQUIRED",
        TaskRequeued: "TASK_STATE_SUBMITTED",
        TaskCompleted: "TASK_STATE_COMPLETED",
        TaskFailed: "TASK_STATE_FAILED",
        TaskCanceled: "TASK_STATE_CANCELED",
        TaskRejected: "TASK_STATE_REJECTED",
        StepCompleted: { guard: "nextStep", actions: "countStep" },
        // A final failure (no next attempt) takes its step's place in the journal, as a completion does.
        StepAttemptFailed: { guard: "nextStep", actions: "countFinalFailure" },
        StepsReset: { actions: "clearSteps" },
        TimerStarted: { guard: "nextStep", actions: "startTimer" },
        TimerFired: { guard: "timerPending", actions: "fireTimer" },
        // Within its step, at the step's place, which its final record takes (a count exists from now on).
        DelegationStarted: { guard: "nextStep", actions: "keepCount" }
      }
    },
    TASK_STATE_INPUT_REQUIRED: {
      on: {
        InputProvided: { target: "TASK_STATE_SUBMITTED", actions: "clearSteps" },
        TaskFailed: "TASK_STATE_FAILED",
        TaskCanceled: "TASK_STATE_CANCELED",
        TaskRejected: "TASK_STATE_REJECTED"
      }
    },
    TASK_STATE_AUTH_REQUIRED: {
      on: {
        InputProvided: { target: "TASK_STATE_SUBMITTED", actions: "clearSteps" },
        TaskFailed: "TASK_STATE_FAILED",
        TaskCanceled: "TASK_STATE_CANCELED",
        TaskRejected: "TASK_STATE_REJECTED"
      }
    },
    TASK_STATE_COMPLETED: { type: "final" },
    TASK_STATE_FAILED: { type: "final" },
    TASK_STATE_CANCELED: { type: "final" },
    TASK_STATE_REJECTED: { type: "final" }
  }
})

export type TaskMachineSnapshot = SnapshotFrom<typeof taskMachine>
export type MachineStateName = "NEW" | import("./TaskState.js").TaskState
