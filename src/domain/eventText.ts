import { type Message, textOf } from "./Message.js"
import type { TaskEvent } from "./TaskEvent.js"

/** How the tools show events and ages to a person: one line each, the facts that matter. */
const clip = (text: string, max = 60) => {
  const one = text.replace(/\s+/g, " ").trim()
  return one.length > max ? `${one.slice(0, max - 1)}…` : one
}

const said = (message: Message | undefined) => (message === undefined ? "" : ` "${clip(textOf(message))}"`)

export const summary = (event: TaskEvent): string => {
  switch (event.type) {
    case "TaskSubmitted":
      return `context ${event.contextId}${event.tenant ? ` tenant ${event.tenant}` : ""}${event.owner ? ` owner ${event.owner}` : ""} message ${event.message.messageId}${said(event.message)}`
    case "TaskStarted":
      return `by ${event.instanceId}${event.leaseEpoch !== undefined ? ` (lease epoch ${event.leaseEpoch})` : ""}`
    case "StatusMessageAdded":
    case "InputRequested":
    case "AuthRequested":
      return said(event.message).trim()
    case "InputProvided":
      return `message ${event.message.messageId}${said(event.message)}`
    case "ArtifactAdded":
      return `${event.artifact.artifactId}${event.append ? " (appended chunk)" : ""}${event.lastChunk ? " (last chunk)" : ""}`
    case "TaskRequeued":
      return event.reason
    case "TaskCompleted":
      return said(event.message).trim()
    case "TaskFailed":
    case "TaskRejected":
      return `${event.reason}${said(event.message)}`
    case "TaskCanceled":
      return event.reason ?? ""
    case "StepCompleted":
      return `turn ${event.turn} step ${event.sequence} "${event.name}"${event.result === undefined ? "" : ` → ${clip(JSON.stringify(event.result))}`}`
    case "StepAttemptFailed":
      return `turn ${event.turn} step ${event.sequence} "${event.name}" attempt ${event.attempt} failed: ${clip(event.error)}${event.retryAt === undefined ? "; no more attempts" : `; next at ${event.retryAt}`}`
    case "StepsReset":
      return `turn ${event.turn}: steps run again (${event.reason})`
    case "TimerStarted":
      return `turn ${event.turn} step ${event.sequence}: sleep until ${event.dueAt}`
    case "DelegationStarted":
      return `turn ${event.turn} step ${event.sequence} attempt ${event.attempt}: delegated to ${event.url}, remote task ${event.remoteTaskId}`
    case "TimerFired":
      return `step ${event.sequence}: timer fired${event.instanceId !== undefined ? `, woken by ${event.instanceId}${event.leaseEpoch !== undefined ? ` (lease epoch ${event.leaseEpoch})` : ""}` : ""}`
  }
}

/** "3.2 s", "4 min", "2 h", "5 d": how long ago, roughly. */
export const age = (ms: number): string => {
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(1)} s`
  if (s < 3600) return `${Math.round(s / 60)} min`
  if (s < 86_400) return `${(s / 3600).toFixed(1)} h`
  return `${(s / 86_400).toFixed(1)} d`
}

/** Short state names for people: TASK_STATE_INPUT_REQUIRED → input-required. */
export const stateName = (state: string) =>
  state
    .replace(/^TASK_STATE_/, "")
    .toLowerCase()
    .replace(/_/g, "-")
