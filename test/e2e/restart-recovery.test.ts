import { afterAll, afterEach, describe, expect, it } from "vitest"
import { call, eventually, userMessage } from "../support/rpc"
import { type ServerProcess, spawnServer } from "../support/process"
import { testDb } from "../support/server"
import { storedEvents } from "../support/storeEvents"

/**
 * Kill -9 the server mid-task, start it again on the same store: the
 * task is picked up again and finishes (or fails, by policy). Nothing
 * acknowledged is lost.
 */
const running: Array<ServerProcess> = []
afterEach(async () => {
  for (const p of running.splice(0)) await p.kill9()
})
const stores: Array<{ drop: () => Promise<void> }> = []
afterAll(async () => {
  for (const s of stores.splice(0)) await s.drop()
})
/** A fresh store of the kind under test, dropped after the suite. */
const store = async (name: string) => {
  const s = await testDb(name)
  stores.push(s)
  return s
}
const start = async (args: ReadonlyArray<string>) => {
  const p = await spawnServer(args)
  running.push(p)
  return p
}

/** A slow task on a fresh store, killed with SIGKILL while WORKING. */
const killMidTask = async (name: string, text: string) => {
  const { db } = await store(`${name}.db`)
  const first = await start(["--db", db, "--step-delay-ms", "2000", "--lease-ms", "1000"])
  const { task } = await call(first.url, "SendMessage", { message: userMessage(text), configuration: { returnImmediately: true } })
  await eventually(
    () => call(first.url, "GetTask", { id: task.id }),
    (t) => t.status.state === "TASK_STATE_WORKING"
  )
  await first.kill9()
  return { db, task }
}

describe("restart recovery", () => {
  it("a task left WORKING by a killed process is re-run from its last input and completes", async () => {
    const { db, task } = await killMidTask("restart", "survive")

    const second = await start(["--db", db, "--step-delay-ms", "20", "--lease-ms", "1000"])
    const done = await eventually(
      () => call(second.url, "GetTask", { id: task.id }),
      (t) => t.status.state === "TASK_STATE_COMPLETED"
    )
    expect(done.artifacts[0].parts[0].text).toContain("Analysis Report for: survive")
    expect(done.history[0].parts[0].text).toBe("survive")
  }, 60_000)

  it('a task killed during step 3 finishes from step 3: each "Step n/4" once in its history, the report once', async () => {
    const { db } = await store("restart-steps.db")
    const first = await start(["--db", db, "--step-delay-ms", "1500", "--lease-ms", "1000"])
    const { task } = await call(first.url, "SendMessage", { message: userMessage("resume me"), configuration: { returnImmediately: true } })
    const said = (t: any): Array<string> => t.history.map((m: any) => m.parts[0].text)
    // Killed in stage 3's work, once "announce 3" is recorded. (A kill between a step's progress and its
    // record runs that step again: a step's effect runs at least once, docs/agents.md.)
    await eventually(
      () => storedEvents(db, task.id),
      (events) => events.some((e) => e.event.type === "StepCompleted" && e.event.name === "announce 3")
    )
    await first.kill9()

    // Another process (on PostgreSQL, once the dead one's lease has expired) runs the turn again.
    const second = await start(["--db", db, "--step-delay-ms", "20", "--lease-ms", "1000"])
    const done = await eventually(
      () => call(second.url, "GetTask", { id: task.id }),
      (t) => t.status.state === "TASK_STATE_COMPLETED"
    )
    const progress = said(done).filter((text) => text.startsWith("Step "))
    expect(progress).toEqual([
      "Step 1/4: Loading data...",
      "Step 2/4: Running analysis...",
      "Step 3/4: Generating insights...",
      "Step 4/4: Compiling report..."
    ])
    expect(done.artifacts.map((a: any) => a.artifactId)).toEqual(["analysis-report"])
    expect(done.artifacts[0].parts[0].text).toContain("Analysis Report for: resume me")
  }, 60_000)

  it("--recovery fail marks such a task FAILED with a clear reason", async () => {
    const { db, task } = await killMidTask("restart-fail", "doomed")

    const second = await start(["--db", db, "--recovery", "fail", "--lease-ms", "1000"])
    // On SQLite at start-up; on PostgreSQL once the dead process's lease has expired.
    const failed = await eventually(
      () => call(second.url, "GetTask", { id: task.id }),
      (t) => t.status.state !== "TASK_STATE_WORKING"
    )
    expect(failed.status.state).toBe("TASK_STATE_FAILED")
    expect(failed.status.message.parts[0].text).toMatch(/restarted|stopped/)
  }, 60_000)

  it("finished tasks survive a kill -9 unchanged", async () => {
    const { db } = await store("restart-done.db")
    const first = await start(["--db", db, "--agent", "echo"])
    const { task } = await call(first.url, "SendMessage", { message: userMessage("keep me") })
    await first.kill9()
    const second = await start(["--db", db, "--agent", "echo"])
    expect(await call(second.url, "GetTask", { id: task.id })).toEqual(task)
  }, 60_000)
})
