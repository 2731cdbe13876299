import { randomBytes } from "node:crypto"
import { afterEach, describe, expect, it } from "vitest"
import { startOtlpReceiver } from "../support/otlpReceiver"
import { type ServerProcess, spawnServer } from "../support/process"
import { call, eventually, rpc, userMessage } from "../support/rpc"
import { testDb } from "../support/server"
import { startReceiver } from "../support/webhookReceiver"

/**
 * Traces (issue 14): the real server, configured by OTEL_* variables, exports OTLP/HTTP JSON to a real
 * receiver. One SendMessage's trace is followed from the client's `traceparent` through a kill -9 and a
 * restart, to the webhooks its task's updates are delivered to.
 */
const cleanup: Array<() => Promise<void>> = []
const processes: Array<ServerProcess> = []
afterEach(async () => {
  for (const p of processes.splice(0)) await p.kill9()
  for (const c of cleanup.splice(0).reverse()) await c()
})
const start = async (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const p = await spawnServer(args, env)
  processes.push(p)
  return p
}
const hex = (bytes: number) => randomBytes(bytes).toString("hex")
const SERVER = 2
const CLIENT = 3

describe("traces (OTLP/HTTP)", () => {
  it("a SendMessage's trace holds its request, its method, its commits, each turn and its steps (after a restart too) and its webhook calls, which carry traceparent", async () => {
    const otlp = await startOtlpReceiver()
    cleanup.push(otlp.close)
    const hooks = await startReceiver()
    cleanup.push(hooks.close)
    const store = await testDb("traced.db")
    cleanup.push(store.drop)
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_SERVICE_NAME: "ledger-under-test"
    }
    const args = ["--db", store.db, "--agent", "slow-worker", "--allow-webhook-host", "127.0.0.1", "--lease-ms", "1000"]
    const first = await start([...args, "--step-delay-ms", "1500"], env)
    expect(first.output()).toContain(`tracing: spans go to ${otlp.url}/v1/traces (http/json)`)

    const traceId = hex(16)
    const clientSpanId = hex(8)
    const sent = await rpc(
      first.url,
      "SendMessage",
      { message: userMessage("trace me"), configuration: { returnImmediately: true, taskPushNotificationConfig: { url: hooks.url } } },
      { traceparent: `00-${traceId}-${clientSpanId}-01` }
    )
    const taskId = sent.result.task.id as string
    const inTrace = () => otlp.spans.filter((s) => s.traceId === traceId)
    // The first process's first step ends (1.5 s) and is exported; then it is killed mid-turn.
    const before = await eventually(
      async () => inTrace(),
      (spans) => spans.some((s) => s.name.startsWith("step ")),
      15_000
    )
    await first.kill9()

    // The request: a server span, child of the client's; the method under it.
    const request = before.find((s) => s.name === "POST /a2a")!
    expect(request).toMatchObject({ service: "ledger-under-test", kind: SERVER, parentSpanId: clientSpanId })
    expect(request.attributes).toMatchObject({ "http.request.method": "POST", "http.route": "/a2a", "http.response.status_code": 200 })
    const method = before.find((s) => s.name === "A2A SendMessage")!
    expect(method.parentSpanId).toBe(request.spanId)
    expect(method.attributes).toMatchObject({ "a2a.method": "SendMessage" })
    // Its commit, and the batch that wrote it, linked to it (a batch serves many traces).
    const commit = before.find((s) => s.name === "a2a_ledger.commit" && s.parentSpanId === method.spanId)!
    expect(commit.attributes["a2a.task.id"]).toBe(taskId)
    const batch = otlp.spans.find((s) => s.name === "a2a_ledger.commit_batch" && s.links.some((l) => l.spanId === commit.spanId))
    expect(batch?.parentSpanId).toBeUndefined()
    expect(batch?.attributes["a2a_ledger.batch.size"]).toBeGreaterThanOrEqual(1)

    // The restarted process runs the rest of the turn in the same trace: its turn's parent is the method
    // span the task was sent under (stored with the task), and the steps it runs are the turn's children.
    const second = await start([...args, "--step-delay-ms", "50"], env)
    await eventually(
      () => call(second.url, "GetTask", { id: taskId }),
      (t) => t.status.state === "TASK_STATE_COMPLETED",
      30_000
    )
    const after = await eventually(
      async () => inTrace(),
      (spans) => spans.some((s) => s.name.startsWith("invoke_agent ")),
      15_000
    )
    const turns = after.filter((s) => s.name.startsWith("invoke_agent "))
    expect(turns).toHaveLength(1)
    const turn = turns[0]!
    expect(turn.parentSpanId).toBe(method.spanId)
    expect(turn.attributes).toMatchObject({ "gen_ai.operation.name": "invoke_agent", "a2a.task.id": taskId, "gen_ai.agent.name": "Slow Worker" })
    const steps = after.filter((s) => s.name.startsWith("step ") && s.parentSpanId === turn.spanId)
    expect(steps.length).toBeGreaterThanOrEqual(1)
    // The first run's recorded steps are not run again: no step has two spans in the trace.
    const names = after.filter((s) => s.name.startsWith("step ")).map((s) => s.attributes["a2a_ledger.step.sequence"])
    expect(new Set(names).size).toBe(names.length)

    // Webhook calls: each carries the task's trace; each one's span is a client span in it. (A delivery
    // held by the killed process waits out its hold before the next takes it; calls the killed process
    // made may never have their spans exported.)
    const delivered = await hooks.waitFor((d) => d.some((c) => c.body.statusUpdate?.status.state === "TASK_STATE_COMPLETED"), 60_000)
    const callSpans = hooks.calls.map((c) => String(c.headers.traceparent).split("-"))
    for (const [, callTrace] of callSpans) expect(callTrace).toBe(traceId)
    const completed = delivered.find((c) => c.body.statusUpdate?.status.state === "TASK_STATE_COMPLETED")!
    const completedSpan = String(completed.headers.traceparent).split("-")[2]
    const posts = await eventually(
      async () => inTrace().filter((s) => s.name === "POST"),
      (spans) => spans.some((s) => s.spanId === completedSpan)
    )
    for (const post of posts) {
      expect(post.kind).toBe(CLIENT)
      expect(callSpans.some(([, , span]) => span === post.spanId)).toBe(true)
    }
  }, 120_000)

  it("without an OTLP endpoint nothing is traced: no traceparent on webhooks, none stored with the task", async () => {
    const hooks = await startReceiver()
    cleanup.push(hooks.close)
    const store = await testDb("untraced.db")
    cleanup.push(store.drop)
    const s = await start(["--db", store.db, "--agent", "echo", "--allow-webhook-host", "127.0.0.1"], {})
    expect(s.output()).not.toContain("tracing:")
    await rpc(
      s.url,
      "SendMessage",
      { message: userMessage("hello"), configuration: { taskPushNotificationConfig: { url: hooks.url } } },
      { traceparent: `00-${hex(16)}-${hex(8)}-01` }
    )
    const delivered = await hooks.waitFor((d) => d.length === 4)
    expect(delivered.every((c) => c.headers.traceparent === undefined)).toBe(true)
  })

  it("refuses an OTLP protocol it does not speak, naming the variable", async () => {
    await expect(
      start(["--db", (await testDb("grpc.db")).db], { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })
    ).rejects.toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported/)
  })
})
