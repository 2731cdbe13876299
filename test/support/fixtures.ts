import type { Message } from "../../src/domain/Message"
import type { TaskEvent } from "../../src/domain/TaskEvent"

export const at = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString()

export const userMessage = (text: string, id = `m-${text}`): Message => ({ messageId: id, role: "ROLE_USER", parts: [{ text }] })
export const agentMessage = (text: string, id = `a-${text}`): Message => ({ messageId: id, role: "ROLE_AGENT", parts: [{ text }] })

/** One sample of every event type, to probe the machine with. */
export const sampleEvents: ReadonlyArray<TaskEvent> = [
  { type: "TaskSubmitted", at: at(0), taskId: "t1", contextId: "c1", tenant: "", owner: "", message: userMessage("hi") },
  { type: "TaskStarted", at: at(1), instanceId: "i1" },
  { type: "StatusMessageAdded", at: at(2), message: agentMessage("step") },
  { type: "ArtifactAdded", at: at(3), artifact: { artifactId: "a1", parts: [{ text: "x" }] }, append: false, lastChunk: false },
  { type: "InputRequested", at: at(4), message: agentMessage("which?") },
  { type: "AuthRequested", at: at(5), message: agentMessage("sign in") },
  { type: "InputProvided", at: at(6), message: userMessage("this one") },
  { type: "TaskRequeued", at: at(7), reason: "restart" },
  { type: "TaskCompleted", at: at(8) },
  { type: "TaskFailed", at: at(9), reason: "boom", message: agentMessage("boom") },
  { type: "TaskCanceled", at: at(10) },
  { type: "TaskRejected", at: at(11), reason: "no", message: agentMessage("no") },
  { type: "StepCompleted", at: at(12), turn: 1, sequence: 1, name: "load", result: { rows: 3 } },
  { type: "StepAttemptFailed", at: at(13), turn: 1, sequence: 1, name: "load", attempt: 1, error: "boom", retryAt: at(14) },
  { type: "StepsReset", at: at(15), turn: 1, reason: "code changed" },
  { type: "TimerStarted", at: at(16), turn: 1, sequence: 1, dueAt: at(20) },
  { type: "TimerFired", at: at(20), sequence: 1, instanceId: "i-2" },
  {
    type: "DelegationStarted",
    at: at(21),
    turn: 1,
    sequence: 1,
    attempt: 1,
    url: "https://remote.example",
    remoteTaskId: "r-1",
    remoteContextId: "rc-1"
  }
]
