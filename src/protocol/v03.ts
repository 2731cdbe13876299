import type { TaskState } from "../domain/TaskState.js"

/**
 * The A2A v0.3 wire format, translated at the edge (spec Appendix A.2:
 * servers MAY accept legacy request forms). Requests are rewritten into
 * v1.0 params before the shared methods run; results and stream events
 * are rewritten back into v0.3 shapes (`kind` fields, lowercase states,
 * `file` parts, `final` on the last status update).
 */
type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v)

/** v0.3 method -> the v1.0 method that does the work. */
export const methodMap: Readonly<Record<string, string>> = {
  "message/send": "SendMessage",
  "message/stream": "SendStreamingMessage",
  "tasks/get": "GetTask",
  "tasks/cancel": "CancelTask",
  "tasks/resubscribe": "SubscribeToTask",
  "tasks/list": "ListTasks",
  "tasks/pushNotificationConfig/set": "CreateTaskPushNotificationConfig",
  "tasks/pushNotificationConfig/get": "GetTaskPushNotificationConfig",
  "tasks/pushNotificationConfig/list": "ListTaskPushNotificationConfigs",
  "tasks/pushNotificationConfig/delete": "DeleteTaskPushNotificationConfig",
  "agent/getAuthenticatedExtendedCard": "GetExtendedAgentCard"
}

const stateNames: ReadonlyArray<readonly [string, TaskState]> = [
  ["submitted", "TASK_STATE_SUBMITTED"],
  ["working", "TASK_STATE_WORKING"],
  ["input-required", "TASK_STATE_INPUT_REQUIRED"],
  ["auth-required", "TASK_STATE_AUTH_REQUIRED"],
  ["completed", "TASK_STATE_COMPLETED"],
  ["failed", "TASK_STATE_FAILED"],
  ["canceled", "TASK_STATE_CANCELED"],
  ["rejected", "TASK_STATE_REJECTED"]
]
const toV1State = new Map(stateNames)
const toV03State = new Map(stateNames.map(([a, b]) => [b as string, a]))

// ---------------------------------------------------------------- requests (v0.3 -> v1.0)

const partIn = (p: unknown): unknown => {
  if (!isObject(p)) return p
  const { kind, file, ...rest } = p
  if (kind === "file" && isObject(file)) {
    const { bytes, uri, mimeType, name } = file
    return {
      ...rest,
      ...(bytes !== undefined ? { raw: bytes } : {}),
      ...(uri !== undefined ? { url: uri } : {}),
      ...(mimeType !== undefined ? { mediaType: mimeType } : {}),
      ...(name !== undefined ? { filename: name } : {})
    }
  }
  return rest // text and data parts keep their field; only `kind` goes
}

const messageIn = (m: unknown): unknown => {
  if (!isObject(m)) return m
  const { kind: _kind, role, parts, ...rest } = m
  return {
    ...rest,
    role: role === "user" ? "ROLE_USER" : role === "agent" ? "ROLE_AGENT" : role,
    parts: Array.isArray(parts) ? parts.map(partIn) : parts
  }
}

/** v0.3 PushNotificationConfig {id, url, token, authentication: {schemes[], credentials}} as v1.0's flat fields. */
const pushConfigIn = (c: unknown): unknown => {
  if (!isObject(c)) return c
  const { authentication, ...rest } = c
  if (!isObject(authentication)) return rest
  const { schemes, credentials } = authentication
  const scheme = Array.isArray(schemes) ? schemes[0] : undefined
  return { ...rest, authentication: { scheme, ...(credentials !== undefined ? { credentials } : {}) } }
}

/** v0.3 params as v1.0 params for the mapped method. Unknown shapes pass through for validation to judge. */
export const paramsIn = (method: string, params: unknown): unknown => {
  if (!isObject(params)) return params
  switch (method) {
    case "message/send":
    case "message/stream": {
      const { message, configuration, ...rest } = params
      const out: Json = { ...rest, message: messageIn(message) }
      if (isObject(configuration)) {
        const { blocking, pushNotificationConfig, ...conf } = configuration
        // v0.3 `blocking`: false returns at once; unset or true waits (as v1.0's default, and a2a-python).
        out.configuration = {
          ...conf,
          ...(blocking === false ? { returnImmediately: true } : {}),
          ...(pushNotificationConfig !== undefined ? { taskPushNotificationConfig: pushConfigIn(pushNotificationConfig) } : {})
        }
      }
      return out
    }
    case "tasks/list": {
      const { status, ...rest } = params
      return typeof status === "string" && toV1State.has(status) ? { ...rest, status: toV1State.get(status) } : params
    }
    case "tasks/pushNotificationConfig/set": {
      const { pushNotificationConfig, ...rest } = params
      return isObject(pushNotificationConfig) ? { ...rest, ...(pushConfigIn(pushNotificationConfig) as Json) } : params
    }
    case "tasks/pushNotificationConfig/list": {
      const { id, ...rest } = params
      return { ...rest, taskId: id }
    }
    case "tasks/pushNotificationConfig/get":
    case "tasks/pushNotificationConfig/delete": {
      const { id, pushNotificationConfigId, ...rest } = params
      return { ...rest, taskId: id, id: pushNotificationConfigId }
    }
    default:
      return params
  }
}

