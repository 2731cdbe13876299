import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance } from "../../src/agent/builtins"
import { userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/** The HTTP+JSON binding (spec §11) over real HTTP. */
let server: RunningServer
beforeAll(async () => {
  server = await startServer({ agent: conformance, maxBodyBytes: 64 * 1024 })
})
afterAll(async () => {
  expect(await verifyStore(server.db)).toBeGreaterThan(0)
  await server.close()
})

const rest = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: body !== undefined ? { "content-type": "application/json", ...headers } : headers,
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {})
  })
  const text = await res.text()
  return { status: res.status, type: res.headers.get("content-type"), body: text === "" ? undefined : (JSON.parse(text) as any) }
}

/** Open an SSE response (its headers have arrived, so the server is subscribed); `events()` reads it to the end. */
const openSse = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: body !== undefined ? { "content-type": "application/json", ...headers } : headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/)
  return {
    events: async () =>
      (await res.text())
        .split("\n\n")
        .filter((block) => block.includes("data: "))
        .map((block) => ({ id: /^id: (.*)$/m.exec(block)?.[1], data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) }))
  }
}

const sseEvents = async (method: string, path: string, body?: unknown) => (await openSse(method, path, body)).events()

const expectStatus = (r: { status: number; body: any }, http: number, grpc: string, reason: string) => {
  expect(r.status).toBe(http)
  expect(r.body.error).toMatchObject({ code: http, status: grpc })
  expect(r.body.error.details[0]).toMatchObject({ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: "a2a-protocol.org" })
}

const send = (messageId: string, extra: Record<string, unknown> = {}, tenantPrefix = "") =>
  rest("POST", `${tenantPrefix}/message:send`, { message: userMessage("hi", { messageId, ...extra }) })

