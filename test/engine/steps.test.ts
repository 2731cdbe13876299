import { describe, expect, it } from "vitest"
import { Deferred, Effect, Exit, FiberId, Layer, Logger, LogLevel, Schema, Scope, Stream } from "effect"
import * as path from "node:path"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { EventLog } from "../../src/eventlog/EventLog"
import { anonymous, type SendOutcome, settled, TaskEngine } from "../../src/engine/TaskEngine"
import type { TaskState } from "../../src/domain/TaskState"
import * as Embedded from "../../src/layers/Embedded"
import { makeTestContext } from "../../src/testing"
import { userMessage } from "../support/fixtures"
import { tempDir } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/** The embedded engine on a SQLite file; `close` stops it as a shutdown does (a working task stays WORKING). */
const startEngine = async (agent: Agent, db = path.join(tempDir(), "steps.db")) => {
  const scope = Effect.runSync(Scope.make())
  const layer = Embedded.layerSqlite({ agent, db }).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.None)))
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const run = <A, E>(effect: Effect.Effect<A, E, TaskEngine | EventLog>) => Effect.runPromise(Effect.provide(effect, context))
  return { db, run, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const send = (text: string) => Effect.flatMap(TaskEngine, (e) => e.send({ caller: anonymous, message: userMessage(text, `m-${Math.random()}`) }))
const taskIdOf = (o: SendOutcome) => {
  if (o._tag !== "Task") throw new Error("expected a task")
  return o.snapshot.task.id
}
const waitFor = (taskId: string, predicate: (state: TaskState) => boolean) =>
  Effect.flatMap(TaskEngine, (e) => e.watch(taskId, { stopAt: predicate }).pipe(Stream.runDrain))
const events = (taskId: string) => Effect.flatMap(EventLog, (log) => log.read(taskId)).pipe(Effect.map((es) => es.map((e) => e.event)))
/** Until the stepper has said "Step 3/3": its first two steps are recorded, the third is under way. */
const inThirdStep = (taskId: string) =>
  Effect.flatMap(TaskEngine, (e) =>
    e.watch(taskId, { afterVersion: 0, stopAt: () => false }).pipe(
      Stream.filter((item) => item._tag === "Event" && item.committed.event.type === "StatusMessageAdded"),
      Stream.take(3),
      Stream.runDrain
    )
  )
const getTask = (taskId: string) => Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous))

/**
 * Three steps, each reporting progress inside it and counting its runs in `ran`; the third waits on
 * `hold` when given (the process "crashes" there), and the turn completes with the steps' results.
 */
const stepper = (ran: Record<string, number>, hold?: Deferred.Deferred<void>): Agent => ({
  name: "stepper",
  description: "",
  version: "1",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      const counted = (name: string, value: unknown) =>
        Effect.sync(() => {
          ran[name] = (ran[name] ?? 0) + 1
          return value
        })
      const a = yield* ctx.step("load", Effect.zipRight(ctx.progress("Step 1/3"), counted("load", { rows: 3 })))
      const b = yield* ctx.step("analyse", Effect.zipRight(ctx.progress("Step 2/3"), counted("analyse", "upward")))
      const c = yield* ctx.step(
        "report",
        Effect.gen(function* () {
          yield* ctx.progress("Step 3/3")
          if (hold !== undefined) yield* Deferred.await(hold)
          return yield* counted("report", 42)
        })
      )
      return Outcome.complete(JSON.stringify([a, b, c]))
    })
})

/** A stepper's task whose engine stopped while its third step ran (the first two recorded): its store and task. */
const crashedInThirdStep = async (ran: Record<string, number>) => {
  const hold = Deferred.unsafeMake<void>(FiberId.none)
  const first = await startEngine(stepper(ran, hold))
  const taskId = taskIdOf(await first.run(send("go")))
  await first.run(inThirdStep(taskId))
  await first.close()
  return { db: first.db, taskId }
}

