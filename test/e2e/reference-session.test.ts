import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { slowWorker } from "../../src/agent/builtins"
import { call, eventually, rpc, stream, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { shownVersions } from "../support/storeEvents"
import { verifyStore } from "../support/verifyStore"

/**
 * The reference example's curl session (FIELD.md), against the real server
 * over HTTP, with no extra headers: send with returnImmediately, subscribe,
 * get, and cancel.
 */
const steps = ["Step 1/4: Loading data...", "Step 2/4: Running analysis...", "Step 3/4: Generating insights...", "Step 4/4: Compiling report..."]
const textOf = (m: any) => m.parts.map((p: any) => p.text).join("")

let server: RunningServer
/** Steps long enough that a cancel surely lands mid-work, even on a loaded machine. */
let slowSteps: RunningServer
beforeAll(async () => {
  server = await startServer({ agent: slowWorker({ stepDelayMs: 150 }) })
  slowSteps = await startServer({ agent: slowWorker({ stepDelayMs: 1_500 }) })
})
afterAll(async () => {
  // Invariant 4: every stored task equals the fold of its events.
  expect(await verifyStore(server.db)).toBeGreaterThan(0)
  expect(await verifyStore(slowSteps.db)).toBeGreaterThan(0)
  await server.close()
  await slowSteps.close()
})

describe("the reference session", () => {
  it("SendMessage with returnImmediately answers at once with a SUBMITTED task", async () => {
    const result = await call(server.url, "SendMessage", {
      message: userMessage("Analyze Q3 sales"),
      configuration: { returnImmediately: true }
    })
    expect(result.task.status.state).toBe("TASK_STATE_SUBMITTED")
    expect(result.task.id).toMatch(/[0-9a-f-]{36}/)
    expect(result.task.contextId).toMatch(/[0-9a-f-]{36}/)
    expect(result.task.history).toHaveLength(1)
    expect(result.task).not.toHaveProperty("kind")
    expect(result.task.status.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  it("SubscribeToTask streams the Task, WORKING, the four steps, the report and COMPLETED, then closes; GetTask has it all", async () => {
    const sent = await call(server.url, "SendMessage", {
      message: userMessage("Analyze Q3 sales"),
      configuration: { returnImmediately: true }
    })
    const taskId = sent.task.id
    const sub = await stream(server.url, "SubscribeToTask", { id: taskId })
    expect(sub.status).toBe(200)
    expect(sub.contentType).toMatch(/^text\/event-stream/)
    const events = await sub.rest()

    // Every event is a JSON-RPC response carrying the request's id.
    for (const e of events) expect(e.data).toMatchObject({ jsonrpc: "2.0", result: expect.any(Object) })
    const results = events.map((e) => e.data.result)

    // The first event is the Task; ids are the task's versions after it, each once and in order (the
    // step journal's versions are skipped: clients never see it).
    expect(results[0]).toHaveProperty("task")
    const versions = events.map((e) => Number(e.id))
    expect(versions.slice(1)).toEqual(await shownVersions(server.db, taskId, versions[0]))

    // The snapshot may already include early steps; together with the updates, every step appears once, in order.
    const snapshot = results[0].task
    const seenSteps = [
      ...(snapshot.history ?? []).filter((m: any) => m.role === "ROLE_AGENT").map(textOf),
      ...results
        .slice(1)
        .filter((r) => r.statusUpdate?.status.message)
        .map((r) => textOf(r.statusUpdate.status.message))
    ]
    expect(seenSteps).toEqual([...steps, "Analysis complete. See the attached report."])
    const states = [
      snapshot.status.state,
      ...results
        .slice(1)
        .filter((r) => r.statusUpdate)
        .map((r) => r.statusUpdate.status.state)
    ]
    expect(states).toContain("TASK_STATE_WORKING")

    const artifact = results.find((r) => r.artifactUpdate)
    expect(artifact.artifactUpdate.artifact.artifactId).toBe("analysis-report")
    expect(textOf(artifact.artifactUpdate.artifact)).toContain("Analysis Report for: Analyze Q3 sales")

    const last = results[results.length - 1]
    expect(last.statusUpdate.status.state).toBe("TASK_STATE_COMPLETED")
    expect(last.statusUpdate).toMatchObject({ taskId, contextId: sent.task.contextId })

    const task = await call(server.url, "GetTask", { id: taskId })
    expect(task.status.state).toBe("TASK_STATE_COMPLETED")
    expect(task.artifacts.map((a: any) => a.artifactId)).toEqual(["analysis-report"])
    expect(task.history.map(textOf)).toEqual(["Analyze Q3 sales", ...steps, "Analysis complete. See the attached report."])
    expect(task.history.map((m: any) => m.role)).toEqual(["ROLE_USER", ...steps.map(() => "ROLE_AGENT"), "ROLE_AGENT"])
  })

  it("CancelTask on a running task answers CANCELED, and it stays CANCELED with nothing emitted after", async () => {
    const sent = await call(slowSteps.url, "SendMessage", {
      message: userMessage("cancel me"),
      configuration: { returnImmediately: true }
    })
    const taskId = sent.task.id
    await eventually(
      () => call(slowSteps.url, "GetTask", { id: taskId }),
      (t) => t.status.state === "TASK_STATE_WORKING"
    )
    const canceled = await call(slowSteps.url, "CancelTask", { id: taskId })
    expect(canceled.status.state).toBe("TASK_STATE_CANCELED")
    const historyAtCancel = canceled.history.length

    // Longer than a step: a worker still running would have emitted by now.
    await new Promise((r) => setTimeout(r, 2_000))
    const later = await call(slowSteps.url, "GetTask", { id: taskId })
    expect(later.status.state).toBe("TASK_STATE_CANCELED")
    expect(later.history).toHaveLength(historyAtCancel)
    expect(later.artifacts).toBeUndefined()

    // Cancel is idempotent: again returns the same CANCELED task.
    const again = await call(slowSteps.url, "CancelTask", { id: taskId })
    expect(again).toEqual(later)
  })

  it("a blocking SendMessage (the default) returns the finished task with its artifact", async () => {
    const r = await rpc(server.url, "SendMessage", { message: userMessage("blocking") })
    expect(r.result.task.status.state).toBe("TASK_STATE_COMPLETED")
    expect(r.result.task.artifacts[0].artifactId).toBe("analysis-report")
    expect(r.result.task.history).toHaveLength(6)
  })
})