describe("HTTP+JSON binding", () => {
  it("POST /message:send answers {task} (blocking) and {message} for a Message answer, as application/json", async () => {
    const r = await send("tck-artifact-text-rest")
    expect(r.status).toBe(200)
    expect(r.type).toMatch(/^application\/json/)
    expect(r.body.task.status.state).toBe("TASK_STATE_COMPLETED")
    expect(r.body.task.artifacts[0].parts[0].text).toBe("Generated text content")
    const m = await send("tck-message-response-rest")
    expect(m.body.message.parts[0].text).toBe("Direct message response")
  })

  it("answers application/a2a+json (spec §11.1, v1.0.1) when the request asks for it by Accept or by Content-Type; application/json otherwise", async () => {
    const a2a = "application/a2a+json"
    const bySending = await rest("POST", "/message:send", { message: userMessage("tck-artifact-text-rest") }, { "content-type": a2a })
    expect(bySending.status).toBe(200)
    expect(bySending.type).toBe(a2a)
    const id = bySending.body.task.id
    const byAccept = await rest("GET", `/tasks/${id}`, undefined, { accept: `text/html, ${a2a};q=0.9` })
    expect(byAccept.type).toBe(a2a)
    expect(byAccept.body.id).toBe(id)
    expect((await rest("GET", `/tasks/${id}`)).type).toMatch(/^application\/json/)
    expect((await rest("GET", `/tasks/${id}`, undefined, { accept: "application/json" })).type).toMatch(/^application\/json/)
    // Errors too, in the type asked for.
    const missing = await rest("GET", "/tasks/no-such-task", undefined, { accept: a2a })
    expect(missing.status).toBe(404)
    expect(missing.type).toBe(a2a)
    expect(missing.body.error.status).toBe("NOT_FOUND")
  })

  it("GET /tasks/{id} returns the bare Task; historyLength comes from the query", async () => {
    const { body } = await send("tck-complete-task-rest-get")
    const got = await rest("GET", `/tasks/${body.task.id}`)
    expect(got.body.id).toBe(body.task.id)
    expect(got.body.history).toHaveLength(2)
    const none = await rest("GET", `/tasks/${body.task.id}?historyLength=0`)
    expect(none.body).not.toHaveProperty("history")
  })

  it("GET /tasks lists with camelCase query parameters and pages with the cursor", async () => {
    for (const n of [1, 2, 3]) await send(`tck-complete-task-rest-list-${n}`, { contextId: "rest-ctx" })
    const first = await rest("GET", "/tasks?contextId=rest-ctx&pageSize=2&includeArtifacts=false")
    expect(first.body.tasks).toHaveLength(2)
    expect(first.body.totalSize).toBe(3)
    const second = await rest("GET", `/tasks?contextId=rest-ctx&pageSize=2&pageToken=${encodeURIComponent(first.body.nextPageToken)}`)
    expect(second.body.tasks).toHaveLength(1)
    expect(second.body.nextPageToken).toBe("")
    const filtered = await rest("GET", "/tasks?contextId=rest-ctx&status=TASK_STATE_COMPLETED")
    expect(filtered.body.totalSize).toBe(3)
    // A digit-only value of a string field stays a string.
    await send("tck-complete-task-rest-numeric-ctx", { contextId: "12345" })
    expect((await rest("GET", "/tasks?contextId=12345")).body.totalSize).toBe(1)
  })

  it("POST /tasks/{id}:cancel cancels; a completed task is 400 FAILED_PRECONDITION TASK_NOT_CANCELABLE", async () => {
    const waiting = await send("tck-input-required-rest-cancel")
    expect(waiting.body.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    const canceled = await rest("POST", `/tasks/${waiting.body.task.id}:cancel`)
    expect(canceled.body.status.state).toBe("TASK_STATE_CANCELED")
    const done = await send("tck-complete-task-rest-cancel")
    expectStatus(await rest("POST", `/tasks/${done.body.task.id}:cancel`, {}), 400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE")
  })

  it("POST /message:stream streams bare StreamResponses with version ids: the Task first, COMPLETED last", async () => {
    const events = await sseEvents("POST", "/message:stream", { message: userMessage("go", { messageId: "tck-stream-rest" }) })
    expect(events[0]!.data).toHaveProperty("task")
    expect(events[0]!.data).not.toHaveProperty("jsonrpc")
    expect(events.some((e) => e.data.artifactUpdate)).toBe(true)
    expect(events.at(-1)!.data.statusUpdate.status.state).toBe("TASK_STATE_COMPLETED")
    const ids = events.map((e) => Number(e.id))
    for (const [i, v] of ids.entries()) expect(v).toBe(ids[0]! + i)
  })

  it("GET and POST /tasks/{id}:subscribe both stream a task; the answer to its question ends it", async () => {
    const waiting = await send("tck-input-required-rest-sub")
    const id = waiting.body.task.id
    expect(waiting.body.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    const viaGet = await openSse("GET", `/tasks/${id}:subscribe`)
    const viaPost = await openSse("POST", `/tasks/${id}:subscribe`, {})
    await send("tck-complete-task-rest-sub", { taskId: id })
    for (const events of [await viaGet.events(), await viaPost.events()]) {
      expect(events[0]!.data.task.id).toBe(id)
      expect(events.at(-1)!.data.statusUpdate.status.state).toBe("TASK_STATE_COMPLETED")
    }
  })

  it("every route also works under a /{tenant}/ prefix, and tenants do not see each other's tasks", async () => {
    const mine = await send("tck-complete-task-rest-tenant", {}, "/acme")
    expect(mine.body.task.status.state).toBe("TASK_STATE_COMPLETED")
    expect((await rest("GET", `/acme/tasks/${mine.body.task.id}`)).body.id).toBe(mine.body.task.id)
    expect((await rest("GET", "/acme/tasks")).body.totalSize).toBe(1)
    expectStatus(await rest("GET", `/tasks/${mine.body.task.id}`), 404, "NOT_FOUND", "TASK_NOT_FOUND")
    expectStatus(await rest("GET", `/globex/tasks/${mine.body.task.id}`), 404, "NOT_FOUND", "TASK_NOT_FOUND")
  })
})

describe("HTTP+JSON errors (google.rpc.Status, spec §4.1 / §11.6)", () => {
  it("404 TASK_NOT_FOUND for an unknown task", async () => {
    expectStatus(await rest("GET", "/tasks/nope"), 404, "NOT_FOUND", "TASK_NOT_FOUND")
    expectStatus(await rest("POST", "/tasks/nope:cancel"), 404, "NOT_FOUND", "TASK_NOT_FOUND")
  })

  it("400 INVALID_ARGUMENT naming the field for invalid params, in the body or the query", async () => {
    const r = await rest("POST", "/message:send", { message: { role: "ROLE_USER", parts: [] } })
    expectStatus(r, 400, "INVALID_ARGUMENT", "INVALID_PARAMS")
    expect(r.body.error.message).toContain("message.messageId")
    const q = await rest("GET", "/tasks?pageSize=500")
    expectStatus(q, 400, "INVALID_ARGUMENT", "INVALID_PARAMS")
    expect(q.body.error.message).toContain("pageSize")
    const b = await rest("GET", "/tasks?includeArtifacts=maybe")
    expect(b.body.error.message).toContain("includeArtifacts")
  })

  it("415 for a request body that is not JSON by its Content-Type; 400 for a body that is not JSON at all", async () => {
    const wrongType = await rest("POST", "/message:send", JSON.stringify({ message: userMessage("x") }), { "content-type": "text/plain" })
    expect(wrongType.status).toBe(415)
    expect(wrongType.body.error.details[0].reason).toBe("CONTENT_TYPE_NOT_SUPPORTED")
    const notJson = await rest("POST", "/message:send", "{oops")
    expect(notJson.status).toBe(400)
    expect(notJson.body.error.details[0].reason).toBe("PARSE_ERROR")
    const a2aJson = await rest(
      "POST",
      "/message:send",
      { message: userMessage("x", { messageId: "tck-complete-task-a2a-json" }) },
      { "content-type": "application/a2a+json" }
    )
    expect(a2aJson.body.task.status.state).toBe("TASK_STATE_COMPLETED")
  })

  it("400 UNSUPPORTED_OPERATION for a message to a terminal task and for subscribing to one", async () => {
    const done = await send("tck-complete-task-rest-terminal")
    expectStatus(await send("follow-up", { taskId: done.body.task.id }), 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION")
    expectStatus(await rest("GET", `/tasks/${done.body.task.id}:subscribe`), 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION")
  })

  it("push-config routes: create, get, list and delete a task's webhook; 404 for an unknown task; 400 naming a bad field", async () => {
    const { body } = await send("tck-complete-task-rest-push")
    const base = `/tasks/${body.task.id}/pushNotificationConfigs`
    const created = await rest("POST", base, { id: "c1", url: "https://example.com/hook", authentication: { scheme: "Bearer", credentials: "s" } })
    expect(created.status).toBe(200)
    expect(created.body).toEqual({ id: "c1", taskId: body.task.id, url: "https://example.com/hook", authentication: { scheme: "Bearer" } })
    expect((await rest("GET", `${base}/c1`)).body).toEqual(created.body)
    expect((await rest("GET", base)).body).toEqual({ configs: [created.body], nextPageToken: "" })
    expect(await rest("DELETE", `${base}/c1`)).toMatchObject({ status: 200, body: {} })
    expect(await rest("DELETE", `${base}/c1`)).toMatchObject({ status: 200, body: {} })
    expectStatus(await rest("GET", `${base}/c1`), 404, "NOT_FOUND", "TASK_NOT_FOUND")
    expectStatus(await rest("GET", "/tasks/nope/pushNotificationConfigs"), 404, "NOT_FOUND", "TASK_NOT_FOUND")
    const bad = await rest("POST", base, { url: "http://10.1.2.3/hook" })
    expectStatus(bad, 400, "INVALID_ARGUMENT", "INVALID_PARAMS")
    expect(bad.body.error.details[1].fieldViolations[0].field).toBe("url")
  })

  it("400 for the extended card while that capability is off", async () => {
    expectStatus(await rest("GET", "/extendedAgentCard"), 400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION")
  })

  it("400 VERSION_NOT_SUPPORTED for another A2A-Version; 413 for a body over the limit; 404 for an unknown route", async () => {
    expectStatus(await rest("GET", "/tasks", undefined, { "A2A-Version": "0.3" }), 400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED")
    const big = await rest("POST", "/message:send", { message: userMessage("x".repeat(100 * 1024)) })
    expect(big.status).toBe(413)
    expect(big.body.error.message).toMatch(/exceeds the limit/)
    expect((await rest("PUT", "/tasks")).status).toBe(404)
    expect((await rest("GET", "/message:send")).status).toBe(404)
  })
})
