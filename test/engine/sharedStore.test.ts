import { Effect, Exit, Layer, Logger, LogLevel, Scope } from "effect"
import { expect, it } from "vitest"
import { Outcome } from "../../src/agent/Agent"
import { TaskWriter } from "../../src/engine/TaskWriter"
import { EventLog } from "../../src/eventlog/EventLog"
import * as Store from "../../src/eventlog/Store"
import * as Engine from "../../src/layers/Engine"
import { agentMessage, userMessage } from "../support/fixtures"
import { describePg, freshSchema } from "../support/pg"
import { verifyStore } from "../support/verifyStore"

/**
 * Two writers on one PostgreSQL store (what several instances will be): a
 * writer whose snapshot of a task is stale is refused by version, decides
 * again on the committed state, and succeeds; or is refused by the machine
 * when the task moved on.
 */
const idle = { name: "idle", description: "", version: "1", skills: [], run: () => Effect.never.pipe(Effect.as(Outcome.complete())) }

const writerOn = async (url: string, scope: Scope.CloseableScope) => {
  const layer = Engine.layer({ agent: idle, maxWorkers: 0 }).pipe(
    Layer.provideMerge(Store.layerPg(url, { exclusive: false, maxConnections: 2 })),
    Layer.provide(Logger.minimumLogLevel(LogLevel.None))
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return <A, E>(f: (writer: typeof TaskWriter.Service) => Effect.Effect<A, E, EventLog>) =>
    Effect.runPromise(Effect.flatMap(TaskWriter, f).pipe(Effect.provide(context)))
}

await describePg("writers sharing a PostgreSQL store", () => {
  it("a writer with a stale snapshot decides again on the committed state; versions stay gap-free", async () => {
    const schema = await freshSchema()
    const scope = Effect.runSync(Scope.make())
    try {
      const a = await writerOn(schema.url, scope)
      const b = await writerOn(schema.url, scope)
      await a((w) => w.commit("t1", { type: "Submit", taskId: "t1", contextId: "c", tenant: "", owner: "", message: userMessage("go") }))
      // b moves the task on; a still has it cached as just submitted.
      await b((w) => w.commit("t1", { type: "Start", instanceId: "b" }))
      const progressed = await a((w) => w.commit("t1", { type: "Progress", message: agentMessage("from a") }))
      expect(progressed.snapshot.version).toBe(3)
      expect(progressed.events.map((e) => e.version)).toEqual([3])
      // a's cache is stale again; the machine now refuses what the committed state no longer allows.
      await b((w) => w.commit("t1", { type: "Cancel" }))
      const refused = await a((w) => Effect.flip(w.commit("t1", { type: "Progress", message: agentMessage("too late") })))
      expect(refused).toMatchObject({ _tag: "CommandRefused" })
      const log = await a(() => Effect.flatMap(EventLog, (l) => l.read("t1")))
      expect(log.map((e) => [e.version, e.event.type])).toEqual([
        [1, "TaskSubmitted"],
        [2, "TaskStarted"],
        [3, "StatusMessageAdded"],
        [4, "TaskCanceled"]
      ])
      expect(await verifyStore(schema.url)).toBe(1)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await schema.drop()
    }
  })
})
