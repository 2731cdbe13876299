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
    }
  },
  actions: {
    /** Remember which artifacts are still open for appended chunks. */
    trackArtifact: assign({
      artifacts: ({ context, event }) =>
        event.type === "ArtifactAdded" ? { ...context.artifacts, [event.artifact.artifactId]: event.lastChunk } : context.artifacts
    })
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
        TaskRejected: "TASK_STATE_REJECTED"
      }
    },
    TASK_STATE_INPUT_REQUIRED: {
      on: {
        InputProvided: "TASK_STATE_SUBMITTED",
        TaskFailed: "TASK_STATE_FAILED",
        TaskCanceled: "TASK_STATE_CANCELED",
        TaskRejected: "TASK_STATE_REJECTED"
      }
    },
    TASK_STATE_AUTH_REQUIRED: {
      on: {
        InputProvided: "TASK_STATE_SUBMITTED",
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
