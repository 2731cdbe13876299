import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { afterEach, expect, it } from "vitest"
import { isJournalEvent } from "../../src/domain/TaskEvent"
import type { LoggedEvent } from "../../src/eventlog/EventLog"
import * as Store from "../../src/eventlog/Store"
import { describePg, freshSchema } from "../support/pg"
import { type ServerProcess, spawnServer } from "../support/process"
import { call, eventually, stream, userMessage } from "../support/rpc"
import { overlaps } from "../support/overlaps"
import { allEvents } from "../support/storeEvents"
import { verifyStore } from "../support/verifyStore"

/**
 * Several servers on one PostgreSQL database (issue 4): any instance takes any
 * call, a task's worker runs on exactly one instance at a time, and the work
 * of an instance killed with SIGKILL moves to the survivors.
 */
const running: Array<ServerProcess> = []
const drops: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const p of running.splice(0)) await p.kill9()
  for (const d of drops.splice(0)) await d()
})

const cluster = async (n: number, args: ReadonlyArray<string>) => {
  const schema = await freshSchema()
  drops.push(schema.drop)
  const servers = await Promise.all(Array.from({ length: n }, () => spawnServer(["--db", schema.url, ...args])))
  running.push(...servers)
  return { db: schema.url, servers }
}

await describePg("many instances on one PostgreSQL database", () => {
  it("the overlap check catches a worker event written by an instance that does not hold the turn", () => {
    const at = "2026-01-01T00:00:00.000Z"
    const e = (version: number, instanceId: string, event: LoggedEvent["event"]): LoggedEvent => ({
      position: version,
      taskId: "t",
      version,
      event,
      schemaVersion: 1,
      metadata: { instanceId },
      createdAt: at
    })
    const message = { messageId: "m", role: "ROLE_AGENT" as const, parts: [{ text: "x" }] }
    const good = [
      e(1, "a", { type: "TaskStarted", at, instanceId: "a", leaseEpoch: 1 }),
      e(2, "a", { type: "StatusMessageAdded", at, message }),
      e(3, "b", { type: "TaskRequeued", at, reason: "r" }),
      e(4, "b", { type: "TaskStarted", at, instanceId: "b", leaseEpoch: 2 }),
      e(5, "b", { type: "TaskCompleted", at })
    ]
    expect(overlaps(good)).toEqual([])
    const late = [...good.slice(0, 4), e(5, "a", { type: "StatusMessageAdded", at, message }), e(6, "b", { type: "TaskCompleted", at })]
    expect(overlaps(late)).toHaveLength(1)
    const staleEpoch = [good[0]!, e(2, "b", { type: "TaskStarted", at, instanceId: "b", leaseEpoch: 1 })]
    expect(overlaps(staleEpoch)).toHaveLength(1)
  })

  it("kill -9 one of three instances while 300 tasks run: every task finishes on the survivors, no two workers overlap, the read model is the fold of the log", async () => {
    const { db, servers } = await cluster(3, ["--agent", "slow-worker", "--step-delay-ms", "40", "--max-workers", "8", "--lease-ms", "2000"])
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess]
    const ids: Array<string> = []
    const submit = async (via: ServerProcess, i: number) => {
      const r = await call(via.url, "SendMessage", { message: userMessage(`job ${i}`), configuration: { returnImmediately: true } })
      ids.push(r.task.id)
    }
    // The first 120 through all three, in waves of 30.
    for (let wave = 0; wave < 4; wave++) {
      await Promise.all(Array.from({ length: 30 }, (_, k) => submit(servers[k % 3]!, wave * 30 + k)))
    }
    // C dies mid-run, with turns in flight and work queued.
    await eventually(
      () => call(c.url, "ListTasks", { status: "TASK_STATE_WORKING" }),
      (p) => p.totalSize > 0
    )
    await c.kill9()
    for (let wave = 4; wave < 10; wave++) {
      await Promise.all(Array.from({ length: 30 }, (_, k) => submit(k % 2 === 0 ? a : b, wave * 30 + k)))
    }
    // A blocking send on one survivor answers even when the other runs the task.
    const blocking = await Promise.all([a, b, a, b].map((s) => call(s.url, "SendMessage", { message: userMessage("wait for me") })))
    expect(blocking.map((r) => r.task.status.state)).toEqual(Array(4).fill("TASK_STATE_COMPLETED"))

    const unfinished = async () => {
      let n = 0
      for (const status of ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"]) n += (await call(a.url, "ListTasks", { status })).totalSize
      return n
    }
    await eventually(unfinished, (n) => n === 0, 60_000)
    const finished = await call(b.url, "ListTasks", { status: "TASK_STATE_COMPLETED", pageSize: 1 })
    expect(finished.totalSize).toBe(304)
    for (const id of ids.slice(0, 5)) expect((await call(a.url, "GetTask", { id })).status.state).toBe("TASK_STATE_COMPLETED")

    const events = await allEvents(db)
    const requeued = events.filter((e) => e.event.type === "TaskRequeued").length
    console.log(`many instances: 304 tasks, ${events.length} events, ${requeued} turn(s) taken over from the killed instance`)
    expect(overlaps(events)).toEqual([])
    expect(await verifyStore(db)).toBe(304)
  }, 120_000)

  it("CancelTask on one instance stops the worker on another within a second", async () => {
    const { db, servers } = await cluster(1, ["--agent", "slow-worker", "--step-delay-ms", "5000", "--lease-ms", "3000"])
    const runner = servers[0]!
    const { task } = await call(runner.url, "SendMessage", { message: userMessage("long"), configuration: { returnImmediately: true } })
    await eventually(
      () => call(runner.url, "GetTask", { id: task.id }),
      (t) => t.status.state === "TASK_STATE_WORKING"
    )
    // Only now a second instance: the turn certainly runs on the first.
    const other = await spawnServer(["--db", db, "--agent", "slow-worker", "--lease-ms", "3000"])
    running.push(other)
    const canceled = await call(other.url, "CancelTask", { id: task.id })
    expect(canceled.status.state).toBe("TASK_STATE_CANCELED")
    const t0 = Date.now()
    // The runner's turn ends and gives its lease back (expires_at = 0) well before the next 5 s step.
    const lease = () =>
      Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql<{ expires_at: string | number }>`SELECT expires_at FROM a2a_leases WHERE task_id = ${task.id}`
          ).pipe(Effect.provide(Store.layer(db)))
        )
      )
    await eventually(lease, (rows) => Number(rows[0]?.expires_at) === 0, 5_000)
    expect(Date.now() - t0).toBeLessThan(1_000)
    // Nothing of the stopped turn lands after the cancel.
    const events = (await allEvents(db)).filter((e) => e.taskId === task.id).map((e) => e.event.type)
    expect(events.at(-1)).toBe("TaskCanceled")
  }, 60_000)

  it("SubscribeToTask and SendStreamingMessage on one instance stream what a worker on another produces: in order, no gap, no duplicate", async () => {
    const schema = await freshSchema()
    drops.push(schema.drop)
    const db = schema.url
    const args = ["--db", db, "--agent", "slow-worker", "--step-delay-ms", "1500", "--max-workers", "1"]
    const [first, second] = await Promise.all([spawnServer([...args, "--instance-id", "first"]), spawnServer([...args, "--instance-id", "second"])])
    running.push(first!, second!)
    const { task } = await call(first!.url, "SendMessage", { message: userMessage("watched"), configuration: { returnImmediately: true } })
    await eventually(
      () => call(first!.url, "GetTask", { id: task.id }),
      (t) => t.status.state === "TASK_STATE_WORKING"
    )
    // Subscribe where the worker is not.
    const started = (await allEvents(db)).find((e) => e.taskId === task.id && e.event.type === "TaskStarted")!
    const runner = (started.event as { instanceId: string }).instanceId
    const other = runner === "first" ? second! : first!
    const versions = (events: ReadonlyArray<{ id?: string }>) => events.map((e) => Number(e.id))
    // Every version the log holds after the stream's first, but the step journal's (clients never see it), once, in order.
    const shownAfter = async (taskId: string, first: number) =>
      (await allEvents(db)).filter((e) => e.taskId === taskId && e.version > first && !isJournalEvent(e.event)).map((e) => e.version)
    const whole = async (taskId: string, vs: ReadonlyArray<number>) => expect(vs.slice(1)).toEqual(await shownAfter(taskId, vs[0]!))

    const sub = await stream(other.url, "SubscribeToTask", { id: task.id })
    const subEvents = await sub.rest()
    expect(subEvents[0]!.data.result.task.id).toBe(task.id)
    await whole(task.id, versions(subEvents))
    expect(subEvents.at(-1)!.data.result.statusUpdate.status.state).toBe("TASK_STATE_COMPLETED")
    expect(subEvents.some((e) => e.data.result.artifactUpdate !== undefined)).toBe(true)

    // A new task sent as a stream to the second instance: whichever instance runs it, the stream is whole.
    const s2 = await stream(other.url, "SendStreamingMessage", { message: userMessage("streamed") })
    const s2Events = await s2.rest()
    expect(versions(s2Events)[0]).toBe(1)
    await whole(s2Events[0]!.data.result.task.id, versions(s2Events))
    expect(s2Events.map((e) => Object.keys(e.data.result)[0])).toEqual([
      "task",
      "statusUpdate",
      "statusUpdate",
      "statusUpdate",
      "statusUpdate",
      "statusUpdate",
      "artifactUpdate",
      "statusUpdate"
    ])
  }, 60_000)

  it("two instances take one messageId once, and concurrent cancels on both leave one TaskCanceled", async () => {
    const { db, servers } = await cluster(2, ["--agent", "slow-worker", "--step-delay-ms", "2000", "--lease-ms", "3000"])
    const [a, b] = servers as [ServerProcess, ServerProcess]
    const message = userMessage("once", { messageId: "cluster-idem" })
    const sends = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call((i % 2 === 0 ? a : b).url, "SendMessage", { message, configuration: { returnImmediately: true } }))
    )
    const ids = new Set(sends.map((r) => r.task.id))
    expect(ids.size).toBe(1)
    const [id] = [...ids] as [string]
    await eventually(
      () => call(a.url, "GetTask", { id }),
      (t) => t.status.state === "TASK_STATE_WORKING"
    )
    const cancels = await Promise.all([a, b, a, b].map((s) => call(s.url, "CancelTask", { id })))
    expect(cancels.map((t) => t.status.state)).toEqual(Array(4).fill("TASK_STATE_CANCELED"))
    const types = (await allEvents(db)).filter((e) => e.taskId === id).map((e) => e.event.type)
    expect(types.filter((t) => t === "TaskSubmitted")).toHaveLength(1)
    expect(types.filter((t) => t === "TaskCanceled")).toHaveLength(1)
    expect(types.at(-1)).toBe("TaskCanceled")
  }, 60_000)
})
