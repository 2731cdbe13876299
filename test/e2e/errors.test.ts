import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance } from "../../src/agent/builtins"
import { call, post, rpc, stream, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

/**
 * Every error a client can cause gets the right code, names the field, and
 * carries an ErrorInfo; none crashes the server, leaks a stack, or changes
 * stored data.
 */
let server: RunningServer
beforeAll(async () => {
  server = await startServer({ agent: conformance, maxBodyBytes: 64 * 1024 })
})
afterAll(() => server.close())

const errorInfo = (e: any) => e.data.find((d: any) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo")

const expectError = (r: any, code: number, reason: string, messagePattern?: RegExp) => {
  expect(r.result).toBeUndefined()
  expect(r.error.code).toBe(code)
  expect(errorInfo(r.error)).toMatchObject({ reason, domain: "a2a-protocol.org" })
  if (messagePattern) expect(r.error.message).toMatch(messagePattern)
  expect(r.error.message).not.toMatch(/\n\s+at /) // no stack trace
}

const completedTask = async () => (await call(server.url, "SendMessage", { message: userMessage("done", { messageId: "tck-complete-task-1" }) })).task

describe("JSON-RPC envelope errors", () => {
  it("-32700 for a body that is not JSON", async () => {
    const { text } = await post(server.url, "{not json")
    expectError(JSON.parse(text), -32700, "PARSE_ERROR", /Invalid JSON/)
    expect(JSON.parse(text).id).toBeNull()
  })

  it("-32600 for a batch, a wrong jsonrpc, a missing id or method", async () => {
    for (const body of [
      "[]",
      '"just a string"',
      '{"jsonrpc":"1.0","id":1,"method":"GetTask"}',
      '{"jsonrpc":"2.0","method":"GetTask","params":{}}',
      '{"jsonrpc":"2.0","id":{"a":1},"method":"GetTask"}',
      '{"jsonrpc":"2.0","id":7}'
    ]) {
      const { text } = await post(server.url, body)
      expectError(JSON.parse(text), -32600, "INVALID_REQUEST")
    }
  })

  it("-32600 for JSON nested absurdly deep, without touching the stack", async () => {
    const deepArrays = `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x","extra":${"[".repeat(20_000)}${"]".repeat(20_000)}}}`
    const deepObjects = `{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x","extra":${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}}}`
    for (const body of [deepArrays, deepObjects]) {
      expectError(JSON.parse((await post(server.url, body)).text), -32600, "INVALID_REQUEST", /nested deeper than 64/)
    }
  })

  it("the response echoes the request id, string or number", async () => {
    const a = JSON.parse((await post(server.url, '{"jsonrpc":"2.0","id":"abc","method":"Nope"}')).text)
    const b = JSON.parse((await post(server.url, '{"jsonrpc":"2.0","id":42,"method":"Nope"}')).text)
    expect(a.id).toBe("abc")
    expect(b.id).toBe(42)
  })

  it("-32601 for an unknown method, naming it", async () => {
    expectError(await rpc(server.url, "message/sendd", {}), -32601, "METHOD_NOT_FOUND", /message\/sendd/)
  })

  it("a body over the limit gets 413 and a clear -32600", async () => {
    const big = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "SendMessage", params: { message: userMessage("x".repeat(100 * 1024)) } })
    const { status, text } = await post(server.url, big)
    expect(status).toBe(413)
    expectError(JSON.parse(text), -32600, "INVALID_REQUEST", /exceeds the limit of 65536 bytes/)
  })

  it("-32009 for an A2A-Version other than 1.0; none or 1.0 is served", async () => {
    expectError(await rpc(server.url, "GetTask", { id: "x" }, { "A2A-Version": "0.3" }), -32009, "VERSION_NOT_SUPPORTED", /0\.3/)
    expectError(await rpc(server.url, "GetTask", { id: "x" }, { "A2A-Version": "2.0" }), -32009, "VERSION_NOT_SUPPORTED")
    expectError(await rpc(server.url, "GetTask", { id: "x" }, { "A2A-Version": "1.0" }), -32001, "TASK_NOT_FOUND")
    expectError(await rpc(server.url, "GetTask", { id: "x" }), -32001, "TASK_NOT_FOUND")
  })
})

