import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance, slowWorker } from "../../src/agent/builtins"
import { cli } from "../support/cli"
import { call, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

/** `a2a-ledger tasks …`: a client for any A2A v1.0 server, here ours over real HTTP. */
let tck: RunningServer
let slow: RunningServer
let locked: RunningServer
beforeAll(async () => {
  tck = await startServer({ agent: conformance })
  slow = await startServer({ agent: slowWorker({ stepDelayMs: 40 }) })
  locked = await startServer({ agent: conformance, auth: { apiKeys: [{ principal: "alice", key: "alice-key-0123456789" }] } })
})
afterAll(async () => {
  await tck.close()
  await slow.close()
  await locked.close()
})

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split("\n").pop()!)

describe("tasks send", () => {
  it("waits for the task to settle and prints it; --json prints the server's answer", async () => {
    const text = await cli(["tasks", "send", "hello", "--url", tck.url, "--message-id", "tck-artifact-text-cli"])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^task \S+ {2}completed/)
    expect(text.stdout).toContain("artifact text: Generated text content")
    const json = await cli(["tasks", "send", "hello", "--url", tck.url, "--message-id", "tck-complete-task-cli", "--json"])
    const answer = JSON.parse(json.stdout)
    expect(answer.task.status.state).toBe("TASK_STATE_COMPLETED")
    // The same messageId again: the same task (idempotency), whoever sends it.
    const again = JSON.parse((await cli(["tasks", "send", "hello", "--url", tck.url, "--message-id", "tck-complete-task-cli", "--json"])).stdout)
    expect(again.task.id).toBe(answer.task.id)
  })

  it("--immediate returns before the work is done; --task answers a question", async () => {
    const asked = JSON.parse((await cli(["tasks", "send", "q", "--url", tck.url, "--message-id", "tck-input-required-cli", "--json"])).stdout).task
    expect(asked.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    const answered = await cli(["tasks", "send", "a", "--url", tck.url, "--task", asked.id, "--message-id", "tck-complete-task-cli-2", "--json"])
    expect(JSON.parse(answered.stdout).task).toMatchObject({ id: asked.id, status: { state: "TASK_STATE_COMPLETED" } })
    const early = JSON.parse((await cli(["tasks", "send", "work", "--url", slow.url, "--immediate", "--json"])).stdout).task
    expect(["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"]).toContain(early.status.state)
  })

  it("--stream prints each event as it comes, ending at the final state", async () => {
    const r = await cli(["tasks", "send", "go", "--url", tck.url, "--message-id", "tck-stream-cli", "--stream"])
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split("\n")
    expect(lines[0]).toMatch(/^task \S+ {2}submitted/)
    expect(lines.slice(1)).toEqual(["status working", "artifact stream: Streamed content", "status completed"])
    const json = await cli(["tasks", "send", "go", "--url", tck.url, "--message-id", "tck-stream-cli-json", "--stream", "--json"])
    expect(lastJson(json.stdout).statusUpdate.status.state).toBe("TASK_STATE_COMPLETED")
  })
})

describe("tasks get | list | cancel | subscribe", () => {
  it("get shows a task, list filters by state, cancel cancels", async () => {
    const { task } = await call(slow.url, "SendMessage", { message: userMessage("long"), configuration: { returnImmediately: true } })
    const got = await cli(["tasks", "get", task.id, "--url", slow.url])
    expect(got.stdout).toContain(`task ${task.id}`)
    const canceled = await cli(["tasks", "cancel", task.id, "--url", slow.url, "--json"])
    expect(JSON.parse(canceled.stdout).status.state).toBe("TASK_STATE_CANCELED")
    const listed = JSON.parse((await cli(["tasks", "list", "--url", slow.url, "--state", "canceled", "--json"])).stdout)
    expect(listed.tasks.map((t: any) => t.id)).toContain(task.id)
    expect(listed.tasks.every((t: any) => t.status.state === "TASK_STATE_CANCELED")).toBe(true)
    const text = await cli(["tasks", "list", "--url", slow.url, "--state", "canceled", "--page-size", "1"])
    expect(text.stdout).toMatch(/1 of \d+ task\(s\)/)
  })

  it("subscribe follows a running task to its end", async () => {
    const { task } = await call(slow.url, "SendMessage", { message: userMessage("follow me"), configuration: { returnImmediately: true } })
    const r = await cli(["tasks", "subscribe", task.id, "--url", slow.url])
    expect(r.code).toBe(0)
    expect(r.stdout.trim().split("\n").pop()).toMatch(/^status completed/)
  })

  it("takes a JSON-RPC endpoint as --url when there is no agent card there", async () => {
    const r = await cli(["tasks", "send", "x", "--url", `${tck.url}/a2a`, "--message-id", "tck-complete-task-endpoint", "--json"])
    expect(JSON.parse(r.stdout).task.status.state).toBe("TASK_STATE_COMPLETED")
  })
})

