import { randomBytes } from "node:crypto"
import { afterEach, expect, it } from "vitest"
import { echo } from "../../src/agent/builtins"
import { describePg, freshSchema } from "../support/pg"
import { answered, sharedMaintenanceLocks, terminateBackends } from "../support/faults"
import { eventually, rpc, type RpcResponse, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/**
 * Store faults on PostgreSQL (issue 10): the server's connections are
 * terminated under load, as a restart or a failover does. Every request is
 * answered, acknowledged tasks stay intact, and service comes back by itself.
 */
const running: Array<RunningServer> = []
const drops: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.close()
  for (const d of drops.splice(0)) await d()
})

describePg("PostgreSQL store faults", () => {
  it("connections terminated twice under load: every send is answered, acknowledged tasks are intact, and service comes back", async () => {
    const schema = await freshSchema()
    drops.push(schema.drop)
    const applicationName = `a2a-fault-${randomBytes(4).toString("hex")}`
    const db = `${schema.url}&application_name=${applicationName}`
    const server = await startServer({ agent: echo, db })
    running.push(server)

    const acknowledged: Array<string> = []
    const failures: Array<RpcResponse> = []
    let stop = false
    let sent = 0
    const client = async () => {
      while (!stop) {
        const r = await answered("SendMessage", rpc(server.url, "SendMessage", { message: userMessage(`load ${sent++}`) }), 20_000)
        if (r.error !== undefined) failures.push(r)
        else acknowledged.push(r.result.task.id)
      }
    }
    const clients = Array.from({ length: 16 }, client)
    await new Promise((r) => setTimeout(r, 700))
    const first = await terminateBackends(applicationName)
    await new Promise((r) => setTimeout(r, 1_500))
    const second = await terminateBackends(applicationName)
    await new Promise((r) => setTimeout(r, 1_500))
    stop = true
    await Promise.all(clients)

    expect(first).toBeGreaterThan(0)
    expect(second).toBeGreaterThan(0)
    for (const f of failures) {
      expect(f.error!.code).toBe(-32603)
      expect(f.error!.message, JSON.stringify(f.error)).toMatch(/task store is unavailable \(PostgreSQL: /)
    }
    // Service came back: a send after the faults works.
    const after = await answered("SendMessage after", rpc(server.url, "SendMessage", { message: userMessage("after") }), 20_000)
    expect(after.result.task.status.state).toBe("TASK_STATE_COMPLETED")
    acknowledged.push(after.result.task.id)
    // Every acknowledged task is there, and none is left unfinished.
    for (const id of acknowledged) {
      await eventually(
        () => rpc(server.url, "GetTask", { id }),
        (r) => r.result !== undefined && ["TASK_STATE_COMPLETED", "TASK_STATE_FAILED"].includes(r.result.status.state),
        20_000
      )
    }
    expect(await verifyStore(schema.url)).toBeGreaterThanOrEqual(acknowledged.length)
    // The server's share of the maintenance lock died with its connection, and was taken again.
    await eventually(
      () => sharedMaintenanceLocks(applicationName),
      (n) => n === 1,
      15_000
    )
    console.log(`pg faults: ${sent} sends, ${acknowledged.length} acknowledged, ${failures.length} refused, ${first}+${second} backends terminated`)
  }, 120_000)
})
