import { Effect, Exit, HashMap, Layer, Logger, Scope } from "effect"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { Agent } from "../../src/agent/Agent"
import * as Embedded from "../../src/layers/Embedded"
import { send, taskIdOf, waitFor } from "../support/embeddedEngine"
import { settled } from "../../src/engine/TaskEngine"
import { type ServerProcess, spawnServer } from "../support/process"
import { call, eventually, userMessage } from "../support/rpc"
import { tempDir } from "../support/server"

/** Logs (issue 14): `--log-format json` writes one object per line; an engine's logs name its agent, instance and task. */
const processes: Array<ServerProcess> = []
afterEach(async () => {
  for (const p of processes.splice(0)) await p.kill9()
})

describe("logs", () => {
  it("--log-format json: every line is one JSON object, and the engine's lines name the agent and the instance", async () => {
    const db = path.join(tempDir(), "logs.db")
    const first = await spawnServer(["--db", db, "--agent", "slow-worker", "--step-delay-ms", "2000"])
    processes.push(first)
    const { task } = await call(first.url, "SendMessage", { message: userMessage("go"), configuration: { returnImmediately: true } })
    await eventually(
      () => call(first.url, "GetTask", { id: task.id }),
      (t) => t.status.state === "TASK_STATE_WORKING"
    )
    await first.kill9()
    const second = await spawnServer([
      "--db",
      db,
      "--agent",
      "slow-worker",
      "--step-delay-ms",
      "10",
      "--log-format",
      "json",
      "--instance-id",
      "pod-7"
    ])
    processes.push(second)
    const lines = second
      .output()
      .split("\n")
      .filter((l) => l !== "")
    // No second, pretty copy of any line: every line parses.
    const logs = lines.map((l) => JSON.parse(l) as { message: string; logLevel: string; annotations: Record<string, string> })
    expect(logs.find((l) => l.message.startsWith("Listening on"))).toMatchObject({ logLevel: "INFO" })
    const recovered = logs.find((l) => l.message.startsWith("recovered 1 unfinished task"))
    expect(recovered?.annotations).toMatchObject({ agent: "Slow Worker", instance: "pod-7" })
  })

  it("a turn's logs name its task, its agent and the instance", async () => {
    const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
    const collect = Logger.make(({ message, annotations }) => {
      lines.push({ message: Array.isArray(message) ? message[0] : message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
    })
    const dies: Agent = { name: "Crashy", description: "", version: "1", skills: [], run: () => Effect.die(new Error("boom")) }
    const scope = Effect.runSync(Scope.make())
    const layer = Embedded.layer({ agent: dies, db: path.join(tempDir(), "crash.db"), instanceId: "pod-9" }).pipe(
      Layer.provide(Logger.replace(Logger.defaultLogger, collect))
    )
    const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
    try {
      const run = <A, E>(effect: Effect.Effect<A, E, any>) => Effect.runPromise(Effect.provide(effect, context) as Effect.Effect<A, E>)
      const taskId = taskIdOf(await run(send("crash")))
      await run(waitFor(taskId, settled))
      const failed = lines.find((l) => typeof l.message === "string" && l.message.startsWith(`task ${taskId} failed`))
      expect(failed?.annotations).toMatchObject({ taskId, agent: "Crashy", instance: "pod-9" })
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
