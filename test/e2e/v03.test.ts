import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance } from "../../src/agent/builtins"
import { call, rpc, stream } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/** v0.3 clients: `message/send` & co. with v0.3 shapes, translated at the edge (spec Appendix A.2). */
let server: RunningServer
beforeAll(async () => {
  server = await startServer({ agent: conformance })
})
afterAll(async () => {
  expect(await verifyStore(server.db)).toBeGreaterThan(0)
  await server.close()
})

const v03Message = (messageId: string, extra: Record<string, unknown> = {}) => ({
  kind: "message",
  messageId,
  role: "user",
  parts: [{ kind: "text", text: "hello" }],
  ...extra
})

describe("v0.3 JSON-RPC", () => {
  it("message/send waits by default and answers a v0.3 Task: kind fields, lowercase states, user/agent roles", async () => {
    const r = await rpc(server.url, "message/send", { message: v03Message("tck-artifact-text-v03") })
    const task = r.result
    expect(task.kind).toBe("task")
    expect(task.status.state).toBe("completed")
    expect(task.artifacts[0].parts[0]).toEqual({ kind: "text", text: "Generated text content" })
    expect(task.history[0]).toMatchObject({ kind: "message", role: "user", parts: [{ kind: "text", text: "hello" }] })
    expect(JSON.stringify(task)).not.toContain("TASK_STATE_")
  })

  it('a Hector-style request, configuration {"blocking": false}, answers at once with a submitted task', async () => {
    const r = await rpc(server.url, "message/send", { message: v03Message("tck-complete-task-hector"), configuration: { blocking: false } })
    expect(r.result.kind).toBe("task")
    expect(r.result.status.state).toBe("submitted")
  })

  it("a Message answer is a v0.3 Message", async () => {
    const r = await rpc(server.url, "message/send", { message: v03Message("tck-message-response-v03") })
    expect(r.result).toMatchObject({ kind: "message", role: "agent", parts: [{ kind: "text", text: "Direct message response" }] })
  })

  it("file parts translate both ways: v0.3 file.bytes/mimeType/name <-> v1.0 raw/mediaType/filename", async () => {
    const r = await rpc(server.url, "message/send", {
      message: v03Message("tck-artifact-file-v03", { parts: [{ kind: "file", file: { bytes: "aGk=", mimeType: "text/plain", name: "in.txt" } }] })
    })
    expect(r.result.artifacts[0].parts[0]).toEqual({
      kind: "file",
      file: { bytes: Buffer.from("Generated file content").toString("base64"), mimeType: "text/plain", name: "output.txt" }
    })
    const v1 = await call(server.url, "GetTask", { id: r.result.id })
    expect(v1.history[0].parts[0]).toEqual({ raw: "aGk=", mediaType: "text/plain", filename: "in.txt" })
  })

  it("message/stream sends v0.3 events with final on the last status update", async () => {
    const events = await (await stream(server.url, "message/stream", { message: v03Message("tck-stream-v03") })).rest()
    const results = events.map((e) => e.data.result)
    expect(results.map((r) => r.kind)).toEqual(["task", "status-update", "artifact-update", "status-update"])
    expect(results.map((r) => r.final)).toEqual([undefined, false, undefined, true])
    expect(results[3].status.state).toBe("completed")
  })

  it("tasks/get, tasks/cancel, tasks/resubscribe and tasks/list speak v0.3", async () => {
    const waiting = (await rpc(server.url, "message/send", { message: v03Message("tck-input-required-v03") })).result
    expect(waiting.status.state).toBe("input-required")
    const got = (await rpc(server.url, "tasks/get", { id: waiting.id, historyLength: 1 })).result
    expect(got.kind).toBe("task")
    expect(got.history).toHaveLength(1)
    const sub = await stream(server.url, "tasks/resubscribe", { id: waiting.id })
    expect((await sub.next())!.data.result).toMatchObject({ kind: "task", id: waiting.id })
    const canceled = (await rpc(server.url, "tasks/cancel", { id: waiting.id })).result
    expect(canceled.status.state).toBe("canceled")
    const last = (await sub.rest()).at(-1)!.data.result
    expect(last).toMatchObject({ kind: "status-update", final: true, status: { state: "canceled" } })
    const list = (await rpc(server.url, "tasks/list", { status: "canceled" })).result
    expect(list.tasks.map((t: any) => t.id)).toContain(waiting.id)
    expect(list.tasks.every((t: any) => t.kind === "task" && t.status.state === "canceled")).toBe(true)
  })

  it("A2A-Version 0.3 (or none) is served on v0.3 methods; another version is -32009", async () => {
    const ok = await rpc(server.url, "message/send", { message: v03Message("tck-complete-task-hdr") }, { "A2A-Version": "0.3" })
    expect(ok.result.status.state).toBe("completed")
    const wrong = await rpc(server.url, "tasks/get", { id: "x" }, { "A2A-Version": "1.0" })
    expect(wrong.error!.code).toBe(-32009)
  })

  it("errors keep their codes: unknown task -32001 (also for its push configs), bad params -32602 naming the field", async () => {
    expect((await rpc(server.url, "tasks/get", { id: "nope" })).error!.code).toBe(-32001)
    expect((await rpc(server.url, "tasks/pushNotificationConfig/get", { id: "nope", pushNotificationConfigId: "c" })).error!.code).toBe(-32001)
    const bad = await rpc(server.url, "message/send", { message: { kind: "message", role: "user", parts: [] } })
    expect(bad.error!.code).toBe(-32602)
    expect(bad.error!.message).toContain("message.messageId")
  })
})
