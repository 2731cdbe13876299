import { afterEach, describe, expect, it, onTestFinished } from "vitest"
import { call, eventually, stream, userMessage } from "../support/rpc"
import { type ServerProcess, spawnServer } from "../support/process"
import { testDb } from "../support/server"

const running: Array<ServerProcess> = []
afterEach(async () => {
  for (const p of running.splice(0)) await p.kill9()
})

describe("graceful shutdown", () => {
  it("SIGTERM with an open SSE stream ends the stream and exits promptly; the task resumes on the next start", async () => {
    const { db, drop } = await testDb("shutdown.db")
    onTestFinished(drop)
    const first = await spawnServer(["--db", db, "--step-delay-ms", "1000"])
    running.push(first)
    const { task } = await call(first.url, "SendMessage", { message: userMessage("interrupted"), configuration: { returnImmediately: true } })
    const sub = await stream(first.url, "SubscribeToTask", { id: task.id })
    await sub.next()

    const exited = new Promise<number | null>((resolve) => first.child.once("exit", (code) => resolve(code)))
    const t0 = Date.now()
    first.child.kill("SIGTERM")
    await sub.rest() // the server closes the stream instead of holding shutdown
    const code = await exited
    expect(Date.now() - t0).toBeLessThan(5_000)
    expect(code).toBe(0)

    const second = await spawnServer(["--db", db, "--step-delay-ms", "10"])
    running.push(second)
    const done = await eventually(
      () => call(second.url, "GetTask", { id: task.id }),
      (t) => t.status.state === "TASK_STATE_COMPLETED"
    )
    expect(done.artifacts[0].artifactId).toBe("analysis-report")
  }, 60_000)
})