describe("-32602 invalid params name the field", () => {
  const cases: ReadonlyArray<readonly [string, string, unknown, string]> = [
    ["params not an object", "GetTask", [1, 2], "params"],
    ["missing message", "SendMessage", {}, "message"],
    ["missing messageId", "SendMessage", { message: { role: "ROLE_USER", parts: [{ text: "x" }] } }, "message.messageId"],
    ["empty parts", "SendMessage", { message: { messageId: "m", role: "ROLE_USER", parts: [] } }, "message.parts"],
    [
      "a part with two contents",
      "SendMessage",
      { message: { messageId: "m", role: "ROLE_USER", parts: [{ text: "a", url: "u" }] } },
      "message.parts[0]"
    ],
    ["a bad role", "SendMessage", { message: { messageId: "m", role: "user", parts: [{ text: "a" }] } }, "message.role"],
    [
      "negative historyLength on SendMessage",
      "SendMessage",
      { message: userMessage("x"), configuration: { historyLength: -1 } },
      "configuration.historyLength"
    ],
    ["missing id", "GetTask", {}, "id"],
    ["negative historyLength", "GetTask", { id: "t", historyLength: -1 }, "historyLength"],
    ["pageSize 0", "ListTasks", { pageSize: 0 }, "pageSize"],
    ["pageSize 101", "ListTasks", { pageSize: 101 }, "pageSize"],
    ["an unknown status", "ListTasks", { status: "TASK_STATE_BORED" }, "status"],
    ["a bad timestamp", "ListTasks", { statusTimestampAfter: "yesterday" }, "statusTimestampAfter"],
    ["a forged pageToken", "ListTasks", { pageToken: "not-a-token" }, "pageToken"],
    ["missing id on cancel", "CancelTask", {}, "id"]
  ]
  for (const [name, method, params, field] of cases) {
    it(`${method}: ${name} → ${field}`, async () => {
      const r = await rpc(server.url, method, params)
      expectError(r, -32602, "INVALID_PARAMS")
      expect(r.error!.message).toContain(field)
      expect(errorInfo(r.error).metadata.field).toBe(field)
    })
  }

  it("snake_case field names are accepted as ProtoJSON allows", async () => {
    const r = await rpc(server.url, "SendMessage", {
      message: { message_id: "tck-complete-task-snake", role: "ROLE_USER", parts: [{ text: "x" }] }
    })
    expect(r.result.task.status.state).toBe("TASK_STATE_COMPLETED")
  })

  it("a message whose contextId differs from its task's is refused naming message.contextId", async () => {
    const task = (await call(server.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-1" }) })).task
    expect(task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    const r = await rpc(server.url, "SendMessage", { message: userMessage("a", { taskId: task.id, contextId: "other" }) })
    expectError(r, -32602, "INVALID_PARAMS", /message\.contextId/)
  })
})

describe("A2A errors", () => {
  it("-32001 for an unknown task on every method", async () => {
    expectError(await rpc(server.url, "GetTask", { id: "nope" }), -32001, "TASK_NOT_FOUND", /nope/)
    expectError(await rpc(server.url, "CancelTask", { id: "nope" }), -32001, "TASK_NOT_FOUND")
    expectError(await rpc(server.url, "SendMessage", { message: userMessage("x", { taskId: "nope" }) }), -32001, "TASK_NOT_FOUND")
    const s = await stream(server.url, "SubscribeToTask", { id: "nope" })
    expect(s.contentType).toMatch(/application\/json/)
    expectError(s.json, -32001, "TASK_NOT_FOUND")
  })

  it("-32001 for another tenant's task: it looks exactly like a missing one", async () => {
    const task = await completedTask()
    expectError(await rpc(server.url, "GetTask", { id: task.id, tenant: "someone-else" }), -32001, "TASK_NOT_FOUND")
  })

  it("-32004 for a message to a terminal task, and for subscribing to one", async () => {
    const task = await completedTask()
    expectError(await rpc(server.url, "SendMessage", { message: userMessage("more", { taskId: task.id }) }), -32004, "UNSUPPORTED_OPERATION")
    const s = await stream(server.url, "SubscribeToTask", { id: task.id })
    expectError(s.json, -32004, "UNSUPPORTED_OPERATION")
  })

  it("-32002 for cancelling a completed task", async () => {
    const task = await completedTask()
    expectError(await rpc(server.url, "CancelTask", { id: task.id }), -32002, "TASK_NOT_CANCELABLE", /COMPLETED/)
  })

  it("-32001 for the push configs of a task that does not exist", async () => {
    for (const m of [
      "CreateTaskPushNotificationConfig",
      "GetTaskPushNotificationConfig",
      "ListTaskPushNotificationConfigs",
      "DeleteTaskPushNotificationConfig"
    ]) {
      expectError(await rpc(server.url, m, { taskId: "nope", id: "c", url: "https://example.com/hook" }), -32001, "TASK_NOT_FOUND")
    }
  })

  it("-32004 for the extended card (capability off)", async () => {
    expectError(await rpc(server.url, "GetExtendedAgentCard", {}), -32004, "UNSUPPORTED_OPERATION")
  })
})

describe("bad input never touches stored data", () => {
  it("after a barrage of bad requests, the stored tasks are unchanged and the server answers", async () => {
    const before = await call(server.url, "ListTasks", { pageSize: 100, includeArtifacts: true })
    for (const body of ["{", "[]", "null", '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"parts":"x"}}}', "\u0000\u0001"]) {
      await post(server.url, body)
    }
    await rpc(server.url, "CancelTask", { id: before.tasks[0]?.id ?? "x", tenant: "intruder" })
    const after = await call(server.url, "ListTasks", { pageSize: 100, includeArtifacts: true })
    expect(after).toEqual(before)
  })
})

describe("enum errors list the accepted values", () => {
  it("a bad status names the field and the accepted names once", async () => {
    const r = await rpc(server.url, "ListTasks", { status: "UNRECOGNIZED" })
    expect(r.error!.code).toBe(-32602)
    expect(r.error!.message).toMatch(
      /^Invalid parameters: status: must be one of TASK_STATE_UNSPECIFIED, TASK_STATE_SUBMITTED.* \(got "UNRECOGNIZED"\)$/
    )
  })

  it("enum numbers are accepted as ProtoJSON allows", async () => {
    const r = await rpc(server.url, "ListTasks", { status: 3, pageSize: 1 })
    expect(r.result.tasks.every((t: any) => t.status.state === "TASK_STATE_COMPLETED")).toBe(true)
  })
})
