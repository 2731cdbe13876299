import { fromBinary, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf"
import { anyUnpack } from "@bufbuild/protobuf/wkt"
import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createGrpcTransport } from "@connectrpc/connect-node"
import * as GrpcJs from "@grpc/grpc-js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as net from "node:net"
import * as path from "node:path"
import { conformance, echo } from "../../src/agent/builtins"
import { A2AService, StreamResponseSchema, TaskSchema } from "../../src/grpc/gen/a2a_pb"
import { BadRequestSchema, ErrorInfoSchema } from "../../src/grpc/gen/google/rpc/error_details_pb"
import { StatusSchema } from "../../src/grpc/gen/google/rpc/status_pb"
import { spawnServer } from "../support/process"
import { sampleValue, scrape } from "../support/prometheus"
import { call, eventually, rpc, userMessage } from "../support/rpc"
import { type RunningServer, startAgentsServer, startServer, tempDir } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/**
 * The gRPC binding, and the same task through every binding (the TCK's coming BIND-EQUIV requirements): a
 * task made over one binding is read, streamed and canceled over the others, and the same fault is the same
 * A2A error on all three. The gRPC client is Connect's, speaking the gRPC protocol over HTTP/2.
 */
let server: RunningServer
let grpcUrl: string
let grpc: ReturnType<typeof createClient<typeof A2AService>>

beforeAll(async () => {
  server = await startServer({ agent: conformance, grpcPort: 0, idempotency: "off" })
  const card: any = await (await fetch(`${server.url}/.well-known/agent-card.json`)).json()
  const iface = card.supportedInterfaces.find((i: any) => i.protocolBinding === "GRPC")
  grpcUrl = iface.url
  grpc = createClient(A2AService, createGrpcTransport({ baseUrl: `http://${grpcUrl}` }))
})
afterAll(async () => {
  expect(await verifyStore(server.db)).toBeGreaterThan(0)
  await server.close()
})

/** A task as ProtoJSON, for comparing what each binding says of it. */
const asJson = (task: Parameters<typeof toJson<typeof TaskSchema>>[1]) => toJson(TaskSchema, task) as Record<string, any>
/** What a JSON binding answered, read as the proto reads it: the form both must share. */
const normalized = (task: unknown) =>
  toJson(TaskSchema, fromJson(TaskSchema, task as JsonValue, { ignoreUnknownFields: false })) as Record<string, any>
