import { randomBytes } from "node:crypto"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { describePg, freshSchema } from "../support/pg"
import { type ServerProcess, spawnServer } from "../support/process"
import { rpc, userMessage } from "../support/rpc"
import { tempDir } from "../support/server"
import { holdWriteLock, terminateBackends } from "../support/faults"

/**
 * Shutdown finishes within its grace period whatever the store does
 * (issue 10): before, a store fault left callers waiting forever on a dead
 * writer and SIGTERM never ended the process.
 */
const running: Array<ServerProcess> = []
const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const p of running.splice(0)) await p.kill9()
  for (const c of cleanups.splice(0)) await c()
})

/** SIGTERM, and how long until the process is gone. */
const stop = async (server: ServerProcess) => {
  const exited = new Promise<number | null>((resolve) => server.child.once("exit", (code) => resolve(code)))
  const t0 = Date.now()
  server.child.kill("SIGTERM")
  const code = await exited
  return { code, ms: Date.now() - t0 }
}

/** Requests in flight, each settled (answered or cut) at some point; none is awaited here. */
const load = (url: string, n: number) =>
  Array.from({ length: n }, (_, i) => rpc(url, "SendMessage", { message: userMessage(`in flight ${i}`) }).catch(() => undefined))

describe("shutdown under a store fault (SQLite)", () => {
  it("SIGTERM while the database file is locked and sends are waiting on it: the process exits within the grace period", async () => {
    const db = path.join(tempDir(), "locked-shutdown.db")
    const server = await spawnServer(["--db", db, "--agent", "echo", "--shutdown-grace-ms", "1000"])
    running.push(server)
    expect((await rpc(server.url, "SendMessage", { message: userMessage("before") })).result.task.status.state).toBe("TASK_STATE_COMPLETED")
    const lock = await holdWriteLock(db)
    cleanups.push(lock.release)
    const inFlight = load(server.url, 8)
    await new Promise((r) => setTimeout(r, 300))
    const { code, ms } = await stop(server)
    await Promise.all(inFlight)
    expect(ms).toBeLessThan(1_000 + 2_000 + 1_500)
    expect(code).toBe(0)
  }, 60_000)
})

describePg("shutdown under a store fault (PostgreSQL)", () => {
  it("SIGTERM right after the server's connections were terminated under load: the process exits within the grace period", async () => {
    const schema = await freshSchema()
    cleanups.push(schema.drop)
    const applicationName = `a2a-shutdown-${randomBytes(4).toString("hex")}`
    const server = await spawnServer(["--db", `${schema.url}&application_name=${applicationName}`, "--agent", "echo", "--shutdown-grace-ms", "1000"])
    running.push(server)
    const inFlight = load(server.url, 16)
    await new Promise((r) => setTimeout(r, 300))
    expect(await terminateBackends(applicationName)).toBeGreaterThan(0)
    const more = load(server.url, 16)
    const { code, ms } = await stop(server)
    await Promise.all([...inFlight, ...more])
    expect(ms).toBeLessThan(1_000 + 2_000 + 1_500)
    expect(code).toBe(0)
  }, 60_000)
})
