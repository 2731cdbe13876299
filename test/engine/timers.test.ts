import { describe, expect, it } from "vitest"
import { Effect, Option } from "effect"
import * as path from "node:path"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { sleepingUntil } from "../../src/domain/Task"
import type { TaskEvent } from "../../src/domain/TaskEvent"
import { anonymous, settled, TaskEngine } from "../../src/engine/TaskEngine"
import { makeTestContext } from "../../src/testing"
import { events, getTask, send, startEngine, taskIdOf, waitFor } from "../support/embeddedEngine"
import { describePg, freshSchema } from "../support/pg"
import { tempDir } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/** Until the task's log holds an event of this type (the journal's included: watch does not show it). */
const untilLogged = (taskId: string, type: TaskEvent["type"]) =>
  Effect.gen(function* () {
    for (;;) {
      const es = yield* events(taskId)
      if (es.some((e) => e.type === type)) return es
      yield* Effect.sleep("20 millis")
    }
  })
const the = <T extends TaskEvent["type"]>(es: ReadonlyArray<TaskEvent>, type: T) =>
  es.find((e): e is Extract<TaskEvent, { type: T }> => e.type === type)!

/**
 * "sleep N": a step before, a durable sleep of N ms, a step after; each step counts its runs in `ran`.
 * Anything else completes at once.
 */
const sleeper = (ran: Record<string, number>): Agent => ({
  name: "sleeper",
  description: "",
  version: "1",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      const text = ctx.input.parts[0]?.text ?? ""
      if (!text.startsWith("sleep")) return Outcome.complete("quick")
      const count = (name: string) => Effect.sync(() => void (ran[name] = (ran[name] ?? 0) + 1))
      yield* ctx.step("before", count("before"))
      yield* ctx.sleep(Number(text.split(" ")[1]))
      yield* ctx.step("after", count("after"))
      return Outcome.complete("slept")
    })
})

