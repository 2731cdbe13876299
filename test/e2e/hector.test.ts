import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { echo, slowWorker } from "../../src/agent/builtins"
import { cli } from "../support/cli"
import { eventually } from "../support/rpc"
import { startAgentsServer, storeKind, tempDir, testDb } from "../support/server"
import { storedTypes } from "../support/storeEvents"
import { verifyStore } from "../support/verifyStore"

/**
 * Hector's task surface, replayed as its documentation shows it: the `/v1/…` REST routes (messages without
 * messageId or role, `configuration.blocking`, Bearer tokens) and `task get | cancel` in client mode and,
 * with the server stopped, in local mode on the config file's agents.
 */
const dir = tempDir("a2a-ledger-hector-")
const token = "alice-key"
const auth = { apiKeys: [{ principal: "alice", key: token }] }
const bearer = { authorization: `Bearer ${token}` }
let analystDb: { readonly db: string; readonly drop: () => Promise<void> }
let echoDb: { readonly db: string; readonly drop: () => Promise<void> }
let server: Awaited<ReturnType<typeof startAgentsServer>> | undefined
let url: string

const start = async () => {
  server = await startAgentsServer({
    agents: [
      { name: "analyst", agent: slowWorker({ stepDelayMs: 120 }), db: analystDb.db },
      { name: "echo", agent: echo, db: echoDb.db }
    ],
    auth
  })
  url = server.url
}
const stop = async () => {
  await server?.close()
  server = undefined
}

beforeAll(async () => {
  analystDb = await testDb("analyst.db")
  echoDb = await testDb("echo.db")
  await start()
})
afterAll(async () => {
  await stop()
  expect(await verifyStore(analystDb.db)).toBeGreaterThan(0)
  await analystDb.drop()
  await echoDb.drop()
})

const request = async (method: string, route: string, body?: unknown, headers: Record<string, string> = bearer) => {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { ...headers, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {})
  })
  const text = await res.text()
  return { status: res.status, type: res.headers.get("content-type") ?? "", text, body: text.startsWith("{") ? JSON.parse(text) : undefined }
}

const sendAnalysis = async (text: string, route = "/v1/agents/analyst/message:send") => {
  const sent = await request("POST", route, { message: { parts: [{ text }] }, configuration: { blocking: false } })
  expect(sent.status).toBe(200)
  return sent.body.task
}

