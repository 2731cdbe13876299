import { Effect } from "effect"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { conformance, echo } from "../../src/agent/builtins"
import * as Store from "../../src/eventlog/Store"
import { PushStore } from "../../src/push/PushStore"
import { runCli } from "../support/process"
import { call, eventually, userMessage } from "../support/rpc"
import { type RunningServer, startServer, tempDir, testDb } from "../support/server"
import { verifyStore } from "../support/verifyStore"
import { type Received, startReceiver, type WebhookReceiver } from "../support/webhookReceiver"

/**
 * Push notification delivery (A2A-v1.md §5) from the durable outbox to real
 * local webhooks: what is sent, retries, dead letters, restarts, and that a
 * slow webhook never holds a task back.
 */
const open: Array<{ close: () => Promise<void> }> = []
const track = <T extends { close: () => Promise<void> }>(t: T) => {
  open.push(t)
  return t
}
afterEach(async () => {
  for (const t of open.splice(0).reverse()) await t.close()
})

const fast = { allowHosts: ["127.0.0.1"], retryBaseMs: 20, retryMaxMs: 200, pollMs: 100 }

const server = (options: Partial<Parameters<typeof startServer>[0]> = {}) =>
  startServer({ agent: echo, ...options, push: { ...fast, ...options.push } }).then(track)

const hook = (r: WebhookReceiver, extra: Record<string, unknown> = {}) => ({ url: r.url, ...extra })

/** SendMessage with an inline push config; answers when the task settles. */
const sendWithHook = (s: RunningServer, config: Record<string, unknown>, messageId = `m-${Math.random()}`) =>
  call(s.url, "SendMessage", { message: userMessage("hello", { messageId }), configuration: { taskPushNotificationConfig: config } })

const withStore = <A>(db: string, f: (store: typeof PushStore.Service) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(PushStore, f).pipe(Effect.provide(Store.layer(db, { exclusive: false })))))

const states = (calls: ReadonlyArray<Received>) =>
  calls.map((c) => c.body.statusUpdate?.status.state ?? (c.body.artifactUpdate !== undefined ? "artifact" : "?"))

const echoSequence = ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"]

