import { Deferred, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { echo } from "../../src/agent/builtins"
import { runCli, spawnServer } from "../support/process"
import { eventually, rpc, userMessage } from "../support/rpc"
import { type RunningServer, startAgentsServer, tempDir } from "../support/server"

/**
 * Several agents on one server (issue 3): each under /agents/{name}/ with its
 * own card, store, worker limit and retention; a catalog at /agents.
 */
const gate = Effect.runSync(Deferred.make<void>())
const gated: Agent = {
  name: "Gated",
  description: "Works until the test opens the gate.",
  version: "2.0.0",
  skills: [],
  run: () => Deferred.await(gate).pipe(Effect.as(Outcome.complete("done")))
}
const shortLived: Agent = { ...echo, name: "Short-lived Echo" }

let server: Omit<RunningServer, "db">
let dir: string
beforeAll(async () => {
  dir = tempDir()
  server = await startAgentsServer({
    agents: [
      { name: "gated", agent: gated, db: path.join(dir, "gated.db"), maxWorkers: 1 },
      { name: "echo", agent: echo, db: path.join(dir, "echo.db") },
      { name: "short", agent: shortLived, db: path.join(dir, "short.db"), retentionMs: 1_000 }
    ]
  })
})
afterAll(async () => {
  await Effect.runPromise(Deferred.succeed(gate, undefined))
  await server.close()
})

const agentRpc = (name: string, method: string, params: unknown) => rpc(`${server.url}/agents/${name}`, method, params)
const send = (name: string, extra: Record<string, unknown> = {}) => agentRpc(name, "SendMessage", { message: userMessage("hi"), ...extra })

describe("several agents on one server", () => {
  it("GET /agents lists every agent with its card and endpoints", async () => {
    const res = await fetch(`${server.url}/agents`)
    expect(res.status).toBe(200)
    const { agents } = (await res.json()) as any
    expect(agents.map((a: any) => a.name)).toEqual(["gated", "echo", "short"])
    expect(agents[0]).toEqual({
      name: "gated",
      displayName: "Gated",
      description: "Works until the test opens the gate.",
      version: "2.0.0",
      card: `${server.url}/agents/gated/.well-known/agent-card.json`,
      jsonrpc: `${server.url}/agents/gated/a2a`,
      rest: `${server.url}/agents/gated`
    })
  })

  it("each agent has its own card, with its interfaces under its own path; the root card is the first agent's", async () => {
    const card = (await (await fetch(`${server.url}/agents/echo/.well-known/agent-card.json`)).json()) as any
    expect(card.name).toBe("Echo")
    expect(card.supportedInterfaces.map((i: any) => [i.protocolBinding, i.url])).toEqual([
      ["JSONRPC", `${server.url}/agents/echo/a2a`],
      ["HTTP+JSON", `${server.url}/agents/echo`],
      ["JSONRPC", `${server.url}/agents/echo/a2a`]
    ])
    const root = (await (await fetch(`${server.url}/.well-known/agent-card.json`)).json()) as any
    expect(root.name).toBe("Gated")
    expect(root.supportedInterfaces[0].url).toBe(`${server.url}/agents/gated/a2a`)
  })

  it("each agent runs its own tasks, over JSON-RPC and REST (tenant prefix included)", async () => {
    const viaRpc = await send("echo")
    expect(viaRpc.result.task.artifacts[0].parts[0].text).toBe("hi")
    const viaRest = await fetch(`${server.url}/agents/echo/acme/message:send`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message: userMessage("rest") })
    })
    const task = ((await viaRest.json()) as any).task
    expect(task.status.state).toBe("TASK_STATE_COMPLETED")
    const got = await fetch(`${server.url}/agents/echo/acme/tasks/${task.id}`)
    expect(((await got.json()) as any).id).toBe(task.id)
  })

  it("an agent's task does not exist for another agent", async () => {
    const { result } = await send("echo")
    const elsewhere = await agentRpc("short", "GetTask", { id: result.task.id })
    expect(elsewhere.error?.code).toBe(-32001)
    expect((await fetch(`${server.url}/agents/short/tasks/${result.task.id}`)).status).toBe(404)
    expect((await agentRpc("echo", "GetTask", { id: result.task.id })).result.id).toBe(result.task.id)
  })

  it("worker limits are per agent: a full agent queues its tasks while another keeps working", async () => {
    const first = await send("gated", { configuration: { returnImmediately: true } })
    const second = await send("gated", { configuration: { returnImmediately: true } })
    const state = (id: string) => agentRpc("gated", "GetTask", { id }).then((r) => r.result.status.state)
    await eventually(
      () => state(first.result.task.id),
      (s) => s === "TASK_STATE_WORKING"
    )
    // The gated agent's one worker is busy; echo, with its own limit, is not held up.
    expect((await send("echo")).result.task.status.state).toBe("TASK_STATE_COMPLETED")
    expect(await state(second.result.task.id)).toBe("TASK_STATE_SUBMITTED")
  })

  it("retention is per agent: finished tasks of the agent with retention go, the others stay", async () => {
    const short = (await send("short")).result.task
    const kept = (await send("echo")).result.task
    const gone = await eventually(
      () => agentRpc("short", "GetTask", { id: short.id }),
      (r) => r.error?.code === -32001,
      15_000
    )
    expect(gone.error!.code).toBe(-32001)
    expect((await agentRpc("echo", "GetTask", { id: kept.id })).result.id).toBe(kept.id)
  })

  it("unknown agents are 404, and the root endpoints point to /agents", async () => {
    const unknown = await fetch(`${server.url}/agents/nope/a2a`, { method: "POST", body: "{}" })
    expect(unknown.status).toBe(404)
    expect(((await unknown.json()) as any).error.message).toContain("GET /agents")
    const root = await fetch(`${server.url}/a2a`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ListTasks", params: {} })
    })
    expect(root.status).toBe(404)
    expect(((await root.json()) as any).error.message).toContain("/agents/{name}/")
    expect((await fetch(`${server.url}/tasks`)).status).toBe(404)
  })
})