describe("Hector's REST routes (/v1/…)", () => {
  it("POST /v1/agents/{agent}/message:send takes a message without messageId or role, and blocking: false returns at once", async () => {
    const task = await sendAnalysis("Q3 sales figures")
    expect(["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"]).toContain(task.status.state)
    const [first] = task.history
    expect(first.role).toBe("ROLE_USER")
    expect(first.messageId).toMatch(/^[0-9a-f-]{36}$/)
    expect(first.parts).toEqual([{ text: "Q3 sales figures" }])
    // Two such messages are two messages: each gets its own id.
    const other = await sendAnalysis("Q3 sales figures")
    expect(other.id).not.toBe(task.id)
  })

  it("blocking: true (and no configuration at all) waits for the task to finish", async () => {
    const waited = await request("POST", "/v1/agents/echo/message:send", {
      message: { parts: [{ text: "hello" }] },
      configuration: { blocking: true }
    })
    expect(waited.body.task.status.state).toBe("TASK_STATE_COMPLETED")
    const plain = await request("POST", "/v1/agents/analyst/message:send", { message: { parts: [{ text: "Q4" }] } })
    expect(plain.body.task.status.state).toBe("TASK_STATE_COMPLETED")
    expect(plain.body.task.artifacts[0].name).toBe("analysis-report")
  })

  it("GET /v1/agents/{agent}/tasks/{id} and /v1/agents/{agent}/tasks show the agent's tasks; another agent has none of them", async () => {
    const task = await sendAnalysis("Q1")
    const got = await request("GET", `/v1/agents/analyst/tasks/${task.id}`)
    expect(got.status).toBe(200)
    expect(got.body.id).toBe(task.id)
    const listed = await request("GET", "/v1/agents/analyst/tasks")
    expect(listed.body.tasks.map((t: any) => t.id)).toContain(task.id)
    expect((await request("GET", `/v1/agents/echo/tasks/${task.id}`)).status).toBe(404)
    const unknown = await request("GET", "/v1/agents/nobody/tasks")
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.message).toContain('"analyst", "echo"')
  })

  it("GET /v1/tasks?context_id=…&status=TASK_STATE_WORKING filters the default agent's tasks (the first configured)", async () => {
    const task = await sendAnalysis("Q2")
    const found = await eventually(
      () => request("GET", `/v1/tasks?context_id=${task.contextId}&status=TASK_STATE_WORKING`),
      (r) => r.body.tasks.length === 1
    )
    expect(found.body.tasks[0].id).toBe(task.id)
    expect((await request("GET", `/v1/tasks?context_id=${task.contextId}&status=TASK_STATE_CANCELED`)).body.tasks).toEqual([])
    expect((await request("GET", `/v1/tasks/${task.id}`)).body.id).toBe(task.id)
  })

  it("GET /v1/tasks/{id}:subscribe streams the task as SSE until it completes", async () => {
    const task = await sendAnalysis("Q2 again")
    const sse = await request("GET", `/v1/tasks/${task.id}:subscribe`)
    expect(sse.type).toMatch(/^text\/event-stream/)
    const events = sse.text
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)))
    expect(events[0].task.id).toBe(task.id)
    const states = events.flatMap((e) => (e.statusUpdate !== undefined ? [e.statusUpdate.status.state] : []))
    expect(states[states.length - 1]).toBe("TASK_STATE_COMPLETED")
    expect(events.some((e) => e.statusUpdate?.status.message?.parts[0].text === "Step 2/4: Running analysis...")).toBe(true)
  })

  it("POST /v1/tasks/{id}:cancel and /v1/agents/{agent}/tasks/{id}:cancel cancel a running task", async () => {
    const a = await sendAnalysis("to cancel")
    const b = await sendAnalysis("to cancel too")
    const viaDefault = await request("POST", `/v1/tasks/${a.id}:cancel`, {})
    expect(viaDefault.body.status.state).toBe("TASK_STATE_CANCELED")
    const viaAgent = await request("POST", `/v1/agents/analyst/tasks/${b.id}:cancel`)
    expect(viaAgent.body.status.state).toBe("TASK_STATE_CANCELED")
  })

  it("POST /v1/message:send sends to the default agent; bad input names the field; no token is 401", async () => {
    const task = await sendAnalysis("default agent", "/v1/message:send")
    expect((await request("GET", `/v1/agents/analyst/tasks/${task.id}`)).status).toBe(200)
    const bad = await request("POST", "/v1/message:send", { message: { role: "ROLE_USER" } })
    expect(bad.status).toBe(400)
    expect(bad.body.error.message).toContain("message.parts")
    const refused = await request("POST", "/v1/message:send", { message: { parts: [{ text: "x" }] } }, {})
    expect(refused.status).toBe(401)
    expect((await request("GET", "/v1/tasks", undefined, {})).status).toBe(401)
  })
})