describe("tasks: failures are one line and exit 1", () => {
  it("the server's refusal, with its code", async () => {
    const r = await cli(["tasks", "get", "no-such-task", "--url", tck.url])
    expect(r.code).toBe(1)
    expect(r.stderr.trim()).toBe("a2a-ledger: the server refused: -32001 Task no-such-task was not found")
  })

  it("a server that is not there", async () => {
    // A port that was free a moment ago.
    const probe = net.createServer()
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r))
    const port = (probe.address() as net.AddressInfo).port
    await new Promise((r) => probe.close(r))
    const r = await cli(["tasks", "list", "--url", `http://127.0.0.1:${port}`])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(new RegExp(`^a2a-ledger: cannot reach http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`))
  })

  it("--token authenticates; without it the server's 401 is reported", async () => {
    const without = await cli(["tasks", "list", "--url", locked.url])
    expect(without.code).toBe(1)
    expect(without.stderr).toContain("-32000")
    const withToken = await cli(["tasks", "list", "--url", locked.url, "--token", "alice-key-0123456789", "--json"])
    expect(withToken.code).toBe(0)
    expect(JSON.parse(withToken.stdout)).toHaveProperty("tasks")
  })
})

describe("tasks --transport grpc", () => {
  it("send, get, list, cancel and stream over gRPC print what JSON-RPC prints; a refusal has the same code", async () => {
    const server = await startServer({ agent: conformance, grpcPort: 0, auth: { apiKeys: [{ principal: "alice", key: "alice-key-0123456789" }] } })
    const grpc = ["--url", server.url, "--transport", "grpc", "--token", "alice-key-0123456789"]
    try {
      const sent = await cli(["tasks", "send", "hello", ...grpc, "--message-id", "tck-complete-task-cli-grpc", "--json"])
      expect(sent.code).toBe(0)
      const task = JSON.parse(sent.stdout).task
      expect(task.status.state).toBe("TASK_STATE_COMPLETED")
      // The same task over JSON-RPC prints the same JSON.
      const overGrpc = await cli(["tasks", "get", task.id, ...grpc, "--json"])
      const overRpc = await cli(["tasks", "get", task.id, "--url", server.url, "--token", "alice-key-0123456789", "--json"])
      expect(JSON.parse(overGrpc.stdout)).toEqual(JSON.parse(overRpc.stdout))
      expect((await cli(["tasks", "get", task.id, ...grpc])).stdout).toMatch(new RegExp(`^task ${task.id} {2}completed`))
      const listed = await cli(["tasks", "list", ...grpc, "--state", "completed", "--json"])
      expect(lastJson(listed.stdout).tasks.map((t: any) => t.id)).toContain(task.id)
      const asked = JSON.parse((await cli(["tasks", "send", "q", ...grpc, "--message-id", "tck-input-required-cli-grpc", "--json"])).stdout).task
      expect((await cli(["tasks", "cancel", asked.id, ...grpc])).stdout).toMatch(/canceled/)
      const streamed = await cli(["tasks", "send", "go", ...grpc, "--message-id", "tck-complete-task-cli-grpc-stream", "--stream"])
      expect(streamed.stdout.trim().split("\n").pop()).toMatch(/^status completed/)
      const missing = await cli(["tasks", "get", "no-such-task", ...grpc])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain("the server refused: -32001")
      // Without the token: UNAUTHENTICATED, as JSON-RPC's -32000.
      expect((await cli(["tasks", "get", task.id, "--url", server.url, "--transport", "grpc"])).stderr).toContain("the server refused: -32000")
      // A server without gRPC says so.
      const none = await cli(["tasks", "get", task.id, "--url", tck.url, "--transport", "grpc"])
      expect(none.stderr).toContain("lists no GRPC interface")
    } finally {
      await server.close()
    }
  })
})
