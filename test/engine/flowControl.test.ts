import { describe, expect, it } from "vitest"
import { Deferred, Effect, Exit, FiberId } from "effect"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { textOf } from "../../src/domain/Message"
import { type Caller, settled } from "../../src/engine/TaskEngine"
import { getTask, send, startEngine, taskIdOf, waitFor } from "../support/embeddedEngine"
import { describePg, freshSchema } from "../support/pg"
import { eventually } from "../support/rpc"

const stateOf = (caller: Caller, taskId: string) => Effect.map(getTask(taskId, caller), (s) => s.task.status.state)

/** Records the order turns start in (their input's text), and holds each turn until `release` when given. */
const recorder = (started: Array<string>, release?: Deferred.Deferred<void>, ms = 15): Agent => ({
  name: "recorder",
  description: "",
  version: "1",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      started.push(textOf(ctx.input))
      if (release !== undefined) yield* Deferred.await(release)
      else yield* Effect.sleep(`${ms} millis`)
      return Outcome.complete()
    })
})

const acme: Caller = { tenant: "acme", principal: "alice" }
const globex: Caller = { tenant: "globex", principal: "bob" }

describe("flow control: fair starts, running limits, priority, creation rate", () => {
  it("tasks waiting for a worker start fairly across tenants: a flooding tenant's backlog does not hold back another's tasks", async () => {
    const started: Array<string> = []
    const engine = await startEngine(recorder(started), { maxWorkers: 1 })
    try {
      // acme floods the only worker with 40 tasks; then globex sends five, one at a time, as acme's run.
      for (let i = 0; i < 40; i++) await engine.run(send(`acme ${i}`, acme))
      const globexTasks: Array<string> = []
      for (let i = 0; i < 5; i++) {
        const before = started.length
        const id = taskIdOf(await engine.run(send(`globex ${i}`, globex)))
        globexTasks.push(id)
        await engine.run(waitFor(id, settled))
        // Between its send and its start, at most the turn that was running and one more of acme's started.
        const at = started.indexOf(`globex ${i}`)
        expect(at - before).toBeLessThanOrEqual(2)
      }
      // Meanwhile acme's backlog went on too.
      expect(started.filter((t) => t.startsWith("acme")).length).toBeLessThan(40)
    } finally {
      await engine.close()
    }
  })

  it("a tenant at its running limit waits while other tenants' tasks take the free workers", async () => {
    const started: Array<string> = []
    const release = Deferred.unsafeMake<void>(FiberId.none)
    const engine = await startEngine(recorder(started, release), { maxWorkers: 4, flowControl: { tenants: { acme: { maxRunning: 1 } } } })
    try {
      const a = [taskIdOf(await engine.run(send("acme 0", acme))), taskIdOf(await engine.run(send("acme 1", acme)))]
      const g = [taskIdOf(await engine.run(send("globex 0", globex))), taskIdOf(await engine.run(send("globex 1", globex)))]
      for (const id of [a[0]!, ...g]) await engine.run(waitFor(id, (s) => s === "TASK_STATE_WORKING"))
      // Three of four workers are busy; acme's second task waits for its first, not for a worker.
      expect(await engine.run(stateOf(acme, a[1]!))).toBe("TASK_STATE_SUBMITTED")
      expect(started.sort()).toEqual(["acme 0", "globex 0", "globex 1"])
      Deferred.unsafeDone(release, Exit.void)
      await engine.run(waitFor(a[1]!, settled))
      expect(await engine.run(stateOf(acme, a[1]!))).toBe("TASK_STATE_COMPLETED")
    } finally {
      await engine.close()
    }
  })

  it("a principal at its running limit waits; another principal of the same tenant does not", async () => {
    const started: Array<string> = []
    const release = Deferred.unsafeMake<void>(FiberId.none)
    const engine = await startEngine(recorder(started, release), { maxWorkers: 4, flowControl: { maxRunningPerPrincipal: 1 } })
    const carol: Caller = { tenant: "acme", principal: "carol" }
    try {
      const alices = [taskIdOf(await engine.run(send("alice 0", acme))), taskIdOf(await engine.run(send("alice 1", acme)))]
      const carols = taskIdOf(await engine.run(send("carol 0", carol)))
      for (const id of [alices[0]!, carols]) await engine.run(waitFor(id, (s) => s === "TASK_STATE_WORKING"))
      expect(await engine.run(stateOf(acme, alices[1]!))).toBe("TASK_STATE_SUBMITTED")
      Deferred.unsafeDone(release, Exit.void)
      await engine.run(waitFor(alices[1]!, settled))
    } finally {
      await engine.close()
    }
  })

  it("a principal's waiting task with a higher priority (message metadata a2a-ledger/priority) starts before its older ones", async () => {
    const started: Array<string> = []
    // The one worker is held by the first turn until every task is queued (no race with the sends).
    const release = Effect.runSync(Deferred.make<void>())
    const engine = await startEngine(recorder(started, release), { maxWorkers: 1 })
    try {
      for (let i = 0; i < 5; i++) await engine.run(send(`routine ${i}`, acme))
      const urgent = taskIdOf(await engine.run(send("urgent", acme, { "a2a-ledger/priority": 10 })))
      await Effect.runPromise(Deferred.succeed(release, undefined))
      await engine.run(waitFor(urgent, settled))
      // Only the turn already running when it came started before it.
      expect(started.indexOf("urgent")).toBeLessThanOrEqual(1)
      const refused = await engine.run(Effect.flip(send("bad", acme, { "a2a-ledger/priority": 1.5 })))
      expect(refused).toMatchObject({ _tag: "InvalidParams", field: "message.metadata.a2a-ledger/priority" })
    } finally {
      await engine.close()
    }
  })

  it("a principal may create only so many tasks per window; another principal has a bucket of its own", async () => {
    const started: Array<string> = []
    const engine = await startEngine(recorder(started), { maxWorkers: 2, flowControl: { creations: { limit: 3, window: "1 minute" } } })
    try {
      for (let i = 0; i < 3; i++) await engine.run(send(`ok ${i}`, acme))
      const refused = await engine.run(Effect.flip(send("one too many", acme)))
      expect(refused).toMatchObject({ _tag: "RateLimited", limit: "creations" })
      expect(refused._tag === "RateLimited" && refused.retryAfterMs).toBeGreaterThan(0)
      expect(refused.message).toMatch(/at most 3 per 1m for each principal/)
      expect(taskIdOf(await engine.run(send("another principal", globex)))).toBeDefined()
    } finally {
      await engine.close()
    }
  })
})

