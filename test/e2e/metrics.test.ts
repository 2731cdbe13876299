import { Deferred, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { echo } from "../../src/agent/builtins"
import { textOf } from "../../src/domain/Message"
import { type ServerProcess, spawnServer } from "../support/process"
import { sampleValue, scrape } from "../support/prometheus"
import { call, eventually, stream, userMessage } from "../support/rpc"
import { startAgentsServer, startServer, storeKind, tempDir, testDb } from "../support/server"
import { startReceiver, type WebhookReceiver } from "../support/webhookReceiver"

/**
 * `GET /metrics` (issue 14): the Prometheus text format, with the metric names docs/operations.md fixes,
 * read from a real server after real traffic.
 */
const open: Array<{ close: () => Promise<void> }> = []
const processes: Array<ServerProcess> = []
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close()
  for (const p of processes.splice(0)) await p.kill9()
})
const track = <A extends { close: () => Promise<void> }>(a: A) => {
  open.push(a)
  return a
}

/** Completes, fails on "fail", and on "wait" works until the gate opens. */
const metered = (gate: Deferred.Deferred<void>): Agent => ({
  name: "Metered",
  description: "",
  version: "1",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      const text = textOf(ctx.input)
      if (text === "fail") return Outcome.fail("it had to")
      if (text === "wait") yield* Deferred.await(gate)
      return Outcome.complete(`done: ${text}`)
    })
})

const agent = { agent: "Metered" }