describe("durable steps (ctx.step)", () => {
  it("a turn run again after a crash returns the recorded steps without running them, and finishes from the step it was in", async () => {
    const ran: Record<string, number> = {}
    const first = await crashedInThirdStep(ran)
    const taskId = first.taskId
    expect(ran).toEqual({ load: 1, analyse: 1 })

    const second = await startEngine(stepper(ran), first.db)
    try {
      await second.run(waitFor(taskId, settled))
      // Steps 1 and 2 were not run again; step 3 was (it had no record), once.
      expect(ran).toEqual({ load: 1, analyse: 1, report: 1 })
      const task = await second.run(getTask(taskId))
      expect(task.task.status.state).toBe("TASK_STATE_COMPLETED")
      expect(task.task.status.message?.parts[0]?.text).toBe(JSON.stringify([{ rows: 3 }, "upward", 42]))
      // Each step's progress is in the history once, but the third's, which ran twice (before and after the crash).
      const said = task.task.history.map((m) => m.parts[0]?.text)
      expect(said.filter((t) => t === "Step 1/3")).toHaveLength(1)
      expect(said.filter((t) => t === "Step 2/3")).toHaveLength(1)
      expect(said.filter((t) => t === "Step 3/3")).toHaveLength(2)
      const journal = (await second.run(events(taskId))).filter((e) => e.type === "StepCompleted")
      expect(journal.map((e) => e.type === "StepCompleted" && [e.turn, e.sequence, e.name, e.result])).toEqual([
        [1, 1, "load", { rows: 3 }],
        [1, 2, "analyse", "upward"],
        [1, 3, "report", 42]
      ])
      // Clients never see the journal.
      const updates = await second.run(
        Effect.flatMap(TaskEngine, (e) => e.watch(taskId, { afterVersion: 0, stopAt: settled }).pipe(Stream.runCollect))
      )
      const shown = [...updates].map((u) => (u._tag === "Event" ? u.committed.event.type : u._tag))
      expect(shown).toContain("TaskCompleted")
      expect(shown.filter((t) => t.startsWith("Step"))).toEqual([])
    } finally {
      await second.close()
    }
    expect(await verifyStore(first.db)).toBe(1)
  })

  it("a changed step order fails the task with a clear reason; with onStepMismatch: rerun, the steps run again", async () => {
    const ran: Record<string, number> = {}
    const first = await crashedInThirdStep(ran)
    const taskId = first.taskId
    const renamed = (onStepMismatch?: "rerun"): Agent => ({
      ...stepper(ran),
      ...(onStepMismatch === undefined ? {} : { onStepMismatch }),
      run: (ctx) =>
        Effect.gen(function* () {
          yield* ctx.step("load", Effect.succeed({ rows: 3 }))
          const b = yield* ctx.step(
            "summarise",
            Effect.sync(() => "renamed")
          )
          return Outcome.complete(String(b))
        })
    })
    const copy = path.join(tempDir(), "copy.db")
    const fs = await import("node:fs")
    fs.copyFileSync(first.db, copy)
    for (const suffix of ["-wal", "-shm"]) if (fs.existsSync(first.db + suffix)) fs.copyFileSync(first.db + suffix, copy + suffix)

    const failing = await startEngine(renamed(), first.db)
    try {
      await failing.run(waitFor(taskId, settled))
      const task = await failing.run(getTask(taskId))
      expect(task.task.status.state).toBe("TASK_STATE_FAILED")
      expect(task.task.status.message?.parts[0]?.text).toBe(
        'step 2 of turn 1 was recorded as "analyse", and the agent now runs "summarise" there: its code changed under a running task (an agent with onStepMismatch: "rerun" runs the turn\'s steps again instead)'
      )
    } finally {
      await failing.close()
    }

    const rerunning = await startEngine(renamed("rerun"), copy)
    try {
      await rerunning.run(waitFor(taskId, settled))
      const task = await rerunning.run(getTask(taskId))
      expect(task.task.status.state).toBe("TASK_STATE_COMPLETED")
      expect(task.task.status.message?.parts[0]?.text).toBe("renamed")
      const types = (await rerunning.run(events(taskId))).map((e) => e.type).filter((t) => t.startsWith("Step"))
      expect(types).toEqual(["StepCompleted", "StepCompleted", "StepsReset", "StepCompleted", "StepCompleted"])
    } finally {
      await rerunning.close()
    }
    expect(await verifyStore(copy)).toBe(1)
  })

  it("a failing step is retried by its policy, each attempt recorded; the last failure fails the step, which the agent may handle", async () => {
    let calls = 0
    const flaky: Agent = {
      name: "flaky",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) =>
        Effect.gen(function* () {
          const ok = yield* ctx.step(
            "flaky",
            Effect.suspend(() => (++calls < 3 ? Effect.fail(new Error(`boom ${calls}`)) : Effect.succeed("third time"))),
            { retry: { attempts: 3, initialDelayMs: 1, jitter: false } }
          )
          const never = yield* ctx
            .step("never", Effect.fail("no"), { retry: { attempts: 2, initialDelayMs: 1 } })
            .pipe(Effect.catchTag("StepFailed", (e) => Effect.succeed(`gave up after ${e.attempts}: ${e.message}`)))
          return Outcome.complete(`${ok}; ${never}`)
        })
    }
    const engine = await startEngine(flaky)
    try {
      const taskId = taskIdOf(await engine.run(send("go")))
      await engine.run(waitFor(taskId, settled))
      expect((await engine.run(getTask(taskId))).task.status.message?.parts[0]?.text).toBe("third time; gave up after 2: no")
      const journal = (await engine.run(events(taskId))).flatMap((e) =>
        e.type === "StepAttemptFailed"
          ? [[e.sequence, e.name, e.attempt, e.error, e.retryAt !== undefined]]
          : e.type === "StepCompleted"
            ? [[e.sequence, e.name]]
            : []
      )
      expect(journal).toEqual([
        [1, "flaky", 1, "boom 1", true],
        [1, "flaky", 2, "boom 2", true],
        [1, "flaky"],
        [2, "never", 1, "no", true],
        [2, "never", 2, "no", false]
      ])
    } finally {
      await engine.close()
    }
  })

  it("a result that is not JSON is a clear error at the step; with a schema it is encoded, and decoded on replay", async () => {
    const { ctx, reports } = makeTestContext("hi")
    const notJson = await Effect.runPromiseExit(ctx.step("when", Effect.succeed(new Date(0))))
    expect(Exit.isFailure(notJson) && String(Exit.isFailure(notJson) ? notJson.cause : "")).toMatch(
      /step "when" returned a value that is not JSON .*give the step a schema/
    )
    const date = await Effect.runPromise(ctx.step("when", Effect.succeed(new Date(0)), { schema: Schema.Date }))
    expect(date).toEqual(new Date(0))
    expect(reports).toEqual([{ step: "when", result: "1970-01-01T00:00:00.000Z" }])
  })
})
