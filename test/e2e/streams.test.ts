import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance, slowWorker } from "../../src/agent/builtins"
import { call, eventually, rpc, stream, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { shownVersions } from "../support/storeEvents"
import { verifyStore } from "../support/verifyStore"

let slow: RunningServer
let tck: RunningServer
beforeAll(async () => {
  slow = await startServer({ agent: slowWorker({ stepDelayMs: 100 }) })
  tck = await startServer({ agent: conformance, keepAliveMs: 100 })
})
afterAll(async () => {
  // Invariant 4: every stored task equals the fold of its events.
  expect(await verifyStore(slow.db)).toBeGreaterThan(0)
  expect(await verifyStore(tck.db)).toBeGreaterThan(0)
  await slow.close()
  await tck.close()
})

const results = (events: ReadonlyArray<any>) => events.map((e) => e.data.result)
const stateOf = (r: any) => r.task?.status.state ?? r.statusUpdate?.status.state

describe("SendStreamingMessage", () => {
  it("streams the Task first, then updates, and closes at COMPLETED", async () => {
    const s = await stream(tck.url, "SendStreamingMessage", { message: userMessage("go", { messageId: "tck-stream-1" }) })
    const rs = results(await s.rest())
    // The Task as submitted, then every fact after it, however fast the agent was.
    expect(rs.map((r) => stateOf(r) ?? "artifact")).toEqual(["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"])
    expect(rs[0]).toHaveProperty("task")
    expect(rs[2].artifactUpdate.artifact.parts[0].text).toBe("Streamed content")
  })

  it("closes at INPUT_REQUIRED; the answer on a new stream continues the same task", async () => {
    const first = results(
      await (await stream(tck.url, "SendStreamingMessage", { message: userMessage("q", { messageId: "tck-input-required-s" }) })).rest()
    )
    expect(stateOf(first[first.length - 1])).toBe("TASK_STATE_INPUT_REQUIRED")
    const taskId = first[0].task.id
    const second = results(
      await (await stream(tck.url, "SendStreamingMessage", { message: userMessage("a", { messageId: "tck-complete-task-s", taskId }) })).rest()
    )
    expect(second[0].task.id).toBe(taskId)
    expect(stateOf(second[second.length - 1])).toBe("TASK_STATE_COMPLETED")
  })

  it("a Message answer is exactly one event, then the stream closes", async () => {
    const events = await (
      await stream(tck.url, "SendStreamingMessage", { message: userMessage("hi", { messageId: "tck-message-response-1" }) })
    ).rest()
    expect(events).toHaveLength(1)
    expect(events[0]!.data.result.message.parts[0].text).toBe("Direct message response")
    expect(events[0]!.data.result.message.role).toBe("ROLE_AGENT")
  })

  it("a client disconnect does not cancel the task", async () => {
    const s = await stream(slow.url, "SendStreamingMessage", { message: userMessage("keep going") })
    const first = await s.next()
    const taskId = first!.data.result.task.id
    s.abort()
    const done = await eventually(
      () => call(slow.url, "GetTask", { id: taskId }),
      (t) => t.status.state === "TASK_STATE_COMPLETED"
    )
    expect(done.artifacts[0].artifactId).toBe("analysis-report")
  })
})

describe("SubscribeToTask", () => {
  it("two concurrent subscribers receive identical streams", async () => {
    const { task } = await call(tck.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-two" }) })
    const a = await stream(tck.url, "SubscribeToTask", { id: task.id })
    const b = await stream(tck.url, "SubscribeToTask", { id: task.id })
    const firstA = await a.next()
    const firstB = await b.next()
    expect({ id: firstA!.id, result: firstA!.data.result }).toEqual({ id: firstB!.id, result: firstB!.data.result })
    await call(tck.url, "SendMessage", { message: userMessage("a", { messageId: "tck-artifact-text-two", taskId: task.id }) })
    const restA = await a.rest()
    const restB = await b.rest()
    // Same events, same ids, same order (only the JSON-RPC id differs per request).
    const strip = (es: ReadonlyArray<any>) => es.map((e) => ({ id: e.id, result: e.data.result }))
    expect(strip(restA)).toEqual(strip(restB))
    expect(restA.map((e) => stateOf(e.data.result) ?? "artifact")).toEqual([
      "TASK_STATE_SUBMITTED",
      "TASK_STATE_WORKING",
      "artifact",
      "TASK_STATE_COMPLETED"
    ])
  })

  it("Last-Event-ID resumes exactly after that version: no gap, no duplicate", async () => {
    const { task } = await call(slow.url, "SendMessage", { message: userMessage("resume"), configuration: { returnImmediately: true } })
    const s = await stream(slow.url, "SubscribeToTask", { id: task.id })
    const before = [await s.next(), await s.next()]
    s.abort()
    const lastId = before[1]!.id!
    const resumed = await stream(slow.url, "SubscribeToTask", { id: task.id }, { "Last-Event-ID": lastId })
    const after = await resumed.rest()
    // The task's versions a client is shown (the step journal's are skipped), once each, in order.
    const ids = [...before, ...after].map((e) => Number(e!.id))
    expect(ids.slice(1)).toEqual(await shownVersions(slow.db, task.id, ids[0]))
    // The resumed stream replays facts, not a new snapshot.
    expect(after[0]!.data.result).not.toHaveProperty("task")
    expect(stateOf(after[after.length - 1]!.data.result)).toBe("TASK_STATE_COMPLETED")

    // Resuming a finished task replays what was missed and closes; from its last version there is nothing left.
    const final = Number(after[after.length - 1]!.id)
    const [, ...lastTwo] = (await shownVersions(slow.db, task.id)).slice(-3)
    const replay = await (await stream(slow.url, "SubscribeToTask", { id: task.id }, { "Last-Event-ID": String(lastTwo[0]! - 1) })).rest()
    expect(replay.map((e) => Number(e.id))).toEqual(lastTwo)
    expect(lastTwo[1]).toBe(final)
    const nothing = await stream(slow.url, "SubscribeToTask", { id: task.id }, { "Last-Event-ID": String(final) })
    expect(nothing.json?.error?.code).toBe(-32004)
  })

  it("a malformed Last-Event-ID is refused as invalid params", async () => {
    const { task } = await call(tck.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-lei" }) })
    const s = await stream(tck.url, "SubscribeToTask", { id: task.id }, { "Last-Event-ID": "banana" })
    expect(s.json?.error?.code).toBe(-32602)
    expect(s.json?.error?.message).toContain("Last-Event-ID")
  })

  it("sends a keep-alive comment while idle", async () => {
    const { task } = await call(tck.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-ka" }) })
    const s = await stream(tck.url, "SubscribeToTask", { id: task.id })
    await s.next()
    await new Promise((r) => setTimeout(r, 1_000))
    await call(tck.url, "CancelTask", { id: task.id })
    const rest = await s.rest()
    expect(stateOf(rest[rest.length - 1]!.data.result)).toBe("TASK_STATE_CANCELED")
    expect(s.comments.filter((c) => c === ": keep-alive").length).toBeGreaterThanOrEqual(1)
  })

  it("an INPUT_REQUIRED task can be subscribed to, and the stream stays open through it", async () => {
    const { task } = await call(tck.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-open" }) })
    const r = await rpc(tck.url, "GetTask", { id: task.id })
    expect(r.result.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    const s = await stream(tck.url, "SubscribeToTask", { id: task.id })
    expect(stateOf((await s.next())!.data.result)).toBe("TASK_STATE_INPUT_REQUIRED")
    await call(tck.url, "CancelTask", { id: task.id })
    expect(stateOf((await s.rest()).at(-1)!.data.result)).toBe("TASK_STATE_CANCELED")
  })
})