describe("durable timers (ctx.sleep)", () => {
  it("a long sleep gives its worker up: with one worker another task runs meanwhile, and the sleeper finishes when due", async () => {
    const ran: Record<string, number> = {}
    const db = path.join(tempDir(), "timers.db")
    const engine = await startEngine(sleeper(ran), { db, maxWorkers: 1, parkSleepsFromMs: 0 })
    try {
      const sleeping = taskIdOf(await engine.run(send("sleep 1500")))
      const started = the(await engine.run(untilLogged(sleeping, "TimerStarted")), "TimerStarted")
      // The only worker is free: a second task completes while the first sleeps.
      const quick = taskIdOf(await engine.run(send("quick")))
      await engine.run(waitFor(quick, settled))
      const meanwhile = await engine.run(getTask(sleeping))
      expect(meanwhile.task.status.state).toBe("TASK_STATE_WORKING")
      expect(sleepingUntil(meanwhile)).toBe(started.dueAt)
      await engine.run(waitFor(sleeping, settled))
      const task = await engine.run(getTask(sleeping))
      expect(task.task.status.state).toBe("TASK_STATE_COMPLETED")
      // The turn ran again from its start when woken: the recorded step was not run again.
      expect(ran).toEqual({ before: 1, after: 1 })
      const log = await engine.run(events(sleeping))
      const fired = the(log, "TimerFired")
      expect(Date.parse(fired.at)).toBeGreaterThanOrEqual(Date.parse(started.dueAt))
      expect(fired.instanceId).toBeDefined()
      expect(log.map((e) => e.type)).toEqual([
        "TaskSubmitted",
        "TaskStarted",
        "StepCompleted",
        "TimerStarted",
        "TimerFired",
        "StepCompleted",
        "TaskCompleted"
      ])
    } finally {
      await engine.close()
    }
    expect(await verifyStore(db)).toBe(2)
  })

  it("a short sleep waits in its worker, and is recorded all the same", async () => {
    const ran: Record<string, number> = {}
    const db = path.join(tempDir(), "timers.db")
    const engine = await startEngine(sleeper(ran), { db, parkSleepsFromMs: 5_000 })
    try {
      const taskId = taskIdOf(await engine.run(send("sleep 200")))
      await engine.run(waitFor(taskId, settled))
      const log = await engine.run(events(taskId))
      // Fired by the sleep itself (no waking instance), and the turn was not run again.
      expect(the(log, "TimerFired").instanceId).toBeUndefined()
      expect(log.filter((e) => e.type === "TaskStarted")).toHaveLength(1)
      expect(ran).toEqual({ before: 1, after: 1 })
    } finally {
      await engine.close()
    }
  })

  it("after a restart a sleeping task waits only for what is left of its timer", async () => {
    const ran: Record<string, number> = {}
    const db = path.join(tempDir(), "timers.db")
    const first = await startEngine(sleeper(ran), { db, parkSleepsFromMs: 0 })
    const taskId = taskIdOf(await first.run(send("sleep 3000")))
    const started = the(await first.run(untilLogged(taskId, "TimerStarted")), "TimerStarted")
    await first.close()
    // The process is gone past the due time; started again, it wakes the task at once instead of
    // sleeping three seconds more.
    await Effect.runPromise(Effect.sleep(Math.max(0, Date.parse(started.dueAt) - Date.now())))
    const restartedAt = Date.now()
    const second = await startEngine(sleeper(ran), { db, parkSleepsFromMs: 0 })
    try {
      await second.run(waitFor(taskId, settled))
      const log = await second.run(events(taskId))
      const fired = the(log, "TimerFired")
      expect(Date.parse(fired.at)).toBeGreaterThanOrEqual(Date.parse(started.dueAt))
      expect(Date.parse(fired.at) - restartedAt).toBeLessThan(3_000)
      expect((await second.run(getTask(taskId))).task.status.state).toBe("TASK_STATE_COMPLETED")
      expect(ran).toEqual({ before: 1, after: 1 })
      // No recovery: the sleeping task was not a lost turn.
      expect(log.some((e) => e.type === "TaskRequeued")).toBe(false)
    } finally {
      await second.close()
    }
  })

  it("a task stopped while its sleep was still to run waits for the rest after a restart", async () => {
    const ran: Record<string, number> = {}
    const db = path.join(tempDir(), "timers.db")
    const first = await startEngine(sleeper(ran), { db, parkSleepsFromMs: 0 })
    const taskId = taskIdOf(await first.run(send("sleep 1500")))
    const started = the(await first.run(untilLogged(taskId, "TimerStarted")), "TimerStarted")
    await first.close()
    const second = await startEngine(sleeper(ran), { db, parkSleepsFromMs: 0 })
    try {
      expect(sleepingUntil(await second.run(getTask(taskId)))).toBe(started.dueAt)
      await second.run(waitFor(taskId, settled))
      const fired = the(await second.run(events(taskId)), "TimerFired")
      expect(Date.parse(fired.at)).toBeGreaterThanOrEqual(Date.parse(started.dueAt))
      expect(ran).toEqual({ before: 1, after: 1 })
    } finally {
      await second.close()
    }
  })

  it("a cancel during a sleep records CANCELED at once; the timer wakes nothing", async () => {
    const ran: Record<string, number> = {}
    const db = path.join(tempDir(), "timers.db")
    const engine = await startEngine(sleeper(ran), { db, parkSleepsFromMs: 0 })
    try {
      const taskId = taskIdOf(await engine.run(send("sleep 600")))
      const started = the(await engine.run(untilLogged(taskId, "TimerStarted")), "TimerStarted")
      const canceled = await engine.run(Effect.flatMap(TaskEngine, (e) => e.cancel(taskId, anonymous)))
      expect(canceled.task.status.state).toBe("TASK_STATE_CANCELED")
      await Effect.runPromise(Effect.sleep(Math.max(0, Date.parse(started.dueAt) - Date.now()) + 300))
      const log = await engine.run(events(taskId))
      expect(log.at(-1)?.type).toBe("TaskCanceled")
      expect(log.some((e) => e.type === "TimerFired")).toBe(false)
      expect(ran).toEqual({ before: 1 })
    } finally {
      await engine.close()
    }
  })

  it("a step running beside a long sleep keeps the sleep in its worker: the step is not stopped", async () => {
    const db = path.join(tempDir(), "timers.db")
    const agent: Agent = {
      name: "racer",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) =>
        Effect.map(Effect.all([ctx.sleep(600), ctx.step("work", Effect.as(Effect.sleep("300 millis"), "done"))], { concurrency: 2 }), ([, work]) =>
          Outcome.complete(work)
        )
    }
    const engine = await startEngine(agent, { db, parkSleepsFromMs: 0 })
    try {
      const taskId = taskIdOf(await engine.run(send("go")))
      await engine.run(waitFor(taskId, settled))
      const log = await engine.run(events(taskId))
      expect(log.filter((e) => e.type === "TaskStarted")).toHaveLength(1)
      expect(the(log, "TimerFired").instanceId).toBeUndefined()
      expect((await engine.run(getTask(taskId))).task.status.message?.parts[0]?.text).toBe("done")
    } finally {
      await engine.close()
    }
  })

  it("the test context records a sleep and waits it out", async () => {
    const { ctx, reports } = makeTestContext("hi")
    const before = Date.now()
    await Effect.runPromise(ctx.sleep(50))
    expect(Date.now() - before).toBeGreaterThanOrEqual(45)
    expect(reports).toHaveLength(1)
    expect(Option.some(reports[0])).toEqual(Option.some({ sleepUntil: expect.any(String) }))
  })
})