await describePg("flow control on a shared PostgreSQL store (claims)", () => {
  it("claims take turns across tenants: a flooding tenant's backlog does not hold back another's tasks", async () => {
    const schema = await freshSchema()
    const started: Array<string> = []
    const engine = await startEngine(recorder(started, undefined, 20), { maxWorkers: 1, db: schema.url })
    try {
      for (let i = 0; i < 30; i++) await engine.run(send(`acme ${i}`, acme))
      for (let i = 0; i < 3; i++) {
        const before = started.length
        const id = taskIdOf(await engine.run(send(`globex ${i}`, globex)))
        await engine.run(waitFor(id, settled))
        expect(started.indexOf(`globex ${i}`) - before).toBeLessThanOrEqual(2)
      }
    } finally {
      await engine.close()
      await schema.drop()
    }
  })

  it("a tenant at its running limit waits while other tenants' tasks take the free workers", async () => {
    const schema = await freshSchema()
    const started: Array<string> = []
    const release = Deferred.unsafeMake<void>(FiberId.none)
    const engine = await startEngine(recorder(started, release), {
      maxWorkers: 4,
      db: schema.url,
      flowControl: { tenants: { acme: { maxRunning: 1 } } }
    })
    try {
      const a = [taskIdOf(await engine.run(send("acme 0", acme))), taskIdOf(await engine.run(send("acme 1", acme)))]
      const g = [taskIdOf(await engine.run(send("globex 0", globex))), taskIdOf(await engine.run(send("globex 1", globex)))]
      for (const id of g) await engine.run(waitFor(id, (s) => s === "TASK_STATE_WORKING"))
      await eventually(
        async () => [await engine.run(stateOf(acme, a[0]!)), await engine.run(stateOf(acme, a[1]!))].filter((s) => s === "TASK_STATE_WORKING").length,
        (n) => n === 1
      )
      // Give the claim loop more rounds: acme's second task still waits for its first.
      await new Promise((r) => setTimeout(r, 1_500))
      const states = [await engine.run(stateOf(acme, a[0]!)), await engine.run(stateOf(acme, a[1]!))]
      expect(states.sort()).toEqual(["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"])
      Deferred.unsafeDone(release, Exit.void)
      for (const id of a) await engine.run(waitFor(id, settled))
    } finally {
      await engine.close()
      await schema.drop()
    }
  })
})
