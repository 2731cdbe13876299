import * as http from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance, slowWorker } from "../../src/agent/builtins"
import { call, post, rpc, stream, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

/**
 * What a hostile or careless client found (issue 10, "Input and protocol
 * edges"): each behaviour here was wrong before, and each answer is an A2A
 * error naming the field, never a reset connection or a silent acceptance.
 */
let server: RunningServer
let slow: RunningServer
const limit = 4096

beforeAll(async () => {
  server = await startServer({ agent: conformance, maxBodyBytes: limit })
  slow = await startServer({ agent: slowWorker({ stepDelayMs: 200 }), maxBodyBytes: limit })
})
afterAll(async () => {
  await server.close()
  await slow.close()
})

/** A POST whose body goes out chunked (no Content-Length), in pieces, as a streaming client sends it. */
const postChunked = (url: string, path: string, size: number) =>
  new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked" } })
    req.on("response", (res) => {
      let body = ""
      res.on("data", (c: Buffer) => (body += c.toString()))
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    // The server may stop reading and close once it has answered: that is the point.
    req.on("error", (e) =>
      (e as NodeJS.ErrnoException).code === "EPIPE" || (e as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(e)
    )
    const piece = "x".repeat(1024)
    let sent = 0
    const write = () => {
      while (sent < size) {
        sent += piece.length
        if (!req.write(piece)) return void req.once("drain", write)
      }
      req.end()
    }
    write()
  })

describe("1. over-limit bodies without Content-Length", () => {
  it("JSON-RPC: a chunked body over --max-body-bytes gets 413 and -32600, not a reset connection", async () => {
    const r = await postChunked(server.url, "/a2a", 64 * 1024)
    expect(r.status).toBe(413)
    expect(r.headers.connection).toBe("close")
    const body = JSON.parse(r.body)
    expect(body.error.code).toBe(-32600)
    expect(body.error.message).toMatch(`exceeds the limit of ${limit} bytes`)
  })

  it("REST: a chunked body over the limit gets 413 with a Status body whose code is 413", async () => {
    const r = await postChunked(server.url, "/message:send", 64 * 1024)
    expect(r.status).toBe(413)
    expect(JSON.parse(r.body).error).toMatchObject({ code: 413, status: "RESOURCE_EXHAUSTED" })
  })

  it("the server keeps serving afterwards", async () => {
    await postChunked(server.url, "/a2a", 64 * 1024)
    expect((await rpc(server.url, "GetTask", { id: "none" })).error!.code).toBe(-32001)
  })
})

describe("2. Last-Event-ID", () => {
  const subscribe = (id: string, lastEventId: string) => stream(slow.url, "SubscribeToTask", { id }, { "last-event-id": lastEventId })

  it("only decimal digits: 1e3, 0x10, 1.5, -1 and +2 are -32602 naming Last-Event-ID", async () => {
    const { task } = await call(slow.url, "SendMessage", { message: userMessage("cursor forms"), configuration: { returnImmediately: true } })
    for (const bad of ["1e3", "0x10", "1.5", "-1", "+2", "2 3"]) {
      const r = await subscribe(task.id, bad)
      expect(r.json?.error?.code, bad).toBe(-32602)
      expect(r.json?.error?.message, bad).toMatch(/Last-Event-ID: must be the id of an event this stream sent/)
    }
  })

  it("a value beyond the task's newest event is refused, never answered with older events", async () => {
    const { task } = await call(slow.url, "SendMessage", { message: userMessage("cursor ahead"), configuration: { returnImmediately: true } })
    const r = await subscribe(task.id, "500")
    expect(r.json?.error?.code).toBe(-32602)
    expect(r.json?.error?.message).toMatch(/Last-Event-ID: is 500, but task .* has only reached event \d+/)
    // A cursor the stream did send resumes right after it.
    const ok = await subscribe(task.id, "1")
    const first = await ok.next()
    ok.abort()
    expect(Number(first!.id)).toBe(2)
  })
})

describe("3. messages a client may not send", () => {
  it("role ROLE_AGENT (or 2) is -32602 naming message.role, and nothing is stored", async () => {
    for (const role of ["ROLE_AGENT", 2]) {
      const r = await rpc(server.url, "SendMessage", { message: { ...userMessage("impersonation"), role } })
      expect(r.error!.code).toBe(-32602)
      expect(r.error!.message).toMatch(/message\.role: must be ROLE_USER: a client sends the user's messages/)
    }
    const list = await call(server.url, "ListTasks", { pageSize: 100 })
    expect(list.tasks.some((t: any) => t.history?.some((m: any) => m.parts?.[0]?.text === "impersonation"))).toBe(false)
  })

  it("a messageId of only white space is -32602 naming message.messageId", async () => {
    const r = await rpc(server.url, "SendMessage", { message: { ...userMessage("blank id"), messageId: "   " } })
    expect(r.error!.code).toBe(-32602)
    expect(r.error!.message).toBe("Invalid parameters: message.messageId: must not be blank (it is only white space)")
  })

  it("empty contextId and taskId are proto3's unset strings: a new task in a new context (docs/protocol.md)", async () => {
    const r = await call(server.url, "SendMessage", { message: { ...userMessage("unset ids"), contextId: "", taskId: "" } })
    expect(r.task.id).not.toBe("")
    expect(r.task.contextId).not.toBe("")
  })
})

describe("4. error messages for humans", () => {
  it("say what the field must be and what came instead, without schema dumps", async () => {
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [{ message: "hello" }, 'Invalid parameters: message: must be an object (got the string "hello")'],
      [{ message: { ...userMessage("x"), parts: "x" } }, 'Invalid parameters: message.parts: must be an array (got the string "x")'],
      [{ message: { ...userMessage("x"), messageId: 7 } }, "Invalid parameters: message.messageId: must be a string (got the number 7)"],
      [
        { message: userMessage("x"), configuration: { returnImmediately: "yes" } },
        'Invalid parameters: configuration.returnImmediately: must be true or false (got the string "yes")'
      ]
    ]
    for (const [params, message] of cases) {
      const r = await rpc(server.url, "SendMessage", params)
      expect(r.error!.message).toBe(message)
    }
  })

  it("several bad fields are each named, none hidden behind '(and 1 more)'", async () => {
    const r = await rpc(server.url, "SendMessage", { message: { messageId: "", role: "ROLE_X", parts: [] } })
    expect(r.error!.message).toBe(
      'Invalid parameters: message.messageId: must be a non-empty string; message.role: must be ROLE_USER (got "ROLE_X"); message.parts: must hold at least one part'
    )
    expect(r.error!.message).not.toMatch(/Expected|and \d+ more|readonly/)
  })
})

describe("5. REST error bodies agree with their status", () => {
  const restCall = async (method: string, path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}${path}`, { method, ...init })
    const text = await res.text()
    return { status: res.status, contentType: res.headers.get("content-type"), body: text === "" ? undefined : JSON.parse(text) }
  }

  it("every error answer is a google.rpc.Status whose code is the HTTP status", async () => {
    const answers = [
      await restCall("POST", "/message:send", { headers: { "content-type": "text/plain" }, body: "x" }), // 415
      await restCall("POST", "/message:send", { headers: { "content-type": "application/json" }, body: "x".repeat(limit + 1) }), // 413
      await restCall("GET", "/tasks/%ff"), // bad percent-encoding
      await restCall("GET", "/tasks/no-such-task"), // 404
      await restCall("GET", "/no/such/route"), // 404
      await restCall("POST", "/message:send", { headers: { "content-type": "application/json" }, body: "{" }) // 400
    ]
    expect(answers.map((a) => a.status)).toEqual([415, 413, 400, 404, 404, 400])
    for (const a of answers) {
      expect(a.contentType).toMatch(/^application\/json/)
      expect(a.body.error.code).toBe(a.status)
      expect(typeof a.body.error.message).toBe("string")
    }
    expect(answers[2]!.body.error.message).toMatch(/the path \/tasks\/%ff is not valid percent-encoding/)
  })

  it("/agents/{name} on a single-agent server says the agent is at the root", async () => {
    const r = await restCall("GET", "/agents/other/.well-known/agent-card.json")
    expect(r.status).toBe(404)
    expect(r.body.error.message).toMatch(/this server hosts one agent, at the root/)
    expect(r.body.error.message).not.toMatch(/several agents/)
  })
})

describe("6. JSON-RPC ids", () => {
  it("an id beyond 2^53 comes back exactly as sent, in results, errors and stream events", async () => {
    const big = "1180591620717411303424"
    const get = await post(server.url, `{"jsonrpc":"2.0","id":${big},"method":"GetTask","params":{"id":"none"}}`)
    expect(get.text.startsWith(`{"jsonrpc":"2.0","id":${big},`)).toBe(true)
    const list = await post(server.url, `{"jsonrpc":"2.0","id":-${big}1,"method":"ListTasks","params":{}}`)
    expect(list.text.startsWith(`{"jsonrpc":"2.0","id":-${big}1,"result":`)).toBe(true)
    const res = await fetch(`${server.url}/a2a`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: `{"jsonrpc":"2.0","id":${big},"method":"SendStreamingMessage","params":{"message":${JSON.stringify(userMessage("big id"))}}}`
    })
    const events = (await res.text()).split("\n").filter((l) => l.startsWith("data: "))
    expect(events.length).toBeGreaterThan(1)
    for (const e of events) expect(e.startsWith(`data: {"jsonrpc":"2.0","id":${big},`)).toBe(true)
  })

  it("ordinary ids are untouched: strings, small numbers, null", async () => {
    for (const id of ['"abc"', "42", "null", "1.5"]) {
      const r = await post(server.url, `{"jsonrpc":"2.0","id":${id},"method":"GetTask","params":{"id":"none"}}`)
      expect(JSON.parse(r.text).id).toEqual(JSON.parse(id))
    }
  })
})

describe("8. the SSRF guard normalises host names", () => {
  it("localhost. (a trailing dot) is refused at registration like localhost", async () => {
    const { task } = await call(slow.url, "SendMessage", { message: userMessage("hook"), configuration: { returnImmediately: true } })
    for (const url of ["http://localhost./hook", "http://LOCALHOST../hook", "http://api.localhost./hook"]) {
      const r = await rpc(slow.url, "CreateTaskPushNotificationConfig", { taskId: task.id, url })
      expect(r.error?.code, url).toBe(-32602)
      expect(r.error?.message, url).toMatch(/loopback name/)
    }
  })
})