describe("GET /metrics", () => {
  it("counts tasks created and finished, events, commits, queue waits and requests, and reads active tasks from the store", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const s = track(await startServer({ agent: metered(gate) }))
    for (const text of ["a", "b", "fail"]) await call(s.url, "SendMessage", { message: userMessage(text) })
    const { task: waiting } = await call(s.url, "SendMessage", { message: userMessage("wait"), configuration: { returnImmediately: true } })
    await eventually(
      () => call(s.url, "GetTask", { id: waiting.id }),
      (t) => t.status.state === "TASK_STATE_WORKING"
    )
    await fetch(`${s.url}/tasks/${waiting.id}`)

    const m = await scrape(s.url)
    expect(sampleValue(m, "a2a_ledger_tasks_created_total", agent)).toBe(4)
    expect(sampleValue(m, "a2a_ledger_tasks_finished_total", { ...agent, state: "completed" })).toBe(2)
    expect(sampleValue(m, "a2a_ledger_tasks_finished_total", { ...agent, state: "failed" })).toBe(1)
    expect(sampleValue(m, "a2a_ledger_task_duration_seconds_count", { ...agent, state: "completed" })).toBe(2)
    // Every non-terminal state is reported, 0 when no task is in it.
    expect(sampleValue(m, "a2a_ledger_tasks_active", { ...agent, state: "working" })).toBe(1)
    for (const state of ["submitted", "input_required", "auth_required"])
      expect(sampleValue(m, "a2a_ledger_tasks_active", { ...agent, state })).toBe(0)
    expect(sampleValue(m, "a2a_ledger_events_appended_total", { ...agent, type: "TaskSubmitted" })).toBe(4)
    expect(sampleValue(m, "a2a_ledger_events_appended_total", { ...agent, type: "TaskCompleted" })).toBe(2)
    expect(sampleValue(m, "a2a_ledger_queue_wait_seconds_count", agent)).toBe(4)
    const batches = sampleValue(m, "a2a_ledger_commit_seconds_count", agent)!
    expect(batches).toBeGreaterThan(0)
    expect(sampleValue(m, "a2a_ledger_commit_batch_size_count", agent)).toBe(batches)
    // Each task was written by at least one commit (a blocking send's whole turn can be one).
    expect(sampleValue(m, "a2a_ledger_commit_batch_size_sum", agent)).toBeGreaterThanOrEqual(4)
    // Requests, by route template: JSON-RPC (FastRpc's path) and REST alike.
    const rpc = { http_request_method: "POST", http_route: "/a2a", http_response_status_code: "200" }
    expect(sampleValue(m, "http_server_request_duration_seconds_count", rpc)).toBeGreaterThanOrEqual(5)
    const rest = { http_request_method: "GET", http_route: "/tasks/{id}", http_response_status_code: "200" }
    expect(sampleValue(m, "http_server_request_duration_seconds_count", rest)).toBe(1)
    // prom-client's process metrics.
    expect(sampleValue(m, "process_cpu_user_seconds_total")).toBeGreaterThan(0)
    expect(sampleValue(m, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0)

    // An open stream is counted while it is open.
    const sse = await stream(s.url, "SubscribeToTask", { id: waiting.id })
    const during = await scrape(s.url)
    expect(sampleValue(during, "a2a_ledger_sse_subscribers", agent)).toBe(1)
    expect(sampleValue(during, "http_server_request_duration_seconds_count", { http_route: "/metrics" })).toBe(1)
    await Effect.runPromise(Deferred.succeed(gate, undefined))
    await sse.rest()
    const after = await eventually(
      () => scrape(s.url),
      (m) => sampleValue(m, "a2a_ledger_sse_subscribers", agent) === 0
    )
    expect(sampleValue(after, "a2a_ledger_tasks_finished_total", { ...agent, state: "completed" })).toBe(3)
    expect(sampleValue(after, "a2a_ledger_tasks_active", { ...agent, state: "working" })).toBe(0)
  })

  it("counts webhook deliveries by outcome, and reads the outbox and its dead letters from the store", async () => {
    const failing = track(await startReceiver())
    failing.respond = () => 503
    const working: WebhookReceiver = track(await startReceiver())
    const s = track(
      await startServer({ agent: echo, push: { allowHosts: ["127.0.0.1"], retryBaseMs: 20, retryMaxMs: 100, pollMs: 100, maxAttempts: 2 } })
    )
    const withHook = (url: string) =>
      call(s.url, "SendMessage", { message: userMessage("hello"), configuration: { taskPushNotificationConfig: { url } } })
    await withHook(failing.url)
    await withHook(working.url)
    await working.waitFor((d) => d.length === 4)
    // Echo's four updates per task: each delivered once to the working hook; each tried twice, then dead, on the failing one.
    const m = await eventually(
      () => scrape(s.url),
      // (The receiver counts a call before the server has its answer, and one scrape reads the counters and the
      // store's gauges at slightly different moments: wait until both sides have seen every delivery.)
      (m) =>
        sampleValue(m, "a2a_ledger_push_dead_letters", { agent: echo.name }) === 4 &&
        sampleValue(m, "a2a_ledger_push_deliveries_total", { agent: echo.name, outcome: "dead" }) === 4 &&
        sampleValue(m, "a2a_ledger_push_deliveries_total", { agent: echo.name, outcome: "delivered" }) === 4
    )
    const a = { agent: echo.name }
    expect(sampleValue(m, "a2a_ledger_push_deliveries_total", { ...a, outcome: "delivered" })).toBe(4)
    expect(sampleValue(m, "a2a_ledger_push_deliveries_total", { ...a, outcome: "retry" })).toBe(4)
    expect(sampleValue(m, "a2a_ledger_push_deliveries_total", { ...a, outcome: "dead" })).toBe(4)
    expect(sampleValue(m, "a2a_ledger_push_outbox_pending", a)).toBe(0)
    expect(failing.calls.length).toBe(8)
  })

  it("with authentication on, only a principal listed in admins may read it", async () => {
    const s = track(
      await startServer({
        agent: echo,
        auth: {
          apiKeys: [
            { principal: "ops", key: "ops-key" },
            { principal: "app", key: "app-key" }
          ],
          admins: ["ops"]
        }
      })
    )
    const anonymous = await fetch(`${s.url}/metrics`)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get("www-authenticate")).toContain("Bearer")
    const app = await fetch(`${s.url}/metrics`, { headers: { "x-api-key": "app-key" } })
    expect(app.status).toBe(403)
    expect(((await app.json()) as any).error).toMatchObject({ status: "PERMISSION_DENIED", message: expect.stringContaining("auth.admins") })
    const ops = await fetch(`${s.url}/metrics`, { headers: { authorization: "Bearer ops-key" } })
    expect(ops.status).toBe(200)
    expect(ops.headers.get("content-type")).toContain("text/plain")
    expect(await ops.text()).toContain("a2a_ledger_tasks_created_total")
  })

  it("serves every metric the example Grafana dashboard and the documented alerts use", async () => {
    const s = track(await startServer({ agent: echo }))
    await call(s.url, "SendMessage", { message: userMessage("hi") })
    const served = new Set((await scrape(s.url)).map((sample) => sample.name))
    const root = path.resolve(__dirname, "../..")
    const dashboard = JSON.parse(fs.readFileSync(path.join(root, "docs/grafana-dashboard.json"), "utf8"))
    const exprs: Array<string> = dashboard.panels.flatMap((p: any) => p.targets.map((t: any) => t.expr))
    const alerts = /```yaml\ngroups:[\s\S]*?```/.exec(fs.readFileSync(path.join(root, "docs/operations.md"), "utf8"))![0]
    const used = new Set(
      [...exprs, alerts].flatMap((text) => [...text.matchAll(/\b(?:a2a_ledger|http_server|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0]))
    )
    expect(used.size).toBeGreaterThan(15)
    expect([...used].filter((name) => !served.has(name))).toEqual([])
  })

  it("labels the single agent with metricsLabel when given, its name otherwise", async () => {
    const s = track(await startServer({ agent: echo, metricsLabel: "front-desk" }))
    await call(s.url, "SendMessage", { message: userMessage("hi") })
    const m = await scrape(s.url)
    expect(sampleValue(m, "a2a_ledger_tasks_created_total", { agent: "front-desk" })).toBe(1)
    expect(sampleValue(m, "a2a_ledger_tasks_created_total", { agent: echo.name })).toBeUndefined()
  })

  it("is 404 when metrics are off", async () => {
    const s = track(await startServer({ agent: echo, metrics: false }))
    const res = await fetch(`${s.url}/metrics`)
    expect(res.status).toBe(404)
    expect(((await res.json()) as any).error.message).toContain("Metrics are off")
  })

  it("labels each agent of a several-agent server with its route name", async () => {
    const dir = tempDir()
    const s = track(
      await startAgentsServer({
        agents: [
          { name: "one", agent: echo, db: path.join(dir, "one.db") },
          { name: "two", agent: echo, db: path.join(dir, "two.db") }
        ]
      })
    )
    await call(`${s.url}/agents/one`, "SendMessage", { message: userMessage("hi") })
    await call(`${s.url}/agents/one`, "SendMessage", { message: userMessage("again") })
    const m = await scrape(s.url)
    expect(sampleValue(m, "a2a_ledger_tasks_created_total", { agent: "one" })).toBe(2)
    expect(sampleValue(m, "a2a_ledger_tasks_created_total", { agent: "two" })).toBe(0)
    expect(sampleValue(m, "a2a_ledger_tasks_active", { agent: "two", state: "working" })).toBe(0)
    const perAgent = { http_request_method: "POST", http_route: "/agents/{agent}/a2a", http_response_status_code: "200" }
    expect(sampleValue(m, "http_server_request_duration_seconds_count", perAgent)).toBe(2)
  })

  it(`a task whose process was killed mid-turn is taken over by the next (${storeKind === "postgres" ? "a lease takeover" : "SQLite: recovery, no lease"})`, async () => {
    const store = await testDb("takeover.db")
    open.push({ close: store.drop })
    const first = await spawnServer(["--db", store.db, "--step-delay-ms", "1500", "--lease-ms", "1000"])
    processes.push(first)
    const { task } = await call(first.url, "SendMessage", { message: userMessage("survive"), configuration: { returnImmediately: true } })
    await eventually(
      () => call(first.url, "GetTask", { id: task.id }),
      (t) => t.status.state === "TASK_STATE_WORKING"
    )
    if (storeKind === "postgres") {
      const held = await scrape(first.url)
      const label = held.find((s) => s.name === "a2a_ledger_tasks_created_total")!.labels
      expect(sampleValue(held, "a2a_ledger_leases_held", label)).toBe(1)
    }
    await first.kill9()
    const second = await spawnServer(["--db", store.db, "--step-delay-ms", "50", "--lease-ms", "1000"])
    processes.push(second)
    await eventually(
      () => call(second.url, "GetTask", { id: task.id }),
      (t) => t.status.state === "TASK_STATE_COMPLETED",
      30_000
    )
    const m = await scrape(second.url)
    const demo = m.find((s) => s.name === "a2a_ledger_tasks_created_total")!.labels
    expect(sampleValue(m, "a2a_ledger_lease_takeovers_total", demo)).toBe(storeKind === "postgres" ? 1 : 0)
    expect(sampleValue(m, "a2a_ledger_tasks_finished_total", { ...demo, state: "completed" })).toBe(1)
    // Created by the first process: this one did not create it.
    expect(sampleValue(m, "a2a_ledger_tasks_created_total", demo)).toBe(0)
    if (storeKind === "postgres") expect(sampleValue(m, "a2a_ledger_leases_held", demo)).toBe(0)
  })
})
