import type { Artifact, Message, Metadata } from "./Message"
import type { TaskEvent } from "./TaskEvent"
import type { TaskState } from "./TaskState"

/** The A2A v1.0 Task as the read side serves it (ProtoJSON field names). */
export interface TaskStatus {
  readonly state: TaskState
  readonly message?: Message
  readonly timestamp: string
}

export interface Task {
  readonly id: string
  readonly contextId: string
  readonly status: TaskStatus
  readonly artifacts: ReadonlyArray<Artifact>
  readonly history: ReadonlyArray<Message>
  readonly metadata?: Metadata
}

const withStatus = (task: Task, state: TaskState, at: string, message?: Message): Task => ({
  ...task,
  status: message === undefined ? { state, timestamp: at } : { state, message, timestamp: at }
})

const addHistory = (task: Task, message: Message | undefined): Task =>
  message === undefined ? task : { ...task, history: [...task.history, message] }

/** Append chunk parts to an existing artifact, or add / replace it whole. */
const applyArtifact = (artifacts: ReadonlyArray<Artifact>, artifact: Artifact, append: boolean): ReadonlyArray<Artifact> => {
  const i = artifacts.findIndex((a) => a.artifactId === artifact.artifactId)
  if (i < 0) return [...artifacts, artifact]
  const existing = artifacts[i]!
  const merged: Artifact = append ? { ...existing, ...artifact, parts: [...existing.parts, ...artifact.parts] } : artifact
  return artifacts.map((a, j) => (j === i ? merged : a))
}

/**
 * Fold one fact into the A2A Task. Every message that reaches a client
 * (the user's input, progress, questions, the final word) lands in history.
 */
export const evolve = (task: Task | undefined, event: TaskEvent): Task | undefined => {
  if (event.type === "TaskSubmitted") {
    return {
      id: event.taskId,
      contextId: event.contextId,
      status: { state: "TASK_STATE_SUBMITTED", timestamp: event.at },
      artifacts: [],
      history: [event.message]
    }
  }
  if (task === undefined) return undefined
  switch (event.type) {
    case "TaskStarted":
      return withStatus(task, "TASK_STATE_WORKING", event.at)
    case "StatusMessageAdded":
      return addHistory(withStatus(task, "TASK_STATE_WORKING", event.at, event.message), event.message)
    case "ArtifactAdded":
      return { ...task, artifacts: applyArtifact(task.artifacts, event.artifact, event.append) }
    case "InputRequested":
      return addHistory(withStatus(task, "TASK_STATE_INPUT_REQUIRED", event.at, event.message), event.message)
    case "AuthRequested":
      return addHistory(withStatus(task, "TASK_STATE_AUTH_REQUIRED", event.at, event.message), event.message)
    case "InputProvided":
      return addHistory(withStatus(task, "TASK_STATE_SUBMITTED", event.at), event.message)
    case "TaskRequeued":
      return withStatus(task, "TASK_STATE_SUBMITTED", event.at)
    case "TaskCompleted":
      return addHistory(withStatus(task, "TASK_STATE_COMPLETED", event.at, event.message), event.message)
    case "TaskFailed":
      return addHistory(withStatus(task, "TASK_STATE_FAILED", event.at, event.message), event.message)
    case "TaskCanceled":
      return withStatus(task, "TASK_STATE_CANCELED", event.at)
    case "TaskRejected":
      return addHistory(withStatus(task, "TASK_STATE_REJECTED", event.at, event.message), event.message)
  }
}