const rest = async (method: string, route: string, body?: unknown) => {
  const res = await fetch(`${server.url}${route}`, {
    method,
    headers: body !== undefined ? { "content-type": "application/json" } : {},
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  return { status: res.status, body: (await res.json()) as any }
}
const grpcError = async (promise: Promise<unknown>) => {
  try {
    await promise
  } catch (e) {
    return ConnectError.from(e)
  }
  throw new Error("the gRPC call succeeded")
}

describe("the agent card with --grpc-port", () => {
  it("lists the GRPC interface (host:port, protocol 1.0) after JSON-RPC and HTTP+JSON", async () => {
    const card: any = await (await fetch(`${server.url}/.well-known/agent-card.json`)).json()
    expect(card.supportedInterfaces.map((i: any) => i.protocolBinding)).toEqual(["JSONRPC", "HTTP+JSON", "GRPC", "JSONRPC"])
    expect(grpcUrl).toMatch(/^127\.0\.0\.1:\d+$/)
  })
})

describe("the same task through every binding", () => {
  it("a task created over gRPC reads the same over JSON-RPC and REST", async () => {
    const sent = await grpc.sendMessage({
      message: { messageId: "tck-complete-task-grpc-1", role: 1, parts: [{ content: { case: "text", value: "hi" } }] }
    })
    expect(sent.payload.case).toBe("task")
    const task = sent.payload.value as Parameters<typeof asJson>[0]
    expect(asJson(task).status.state).toBe("TASK_STATE_COMPLETED")
    const overGrpc = asJson(await grpc.getTask({ id: task.id }))
    const overRpc = normalized(await call(server.url, "GetTask", { id: task.id }))
    const overRest = normalized((await rest("GET", `/tasks/${task.id}`)).body)
    expect(overRpc).toEqual(overGrpc)
    expect(overRest).toEqual(overGrpc)
  })

  it("a task created over REST streams over gRPC (SubscribeToTask): the Task first, then its answer's events to COMPLETED", async () => {
    const made = await rest("POST", "/message:send", { message: userMessage("question", { messageId: "tck-input-required-grpc-2" }) })
    const id = made.body.task.id
    expect(made.body.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    const stream = grpc.subscribeToTask({ id })
    const events: Array<Record<string, any>> = []
    const reading = (async () => {
      for await (const event of stream) {
        events.push(toJson(StreamResponseSchema, event) as Record<string, any>)
        if (events.length === 1)
          await rest("POST", "/message:send", { message: userMessage("answer", { messageId: "tck-complete-task-grpc-2", taskId: id }) })
      }
    })()
    await reading
    expect(events[0]!.task.id).toBe(id)
    expect(events.at(-1)!.statusUpdate.status.state).toBe("TASK_STATE_COMPLETED")
  })

  it("a task canceled over JSON-RPC is CANCELED over gRPC", async () => {
    const sent = await grpc.sendMessage({
      message: { messageId: "tck-input-required-grpc-3", role: 1, parts: [{ content: { case: "text", value: "?" } }] }
    })
    const id = (sent.payload.value as { id: string }).id
    expect((await call(server.url, "CancelTask", { id })).status.state).toBe("TASK_STATE_CANCELED")
    expect(asJson(await grpc.getTask({ id })).status.state).toBe("TASK_STATE_CANCELED")
  })

  it("SendStreamingMessage over gRPC yields the same events as over SSE, one message per event", async () => {
    const events: Array<Record<string, any>> = []
    for await (const e of grpc.sendStreamingMessage({
      message: { messageId: "tck-complete-task-grpc-4", role: 1, parts: [{ content: { case: "text", value: "go" } }] }
    })) {
      events.push(toJson(StreamResponseSchema, e) as Record<string, any>)
    }
    expect(events[0]!.task).toBeDefined()
    expect(events.at(-1)!.statusUpdate.status.state).toBe("TASK_STATE_COMPLETED")
    // The same task read afterwards over SSE (SubscribeToTask is refused for a finished task) agrees on the end state.
    const id = events[0]!.task.id
    expect((await call(server.url, "GetTask", { id })).status.state).toBe("TASK_STATE_COMPLETED")
  })

  it("tenants: a task made in a tenant over gRPC is listed there over REST, and missing without it", async () => {
    const sent = await grpc.sendMessage({
      tenant: "acme",
      message: { messageId: "tck-complete-task-grpc-5", role: 1, parts: [{ content: { case: "text", value: "x" } }] }
    })
    const id = (sent.payload.value as { id: string }).id
    expect((await rest("GET", "/acme/tasks")).body.tasks.map((t: any) => t.id)).toContain(id)
    expect(asJson(await grpc.getTask({ id, tenant: "acme" })).id).toBe(id)
    expect((await grpcError(grpc.getTask({ id }))).code).toBe(Code.NotFound)
  })
})

describe("the same fault is the same A2A error on all three bindings", () => {
  const infoOf = (e: ConnectError) => e.findDetails(ErrorInfoSchema)[0]

  it("a missing task: -32001, 404, NOT_FOUND, each with reason TASK_NOT_FOUND", async () => {
    const viaRpc = await rpc(server.url, "GetTask", { id: "no-such-task" })
    const viaRest = await rest("GET", "/tasks/no-such-task")
    const viaGrpc = await grpcError(grpc.getTask({ id: "no-such-task" }))
    expect(viaRpc.error!.code).toBe(-32001)
    expect(viaRest.status).toBe(404)
    expect(viaGrpc.code).toBe(Code.NotFound)
    for (const reason of [(viaRpc.error!.data as any)[0].reason, viaRest.body.error.details[0].reason, infoOf(viaGrpc)?.reason])
      expect(reason).toBe("TASK_NOT_FOUND")
    expect(infoOf(viaGrpc)?.domain).toBe("a2a-protocol.org")
    expect(viaGrpc.rawMessage).toBe(viaRpc.error!.message)
  })

  it("a finished task canceled: -32002, 400, FAILED_PRECONDITION, reason TASK_NOT_CANCELABLE", async () => {
    const done = await call(server.url, "SendMessage", { message: userMessage("x", { messageId: "tck-complete-task-grpc-6" }) })
    const viaRpc = await rpc(server.url, "CancelTask", { id: done.task.id })
    const viaRest = await rest("POST", `/tasks/${done.task.id}:cancel`, {})
    const viaGrpc = await grpcError(grpc.cancelTask({ id: done.task.id }))
    expect([viaRpc.error!.code, viaRest.status, viaGrpc.code]).toEqual([-32002, 400, Code.FailedPrecondition])
    expect(infoOf(viaGrpc)?.reason).toBe("TASK_NOT_CANCELABLE")
  })

  it("a message without parts: -32602, 400, INVALID_ARGUMENT, each naming message.parts", async () => {
    const viaRpc = await rpc(server.url, "SendMessage", { message: { messageId: "no-parts", role: "ROLE_USER" } })
    const viaRest = await rest("POST", "/message:send", { message: { messageId: "no-parts", role: "ROLE_USER" } })
    const viaGrpc = await grpcError(grpc.sendMessage({ message: { messageId: "no-parts", role: 1 } }))
    expect([viaRpc.error!.code, viaRest.status, viaGrpc.code]).toEqual([-32602, 400, Code.InvalidArgument])
    expect(viaGrpc.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("message.parts")
    expect(viaRest.body.error.details[1]?.fieldViolations[0].field).toBe("message.parts")
  })

  it("an unsupported A2A-Version: -32009, 400, FAILED_PRECONDITION (v1.0.1), reason VERSION_NOT_SUPPORTED", async () => {
    const headers = { "a2a-version": "99.0" }
    const viaRpc = await rpc(server.url, "GetTask", { id: "x" }, headers)
    const viaGrpc = await grpcError(grpc.getTask({ id: "x" }, { headers }))
    expect([viaRpc.error!.code, viaGrpc.code]).toEqual([-32009, Code.FailedPrecondition])
    expect(infoOf(viaGrpc)?.reason).toBe("VERSION_NOT_SUPPORTED")
  })
})

describe("limits over gRPC", () => {
  it("a request message over --max-body-bytes is RESOURCE_EXHAUSTED, and the server goes on", async () => {
    const big = "x".repeat(1024 * 1024 + 1)
    const error = await grpcError(
      grpc.sendMessage({ message: { messageId: "too-big", role: 1, parts: [{ content: { case: "text", value: big } }] } })
    )
    expect(error.code).toBe(Code.ResourceExhausted)
    expect(
      asJson(
        await grpc.getTask({
          id: (await call(server.url, "SendMessage", { message: userMessage("x", { messageId: "tck-complete-task-grpc-7" }) })).task.id
        })
      ).status.state
    ).toBe("TASK_STATE_COMPLETED")
  })
})

describe("deadlines over gRPC", () => {
  it("a stream past the call's deadline (grpc-timeout) ends DEADLINE_EXCEEDED after the events it had, and frees its slot", async () => {
    const sent = await grpc.sendMessage({
      message: { messageId: "tck-input-required-grpc-deadline", role: 1, parts: [{ content: { case: "text", value: "?" } }] }
    })
    const id = (sent.payload.value as { id: string }).id
    const open = () => scrape(server.url).then((m) => sampleValue(m, "a2a_ledger_sse_subscribers", { agent: conformance.name }))
    const events = grpc.subscribeToTask({ id }, { timeoutMs: 3000 })[Symbol.asyncIterator]()
    expect((await events.next()).value?.payload.case).toBe("task")
    expect(await open()).toBe(1)
    expect((await grpcError(events.next())).code).toBe(Code.DeadlineExceeded)
    expect(await eventually(open, (n) => n === 0)).toBe(0)
  })
})

describe("a request that is not the method's message", () => {
  it("is INVALID_ARGUMENT naming the message type, with the A2A reason, and the server goes on", async () => {
    // Bytes no SendMessageRequest decodes from (a field tag, then a length past the end), sent as they are.
    const raw = new GrpcJs.Client(grpcUrl, GrpcJs.credentials.createInsecure())
    try {
      const error = await new Promise<GrpcJs.ServiceError>((resolve, reject) =>
        raw.makeUnaryRequest(
          "/lf.a2a.v1.A2AService/SendMessage",
          (bytes: Buffer) => bytes,
          (bytes: Buffer) => bytes,
          Buffer.from([0x12, 0x7f, 0x01]),
          new GrpcJs.Metadata(),
          (e) => (e === null ? reject(new Error("the call succeeded")) : resolve(e))
        )
      )
      expect(error.code).toBe(GrpcJs.status.INVALID_ARGUMENT)
      expect(error.details).toContain("lf.a2a.v1.SendMessageRequest")
      const status = fromBinary(StatusSchema, error.metadata.get("grpc-status-details-bin")[0] as Buffer)
      expect(status.details.map((d) => anyUnpack(d, ErrorInfoSchema)?.reason)).toContain("INVALID_PARAMS")
    } finally {
      raw.close()
    }
    expect(asJson(await grpc.getTask({ id: (await call(server.url, "SendMessage", { message: userMessage("x") })).task.id })).status.state).toBe(
      "TASK_STATE_COMPLETED"
    )
  })
})

describe("a gRPC port that is taken", () => {
  it("stops the server at start, saying it cannot listen for gRPC there (not blaming the store)", async () => {
    const taken = net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const { port } = taken.address() as net.AddressInfo
    try {
      const dir = tempDir()
      await expect(spawnServer(["--agent", "echo", "--db", path.join(dir, "taken.db"), "--grpc-port", String(port)])).rejects.toThrow(
        new RegExp(`cannot listen for gRPC on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`)
      )
    } finally {
      taken.close()
    }
  })
})

describe("gRPC with authentication on", () => {
  it("a call without credentials is UNAUTHENTICATED; with the authorization metadata it runs as that principal, and gets the extended card", async () => {
    const extendedCard = { skills: [{ id: "audit", name: "Audit", description: "Audits a ledger.", tags: [] }] }
    const guarded = await startServer({
      agent: { ...conformance, extendedCard },
      grpcPort: 0,
      auth: { apiKeys: [{ principal: "alice", key: "alice-key" }] }
    })
    try {
      const card: any = await (await fetch(`${guarded.url}/.well-known/agent-card.json`)).json()
      const address = card.supportedInterfaces.find((i: any) => i.protocolBinding === "GRPC").url
      const client = createClient(A2AService, createGrpcTransport({ baseUrl: `http://${address}` }))
      const message = { messageId: "tck-complete-task-grpc-auth", role: 1, parts: [{ content: { case: "text" as const, value: "x" } }] }
      expect((await grpcError(client.sendMessage({ message }))).code).toBe(Code.Unauthenticated)
      const sent = await client.sendMessage({ message }, { headers: { authorization: "Bearer alice-key" } })
      const id = (sent.payload.value as { id: string }).id
      expect((await call(guarded.url, "GetTask", { id }, { authorization: "Bearer alice-key" })).id).toBe(id)
      const extended = await client.getExtendedAgentCard({}, { headers: { authorization: "Bearer alice-key" } })
      expect(extended.skills.map((s) => s.id)).toContain("audit")
      expect(extended.supportedInterfaces.map((i) => i.protocolBinding)).toContain("GRPC")
      expect((await grpcError(client.getExtendedAgentCard({}))).code).toBe(Code.Unauthenticated)
    } finally {
      await guarded.close()
    }
  })
})

describe("gRPC on a server of several agents", () => {
  it("serves the agent whose card is at the root: its cards (public, under /agents/{name}, extended) list GRPC, the other agent's do not", async () => {
    const dir = tempDir()
    const extendedCard = { skills: [{ id: "audit", name: "Audit", description: "Audits a ledger.", tags: [] }] }
    const several = await startAgentsServer({
      agents: [
        { name: "first", agent: { ...conformance, extendedCard }, db: path.join(dir, "first.db") },
        { name: "second", agent: { ...echo, extendedCard }, db: path.join(dir, "second.db") }
      ],
      grpcPort: 0,
      auth: { apiKeys: [{ principal: "alice", key: "alice-key" }] }
    })
    const alice = { authorization: "Bearer alice-key" }
    try {
      const bindings = async (path: string) => {
        const card: any = await (await fetch(`${several.url}${path}/.well-known/agent-card.json`)).json()
        return card.supportedInterfaces.filter((i: any) => i.protocolBinding === "GRPC").map((i: any) => i.url)
      }
      const [address] = await bindings("")
      expect(address).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(await bindings("/agents/first")).toEqual([address])
      expect(await bindings("/agents/second")).toEqual([])
      const extendedOf = async (agent: string) =>
        (await call(`${several.url}/agents/${agent}`, "GetExtendedAgentCard", {}, alice)).supportedInterfaces
          .filter((i: any) => i.protocolBinding === "GRPC")
          .map((i: any) => i.url)
      expect(await extendedOf("first")).toEqual([address])
      expect(await extendedOf("second")).toEqual([])

      // A task sent over gRPC is the first agent's, in its store.
      const client = createClient(A2AService, createGrpcTransport({ baseUrl: `http://${address}` }))
      const message = { messageId: "tck-complete-task-grpc-several", role: 1, parts: [{ content: { case: "text" as const, value: "x" } }] }
      const id = ((await client.sendMessage({ message }, { headers: alice })).payload.value as { id: string }).id
      expect((await call(`${several.url}/agents/first`, "GetTask", { id }, alice)).id).toBe(id)
      const elsewhere = await rpc(`${several.url}/agents/second`, "GetTask", { id }, alice)
      expect(elsewhere.error?.code).toBe(-32001)
    } finally {
      await several.close()
    }
  })
})