// ---------------------------------------------------------------- results (v1.0 -> v0.3)

const partOut = (p: unknown): unknown => {
  if (!isObject(p)) return p
  const { raw, url, mediaType, filename, text, data, ...rest } = p
  if (raw !== undefined || url !== undefined) {
    const file: Json = {
      ...(raw !== undefined ? { bytes: raw } : { uri: url }),
      ...(mediaType !== undefined ? { mimeType: mediaType } : {}),
      ...(filename !== undefined ? { name: filename } : {})
    }
    return { kind: "file", file, ...rest }
  }
  if (data !== undefined) return { kind: "data", data, ...rest }
  return { kind: "text", text, ...rest }
}

const messageOut = (m: unknown): unknown => {
  if (!isObject(m)) return m
  const { role, parts, ...rest } = m
  return {
    kind: "message",
    ...rest,
    role: role === "ROLE_USER" ? "user" : role === "ROLE_AGENT" ? "agent" : role,
    parts: Array.isArray(parts) ? parts.map(partOut) : parts
  }
}

const statusOut = (s: unknown): unknown => {
  if (!isObject(s)) return s
  const { state, message, ...rest } = s
  return { ...rest, state: toV03State.get(state as string) ?? state, ...(message !== undefined ? { message: messageOut(message) } : {}) }
}

const artifactOut = (a: unknown): unknown => {
  if (!isObject(a)) return a
  const { parts, ...rest } = a
  return { ...rest, parts: Array.isArray(parts) ? parts.map(partOut) : parts }
}

export const taskOut = (t: unknown): unknown => {
  if (!isObject(t)) return t
  const { status, artifacts, history, ...rest } = t
  return {
    kind: "task",
    ...rest,
    status: statusOut(status),
    ...(Array.isArray(artifacts) ? { artifacts: artifacts.map(artifactOut) } : {}),
    ...(Array.isArray(history) ? { history: history.map(messageOut) } : {})
  }
}

/** A v1.0 TaskPushNotificationConfig as v0.3's {taskId, pushNotificationConfig}. */
const pushConfigOut = (c: unknown): unknown => {
  if (!isObject(c)) return c
  const { taskId, tenant: _tenant, authentication, ...rest } = c
  return {
    taskId,
    pushNotificationConfig: {
      ...rest,
      ...(isObject(authentication) ? { authentication: { schemes: [authentication.scheme] } } : {})
    }
  }
}

/** A v1.0 method result as its v0.3 result. */
export const resultOut = (method: string, result: unknown): unknown => {
  if (!isObject(result)) return result
  switch (method) {
    case "message/send":
      return result.task !== undefined ? taskOut(result.task) : messageOut(result.message)
    case "tasks/get":
    case "tasks/cancel":
      return taskOut(result)
    case "tasks/list":
      return { ...result, tasks: Array.isArray(result.tasks) ? result.tasks.map(taskOut) : result.tasks }
    case "tasks/pushNotificationConfig/set":
    case "tasks/pushNotificationConfig/get":
      return pushConfigOut(result)
    case "tasks/pushNotificationConfig/list":
      return Array.isArray(result.configs) ? result.configs.map(pushConfigOut) : []
    case "tasks/pushNotificationConfig/delete":
      return null
    default:
      return result
  }
}

const terminalStates = new Set(["completed", "failed", "canceled", "rejected"])

/**
 * A v1.0 StreamResponse as a v0.3 stream event; `final` marks the update the
 * stream closes on: a terminal state, or for message/stream also input-required.
 */
export const streamEventOut = (method: string, event: unknown): unknown => {
  if (!isObject(event)) return event
  if (event.task !== undefined) return taskOut(event.task)
  if (event.message !== undefined) return messageOut(event.message)
  if (isObject(event.statusUpdate)) {
    const status = statusOut(event.statusUpdate.status) as Json
    const state = status.state as string
    const final = terminalStates.has(state) || (method === "message/stream" && state === "input-required")
    return { kind: "status-update", ...event.statusUpdate, status, final }
  }
  if (isObject(event.artifactUpdate)) {
    return { kind: "artifact-update", ...event.artifactUpdate, artifact: artifactOut(event.artifactUpdate.artifact) }
  }
  return event
}