describe("several agents from a config file", () => {
  it("serve --config with agents hosts each one on its own store beside --db", async () => {
    const d = tempDir()
    const config = path.join(d, "agents.yaml")
    fs.writeFileSync(
      config,
      "agents:\n  - name: first\n    agent: echo\n    maxWorkers: 3\n  - name: second\n    agent: slow-worker\n    stepDelayMs: 1\n    retention: 7d\n"
    )
    const proc = await spawnServer(["--db", path.join(d, "data", "main.db"), "--config", config])
    try {
      expect(proc.output()).toContain("/agents/first: Echo")
      const r = await rpc(`${proc.url}/agents/second`, "SendMessage", { message: userMessage("report") })
      expect(r.result.task.artifacts[0].artifactId).toBe("analysis-report")
      expect(fs.existsSync(path.join(d, "data", "first.db"))).toBe(true)
      expect(fs.existsSync(path.join(d, "data", "second.db"))).toBe(true)
    } finally {
      await proc.kill9()
    }
  })

  it.each([
    ["agents:\n  - name: a\n    agent: nonesuch\n", "agents[0].agent"],
    ["agents:\n  - name: Bad Name\n    agent: echo\n", "agents[0].name"],
    ["agents:\n  - name: a\n    agent: echo\n  - name: a\n    agent: echo\n", "the agent name a is used twice"],
    ["agents:\n  - name: a\n    agent: echo\n    retention: forever\n", "agents[0].retention"],
    ["agents:\n  - name: a\n    agent: echo\n    db: same.db\n  - name: b\n    agent: echo\n    db: same.db\n", "would share the store"]
  ])("a bad agents section stops the server at start: %j", async (text, expected) => {
    const d = tempDir()
    const config = path.join(d, "bad.yaml")
    fs.writeFileSync(config, text)
    const r = await runCli(["serve", "--port", "0", "--host", "127.0.0.1", "--db", path.join(d, "m.db"), "--config", config])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(expected)
  })
})
