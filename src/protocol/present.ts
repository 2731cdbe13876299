import type { Message } from "../domain/Message.js"
import type { TaskEvent } from "../domain/TaskEvent.js"
import type { Task } from "../domain/TaskView.js"

/**
 * ProtoJSON output: camelCase, enum names, no nulls, empty repeated fields
 * omitted (proto3 implicit presence) unless the spec asks for them.
 */
export interface Presentation {
  /** unset = all history, 0 = none (the key is omitted), N = the last N messages. */
  readonly historyLength?: number
  /** ListTasks: "omit" unless includeArtifacts; elsewhere artifacts show when there are any. */
  readonly artifacts?: "auto" | "omit" | "always"
}

export const presentTask = (task: Task, view: Presentation = {}): Record<string, unknown> => {
  const out: Record<string, unknown> = { id: task.id, contextId: task.contextId, status: task.status }
  const artifacts = view.artifacts ?? "auto"
  if (artifacts === "always" || (artifacts === "auto" && task.artifacts.length > 0)) out.artifacts = task.artifacts
  const n = view.historyLength
  const history = n === undefined ? task.history : n === 0 ? [] : task.history.slice(-n)
  if (history.length > 0) out.history = history
  if (task.metadata !== undefined) out.metadata = task.metadata
  return out
}

/** The StreamResponse for one committed fact; none for the step journal's, which clients never see. */
export const streamResponseFor = (taskId: string, contextId: string, event: TaskEvent): Record<string, unknown> | undefined => {
  const status = (state: string, message?: Message) => ({
    statusUpdate: { taskId, contextId, status: message === undefined ? { state, timestamp: event.at } : { state, message, timestamp: event.at } }
  })
  switch (event.type) {
    case "TaskSubmitted":
    case "InputProvided":
    case "TaskRequeued":
      return status("TASK_STATE_SUBMITTED")
    case "TaskStarted":
      return status("TASK_STATE_WORKING")
    case "StatusMessageAdded":
      return status("TASK_STATE_WORKING", event.message)
    case "ArtifactAdded":
      return {
        artifactUpdate: {
          taskId,
          contextId,
          artifact: event.artifact,
          ...(event.append ? { append: true } : {}),
          ...(event.lastChunk ? { lastChunk: true } : {})
        }
      }
    case "InputRequested":
      return status("TASK_STATE_INPUT_REQUIRED", event.message)
    case "AuthRequested":
      return status("TASK_STATE_AUTH_REQUIRED", event.message)
    case "TaskCompleted":
      return status("TASK_STATE_COMPLETED", event.message)
    case "TaskFailed":
      return status("TASK_STATE_FAILED", event.message)
    case "TaskCanceled":
      return status("TASK_STATE_CANCELED")
    case "TaskRejected":
      return status("TASK_STATE_REJECTED", event.message)
    case "StepCompleted":
    case "StepAttemptFailed":
    case "StepsReset":
      return undefined
  }
}