describe("push delivery", () => {
  it("POSTs every status change and artifact as a StreamResponse, in order, with the configured credentials and token", async () => {
    const receiver = track(await startReceiver())
    const s = await server()
    const result = await sendWithHook(s, hook(receiver, { token: "tok-1", authentication: { scheme: "Bearer", credentials: "secret-2" } }))
    const task = result.task
    const got = await receiver.waitFor((d) => d.length === 4)
    expect(states(got)).toEqual(echoSequence)
    for (const c of got) {
      expect(c.headers["content-type"]).toBe("application/a2a+json")
      expect(c.headers.authorization).toBe("Bearer secret-2")
      expect(c.headers["x-a2a-notification-token"]).toBe("tok-1")
    }
    // Each body is exactly what a SubscribeToTask stream shows for that fact.
    expect(got[0]!.body).toEqual({
      statusUpdate: { taskId: task.id, contextId: task.contextId, status: { state: "TASK_STATE_SUBMITTED", timestamp: expect.any(String) } }
    })
    expect(got[2]!.body.artifactUpdate).toMatchObject({
      taskId: task.id,
      contextId: task.contextId,
      artifact: { artifactId: "echo", parts: [{ text: "hello" }] }
    })
    expect(got[3]!.body.statusUpdate.status.state).toBe(task.status.state)
    // Delivered rows leave the outbox (the last one just after its call was answered).
    await eventually(
      () => withStore(s.db, (p) => p.due(Date.now() + 60_000, 10)),
      (due) => due.length === 0
    )
    expect(await verifyStore(s.db)).toBe(1)
  })

  it("retries failed calls with backoff and still delivers in version order", async () => {
    const receiver = track(await startReceiver())
    receiver.respond = (_, i) => (i < 3 ? 500 : 200)
    const s = await server()
    await sendWithHook(s, hook(receiver))
    const got = await receiver.waitFor((d) => d.length === 4)
    expect(states(got)).toEqual(echoSequence)
    // The first delivery failed three times before anything else was sent: order per webhook holds.
    expect(states(receiver.calls.slice(0, 4))).toEqual(Array(4).fill("TASK_STATE_SUBMITTED"))
    expect(receiver.calls.length).toBe(7)
  })

  it("a webhook that hangs holds back neither the task nor another webhook", async () => {
    const slow = track(await startReceiver())
    slow.respond = () => "hang"
    const healthy = track(await startReceiver())
    const s = await server()
    const first = await sendWithHook(s, hook(slow))
    expect(first.task.status.state).toBe("TASK_STATE_COMPLETED")
    const second = await sendWithHook(s, hook(healthy))
    expect(second.task.status.state).toBe("TASK_STATE_COMPLETED")
    await healthy.waitFor((d) => d.length === 4)
    // Both tasks finished and the other webhook got everything, while the slow one still holds its first call.
    expect(slow.held()).toBe(1)
    expect(slow.calls.length).toBe(1)
    slow.respond = () => 200
    slow.release()
    expect(states(await slow.waitFor((d) => d.length === 4))).toEqual(echoSequence)
  })

  it("deliveries survive a restart: what was queued or in flight goes out when the server is back", async () => {
    const receiver = track(await startReceiver())
    receiver.respond = () => "hang"
    const { db, drop } = await testDb("push.db")
    open.push({ close: drop })
    const first = await startServer({ agent: echo, db, push: fast })
    await sendWithHook(first, hook(receiver))
    await new Promise<void>((resolve) => {
      const wait = () => (receiver.held() === 1 ? resolve() : setTimeout(wait, 10))
      wait()
    })
    await first.close()
    expect(await withStore(db, (p) => Effect.map(p.due(Date.now(), 10), (d) => d.length))).toBe(1)
    receiver.respond = () => 200
    await server({ db })
    const got = await receiver.waitFor((d) => d.length === 4)
    expect(states(got)).toEqual(echoSequence)
  })

  it("after the last attempt a delivery is a dead letter; the CLI lists it and redelivers it", async () => {
    const receiver = track(await startReceiver())
    receiver.respond = () => 503
    const s = await server({ push: { maxAttempts: 2 } })
    const { task } = await sendWithHook(s, hook(receiver))
    const dead = async () => withStore(s.db, (p) => p.deadLetters(100))
    for (let i = 0; (await dead()).length < 4; i++) {
      if (i > 500) throw new Error("deliveries did not become dead letters")
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(receiver.calls.length).toBe(8)
    const listed = await runCli(["dead-letters", "list", "--db", s.db, "--json"])
    expect(listed.code).toBe(0)
    const rows = JSON.parse(listed.stdout) as Array<any>
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4])
    expect(rows[0]).toMatchObject({ taskId: task.id, attempts: 2, status: "dead", lastError: "HTTP 503", url: receiver.url })
    const table = await runCli(["dead-letters", "list", "--db", s.db])
    expect(table.stdout).toContain(`task ${task.id}`)

    receiver.respond = () => 200
    const again = await runCli(["dead-letters", "redeliver", "--db", s.db, String(rows[0].id), String(rows[1].id)])
    expect(again.stdout).toContain("2 deliveries queued again")
    expect(states(await receiver.waitFor((d) => d.length === 2))).toEqual(echoSequence.slice(0, 2))
    const rest = await runCli(["dead-letters", "redeliver", "--db", s.db, "--all"])
    expect(rest.stdout).toContain("2 deliveries queued again")
    expect(states(await receiver.waitFor((d) => d.length === 4))).toEqual(echoSequence)
    expect(await dead()).toEqual([])
  }, 90_000)

  it("the CLI refuses a redeliver without ids or --all, and a store that does not exist", async () => {
    const db = path.join(tempDir(), "none.db")
    const none = await runCli(["dead-letters", "list", "--db", db])
    expect(none.code).toBe(1)
    expect(none.stderr).toContain(`no SQLite file at ${db}; check the path`)
    const neither = await runCli(["dead-letters", "redeliver", "--db", db])
    expect(neither.code).toBe(1)
    expect(neither.stderr).toContain("--all")
  })

  it("a deleted config gets nothing more: its queued deliveries are dropped and later events skip it", async () => {
    const deleted = track(await startReceiver())
    deleted.respond = () => "hang"
    const kept = track(await startReceiver())
    const s = await server({ agent: conformance })
    const first = await call(s.url, "SendMessage", { message: userMessage("start", { messageId: "tck-input-required-push" }) })
    const taskId = first.task.id
    expect(first.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    await call(s.url, "CreateTaskPushNotificationConfig", { taskId, id: "gone", url: deleted.url })
    await call(s.url, "CreateTaskPushNotificationConfig", { taskId, id: "kept", url: kept.url })
    // Configs see the events after they were created: the follow-up's.
    await call(s.url, "SendMessage", { message: userMessage("more", { messageId: "tck-complete-task-push", taskId }) })
    await new Promise<void>((resolve) => {
      const wait = () => (deleted.held() === 1 ? resolve() : setTimeout(wait, 10))
      wait()
    })
    await call(s.url, "DeleteTaskPushNotificationConfig", { taskId, id: "gone" })
    deleted.release()
    const got = await kept.waitFor((d) => d.some((c) => c.body.statusUpdate?.status.state === "TASK_STATE_COMPLETED"))
    expect(states(got)).toEqual(["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED"])
    expect(deleted.calls.length).toBe(1)
    // Nothing is left queued (the kept webhook's last row goes just after its call was answered).
    await eventually(
      () => withStore(s.db, (p) => Effect.map(p.due(Date.now() + 3_600_000, 100), (d) => d.length)),
      (n) => n === 0
    )
  })
})