describe("a2a-ledger task get | cancel", () => {
  it("client mode: get prints the task as Hector does, --json the task itself; cancel says so", async () => {
    const task = await sendAnalysis("client mode")
    const shown = await cli(["task", "get", "analyst", task.id, "--url", url, "--token", token])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(new RegExp(`^Task ID: ${task.id}\nStatus: TASK_STATE_(SUBMITTED|WORKING)\nContext ID: ${task.contextId}\n`))
    const asJson = await cli(["task", "get", "analyst", task.id, "--url", url, "--token", token, "--json"])
    expect(JSON.parse(asJson.stdout).id).toBe(task.id)
    const canceled = await cli(["task", "cancel", "analyst", task.id, "--url", url, "--token", token])
    expect(canceled.code).toBe(0)
    expect(canceled.stdout).toMatch(/^Task cancelled successfully\nTask ID: .*\nStatus: TASK_STATE_CANCELED\n/)
    // Refusals are one line and exit 1: a finished task, a missing token, an unknown agent.
    const again = await cli(["task", "cancel", "echo", task.id, "--url", url, "--token", token])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain("404 NOT_FOUND")
    const anonymous = await cli(["task", "get", "analyst", task.id, "--url", url])
    expect(anonymous.code).toBe(1)
    expect(anonymous.stderr).toContain("401 UNAUTHENTICATED")
  })

  it("local mode (--config): get and cancel on the agent's store with the server stopped; refused while a SQLite server holds it", async () => {
    const config = path.join(dir, "hector.yaml")
    fs.writeFileSync(
      config,
      `agents:\n  - name: analyst\n    agent: slow-worker\n    db: ${JSON.stringify(analystDb.db)}\n  - name: echo\n    agent: echo\n    db: ${JSON.stringify(echoDb.db)}\n`
    )
    const task = await sendAnalysis("left working")
    await eventually(
      () => request("GET", `/v1/tasks/${task.id}`),
      (r) => r.body.status.state === "TASK_STATE_WORKING"
    )
    if (storeKind === "sqlite") {
      const busy = await cli(["task", "cancel", "analyst", task.id, "--config", config])
      expect(busy.code).toBe(1)
      expect(busy.stderr).toMatch(/another a2a-ledger process is running/)
    }
    await stop()
    try {
      const shown = await cli(["task", "get", "analyst", task.id, "--config", config])
      expect(shown.code).toBe(0)
      expect(shown.stdout).toMatch(/^Task ID: .*\nStatus: TASK_STATE_WORKING\nContext ID: .*\nCreated: \d{4}-\d\d-\d\dT/)
      const canceled = await cli(["task", "cancel", "analyst", task.id, "--config", config])
      expect(canceled.code).toBe(0)
      expect(canceled.stdout).toMatch(/^Task cancelled successfully\n.*\nStatus: TASK_STATE_CANCELED\n/)
      const after = await cli(["task", "get", "analyst", task.id, "--config", config, "--json"])
      expect(JSON.parse(after.stdout).status.state).toBe("TASK_STATE_CANCELED")
      const missing = await cli(["task", "get", "nobody", task.id, "--config", config])
      expect(missing.code).toBe(1)
      expect(missing.stderr).toContain('no agent named "nobody": it has analyst, echo')
      const both = await cli(["task", "get", "analyst", task.id, "--config", config, "--url", "http://127.0.0.1:1"])
      expect(both.code).toBe(1)
    } finally {
      await start()
    }
    // The restarted server sees the cancel, and does not run the task again.
    expect((await request("GET", `/v1/tasks/${task.id}`)).body.status.state).toBe("TASK_STATE_CANCELED")
  })

  // (PostgreSQL only: the e2e-postgres project runs it; a SQLite file refuses a second writer, tested above.)
  if (storeKind === "postgres")
    it("local mode on a shared PostgreSQL store cancels beside the running server, which stops the worker", async () => {
      const config = path.join(dir, "hector-pg.yaml")
      fs.writeFileSync(config, `agents:\n  - name: analyst\n    agent: slow-worker\n    db: ${JSON.stringify(analystDb.db)}\n`)
      const task = await sendAnalysis("canceled from the side")
      await eventually(
        () => request("GET", `/v1/tasks/${task.id}`),
        (r) => r.body.status.state === "TASK_STATE_WORKING"
      )
      const canceled = await cli(["task", "cancel", "analyst", task.id, "--config", config])
      expect(canceled.code).toBe(0)
      await eventually(
        () => request("GET", `/v1/tasks/${task.id}`),
        (r) => r.body.status.state === "TASK_STATE_CANCELED"
      )
      // The worker is stopped: nothing follows the cancel, though its steps had more to say.
      await new Promise((r) => setTimeout(r, 600))
      const types = await storedTypes(analystDb.db, task.id)
      expect(types[types.length - 1]).toBe("TaskCanceled")
      expect(types).not.toContain("ArtifactAdded")
    })
})