await describePg("durable timers on a shared PostgreSQL store", () => {
  it("a task parked by one instance is woken by another once due", async () => {
    const schema = await freshSchema()
    const ran: Record<string, number> = {}
    try {
      const a = await startEngine(sleeper(ran), { db: schema.url, parkSleepsFromMs: 0, instanceId: "instance-a" })
      const taskId = taskIdOf(await a.run(send("sleep 1200")))
      const started = the(await a.run(untilLogged(taskId, "TimerStarted")), "TimerStarted")
      await a.close()
      const b = await startEngine(sleeper(ran), { db: schema.url, parkSleepsFromMs: 0, instanceId: "instance-b" })
      try {
        await b.run(waitFor(taskId, settled))
        const log = await b.run(events(taskId))
        const fired = the(log, "TimerFired")
        expect(fired.instanceId).toBe("instance-b")
        expect(Date.parse(fired.at)).toBeGreaterThanOrEqual(Date.parse(started.dueAt))
        expect((await b.run(getTask(taskId))).task.status.state).toBe("TASK_STATE_COMPLETED")
        expect(ran).toEqual({ before: 1, after: 1 })
        expect(log.some((e) => e.type === "TaskRequeued")).toBe(false)
      } finally {
        await b.close()
      }
      expect(await verifyStore(schema.url)).toBe(1)
    } finally {
      await schema.drop()
    }
  })

  it("a sleeping task is not claimed before it is due, and its own instance wakes it when it is", async () => {
    const schema = await freshSchema()
    const ran: Record<string, number> = {}
    try {
      const a = await startEngine(sleeper(ran), { db: schema.url, parkSleepsFromMs: 0, instanceId: "instance-a", maxWorkers: 1 })
      try {
        const taskId = taskIdOf(await a.run(send("sleep 1500")))
        const started = the(await a.run(untilLogged(taskId, "TimerStarted")), "TimerStarted")
        // Its worker is free meanwhile.
        const quick = taskIdOf(await a.run(send("quick")))
        await a.run(waitFor(quick, settled))
        expect((await a.run(getTask(taskId))).task.status.state).toBe("TASK_STATE_WORKING")
        await a.run(waitFor(taskId, settled))
        const fired = the(await a.run(events(taskId)), "TimerFired")
        expect(Date.parse(fired.at)).toBeGreaterThanOrEqual(Date.parse(started.dueAt))
        expect(fired.instanceId).toBe("instance-a")
        expect(ran).toEqual({ before: 1, after: 1 })
      } finally {
        await a.close()
      }
    } finally {
      await schema.drop()
    }
  })
})
