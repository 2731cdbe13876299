import { extend } from "./extend.js"
import type { Artifact, Message, Metadata } from "./Message.js"
import type { TaskEvent } from "./TaskEvent.js"
import type { TaskState } from "./TaskState.js"

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

const withStatus = (task: Task, state: TaskState, at: string, message?: Message): Task =>
  extend(task, { status: message === undefined ? { state, timestamp: at } : { state, message, timestamp: at } })

const addHistory = (task: Task, message: Message | undefined): Task =>
  message === undefined ? task : extend(task, { history: [...task.history, message] })

/** An artifact event's artifact merged into the one of the same id: its chunk appended, or the whole replaced. */
const mergeArtifact = (existing: Artifact, artifact: Artifact, append: boolean): Artifact =>
  append ? { ...existing, ...artifact, parts: [...existing.parts, ...artifact.parts] } : artifact

/** Append chunk parts to an existing artifact, or add / replace it whole. */
const applyArtifact = (artifacts: ReadonlyArray<Artifact>, artifact: Artifact, append: boolean): ReadonlyArray<Artifact> => {
  const i = artifacts.findIndex((a) => a.artifactId === artifact.artifactId)
  if (i < 0) return [...artifacts, artifact]
  const merged = mergeArtifact(artifacts[i]!, artifact, append)
  return artifacts.map((a, j) => (j === i ? merged : a))
}

/**
 * The message a fact adds to history: every message that reaches a client
 * (the user's input, progress, questions, the final word).
 */
const historyMessage = (event: TaskEvent): Message | undefined => {
  switch (event.type) {
    case "TaskSubmitted":
    case "StatusMessageAdded":
    case "InputRequested":
    case "AuthRequested":
    case "InputProvided":
    case "TaskCompleted":
    case "TaskFailed":
    case "TaskRejected":
      return event.message
    default:
      return undefined
  }
}

/** Fold one fact into the A2A Task. */
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
  if (event.type === "ArtifactAdded") return extend(task, { artifacts: applyArtifact(task.artifacts, event.artifact, event.append) })
  return addHistory(evolveStatus(task, event), historyMessage(event))
}

/** The task without its history and artifacts (a big task's head: its events hold the lists). */
export const head = (task: Task): Task => extend(task, { artifacts: [], history: [] })

/** Fold one fact into a task's head (`head`): its status only; the lists stay empty. */
export const evolveHead = (task: Task | undefined, event: TaskEvent): Task | undefined =>
  task === undefined || event.type === "ArtifactAdded" ? task : evolveStatus(task, event)

/** The status a fact leaves its task in (a status message only where the protocol shows one). */
const evolveStatus = (task: Task, event: TaskEvent): Task => {
  switch (event.type) {
    case "TaskStarted":
      return withStatus(task, "TASK_STATE_WORKING", event.at)
    case "StatusMessageAdded":
      return withStatus(task, "TASK_STATE_WORKING", event.at, event.message)
    case "InputRequested":
      return withStatus(task, "TASK_STATE_INPUT_REQUIRED", event.at, event.message)
    case "AuthRequested":
      return withStatus(task, "TASK_STATE_AUTH_REQUIRED", event.at, event.message)
    case "InputProvided":
    case "TaskRequeued":
      return withStatus(task, "TASK_STATE_SUBMITTED", event.at)
    case "TaskCompleted":
      return withStatus(task, "TASK_STATE_COMPLETED", event.at, event.message)
    case "TaskFailed":
      return withStatus(task, "TASK_STATE_FAILED", event.at, event.message)
    case "TaskCanceled":
      return withStatus(task, "TASK_STATE_CANCELED", event.at)
    case "TaskRejected":
      return withStatus(task, "TASK_STATE_REJECTED", event.at, event.message)
    case "TaskSubmitted":
    case "ArtifactAdded":
    case "StepCompleted":
    case "StepAttemptFailed":
    case "StepsReset":
    case "TimerStarted":
    case "TimerFired":
    case "DelegationStarted":
      return task
  }
}

/**
 * A task's history and artifacts from all of its facts, in one pass (linear where folding them one by one
 * copies the lists at every fact): `head` is the task as its last fact left it, with its lists left out
 * (a big task's read-model row). The same lists `evolve` builds, element for element.
 */
export const assemble = (head: Task, events: Iterable<TaskEvent>): Task => {
  const history: Array<Message> = []
  const artifacts: Array<Artifact> = []
  const artifactAt = new Map<string, number>()
  for (const event of events) {
    if (event.type === "ArtifactAdded") {
      const { artifact } = event
      const i = artifactAt.get(artifact.artifactId)
      if (i === undefined) {
        artifactAt.set(artifact.artifactId, artifacts.length)
        artifacts.push(artifact)
      } else artifacts[i] = mergeArtifact(artifacts[i]!, artifact, event.append)
      continue
    }
    const message = historyMessage(event)
    if (message !== undefined) history.push(message)
  }
  return extend(head, { artifacts, history })
}
