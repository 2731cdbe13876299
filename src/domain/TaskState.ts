/**
 * The eight A2A task states, as their ProtoJSON enum names, and the sets the
 * protocol reasons with (terminal, interrupted, active).
 */
export const TaskStates = [
  "TASK_STATE_SUBMITTED",
  "TASK_STATE_WORKING",
  "TASK_STATE_INPUT_REQUIRED",
  "TASK_STATE_AUTH_REQUIRED",
  "TASK_STATE_COMPLETED",
  "TASK_STATE_FAILED",
  "TASK_STATE_CANCELED",
  "TASK_STATE_REJECTED"
] as const

export type TaskState = (typeof TaskStates)[number]

/** Proto enum numbers, so integer input (allowed by ProtoJSON) can be read. */
export const TaskStateNumbers: Record<number, TaskState> = {
  1: "TASK_STATE_SUBMITTED",
  2: "TASK_STATE_WORKING",
  3: "TASK_STATE_COMPLETED",
  4: "TASK_STATE_FAILED",
  5: "TASK_STATE_CANCELED",
  6: "TASK_STATE_INPUT_REQUIRED",
  7: "TASK_STATE_REJECTED",
  8: "TASK_STATE_AUTH_REQUIRED"
}

export const TerminalStates: ReadonlyArray<TaskState> = ["TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"]
const terminal: ReadonlySet<TaskState> = new Set(TerminalStates)
const interrupted: ReadonlySet<TaskState> = new Set(["TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"])

export const isTerminal = (state: TaskState): boolean => terminal.has(state)
export const isInterrupted = (state: TaskState): boolean => interrupted.has(state)

/** The state a fact leaves its task in; undefined when the state does not change (an artifact). */
export const stateAfter = (event: import("./TaskEvent.js").TaskEvent): TaskState | undefined => {
  switch (event.type) {
    case "TaskSubmitted":
    case "InputProvided":
    case "TaskRequeued":
      return "TASK_STATE_SUBMITTED"
    case "TaskStarted":
    case "StatusMessageAdded":
      return "TASK_STATE_WORKING"
    case "ArtifactAdded":
      return undefined
    case "InputRequested":
      return "TASK_STATE_INPUT_REQUIRED"
    case "AuthRequested":
      return "TASK_STATE_AUTH_REQUIRED"
    case "TaskCompleted":
      return "TASK_STATE_COMPLETED"
    case "TaskFailed":
      return "TASK_STATE_FAILED"
    case "TaskCanceled":
      return "TASK_STATE_CANCELED"
    case "TaskRejected":
      return "TASK_STATE_REJECTED"
  }
}
