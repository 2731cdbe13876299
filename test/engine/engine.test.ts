import { describe, expect, it } from "vitest"
import { Deferred, Effect, Exit, HashMap, Layer, Logger, LogLevel, Option, Queue, Schedule, Scope, Stream } from "effect"
import * as path from "node:path"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { EventLog } from "../../src/eventlog/EventLog"
import { EventHub } from "../../src/engine/EventHub"
import { anonymous, type SendOutcome, TaskEngine, settled } from "../../src/engine/TaskEngine"
import type { TaskState } from "../../src/domain/TaskState"
import * as Embedded from "../../src/layers/Embedded"
import { userMessage } from "../support/fixtures"
import { tempDir } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/** Build the embedded engine on a SQLite file; `close` stops it like a shutdown. */
const startEngine = async (
  agent: Agent,
  options: { db?: string; maxWorkers?: number; recovery?: "rerun" | "fail"; hubCapacity?: number; startDelayMs?: number } = {}
) => {
  const db = options.db ?? path.join(tempDir(), "engine.db")
  const scope = Effect.runSync(Scope.make())
  const layer = Embedded.layerSqlite({ agent, db, ...options }).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.None)))
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const run = <A, E>(effect: Effect.Effect<A, E, TaskEngine | EventLog | EventHub>) => Effect.runPromise(Effect.provide(effect, context))
  return { db, run, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const send = (text: string, messageId = `m-${Math.random()}`) =>
  Effect.flatMap(TaskEngine, (e) => e.send({ caller: anonymous, message: userMessage(text, messageId) }))
const taskIdOf = (o: SendOutcome) => {
  if (o._tag !== "Task") throw new Error("expected a task, got a message")
  return o.snapshot.task.id
}
const stateOf = (taskId: string) => Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous)).pipe(Effect.map((s) => s.task.status.state))
const waitFor = (taskId: string, predicate: (state: TaskState) => boolean) =>
  Effect.flatMap(TaskEngine, (e) => e.watch(taskId, { stopAt: predicate }).pipe(Stream.runDrain))
const eventTypes = (taskId: string) => Effect.flatMap(EventLog, (log) => log.read(taskId)).pipe(Effect.map((es) => es.map((e) => e.event.type)))

/**
 * The next `count` commits the hub publishes for `taskId` once `gate` opens (after `before`), each as
 * [version, event type, version of the snapshot it carries]: the hub hands the snapshot with the last
 * event of each commit only, so this shows how the events were grouped into commits.
 */
const publishedWhenOpened = (
  taskId: string,
  gate: Deferred.Deferred<void>,
  count: number,
  before: Effect.Effect<void, unknown, TaskEngine> = Effect.void
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const live = yield* (yield* EventHub).subscribe(taskId)
      yield* before
      yield* Deferred.succeed(gate, undefined)
      const taken: Array<readonly [number, string, number | undefined]> = []
      for (let i = 0; i < count; i++) {
        const c = yield* Queue.take(live)
        taken.push([c.version, c.event.type, c.snapshot?.version])
      }
      return taken
    })
  )

describe("a worker turn's start", () => {
  const gated = (gate: Deferred.Deferred<void>): Agent => ({
    name: "gated",
    description: "",
    version: "1",
    skills: [],
    run: (ctx) => Deferred.await(gate).pipe(Effect.zipRight(ctx.progress("first")), Effect.as(Outcome.complete()))
  })

  it("lands in one commit with the agent's first emission: until then the task is SUBMITTED", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const engine = await startEngine(gated(gate), { startDelayMs: 60_000 })
    try {
      const taskId = taskIdOf(await engine.run(send("go")))
      const submitted = Effect.map(stateOf(taskId), (state) => void expect(state).toBe("TASK_STATE_SUBMITTED"))
      // Only the second event carries the snapshot: both are one commit.
      expect(await engine.run(publishedWhenOpened(taskId, gate, 2, submitted))).toEqual([
        [2, "TaskStarted", undefined],
        [3, "StatusMessageAdded", 3]
      ])
      await engine.run(waitFor(taskId, settled))
      expect(await engine.run(eventTypes(taskId))).toEqual(["TaskSubmitted", "TaskStarted", "StatusMessageAdded", "TaskCompleted"])
    } finally {
      await engine.close()
    }
  })

  it("is committed alone once the agent has been quiet for the start delay: the task shows WORKING before it emits", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const engine = await startEngine(gated(gate), { startDelayMs: 20 })
    try {
      const taskId = taskIdOf(await engine.run(send("go")))
      await engine.run(waitFor(taskId, (s) => s === "TASK_STATE_WORKING"))
      expect(await engine.run(eventTypes(taskId))).toEqual(["TaskSubmitted", "TaskStarted"])
      await Effect.runPromise(Deferred.succeed(gate, undefined))
      await engine.run(waitFor(taskId, settled))
      expect(await engine.run(eventTypes(taskId))).toEqual(["TaskSubmitted", "TaskStarted", "StatusMessageAdded", "TaskCompleted"])
    } finally {
      await engine.close()
    }
  })
})

describe("a completion with its artifacts", () => {
  const finishing = (gate: Deferred.Deferred<void>): Agent => ({
    name: "finishing",
    description: "",
    version: "1",
    skills: [],
    run: () =>
      Deferred.await(gate).pipe(
        Effect.as(
          Outcome.complete("done", {
            artifacts: [
              { artifactId: "a", name: "first", parts: [{ text: "one" }] },
              { artifactId: "b", parts: [{ data: { n: 2 } }] }
            ]
          })
        )
      )
  })

  it("lands with the turn's start and end in one commit: each artifact published before COMPLETED, never without it", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const engine = await startEngine(finishing(gate), { startDelayMs: 60_000 })
    try {
      const taskId = taskIdOf(await engine.run(send("go")))
      // Only the last event of a commit carries the snapshot: these four are one commit.
      expect(await engine.run(publishedWhenOpened(taskId, gate, 4))).toEqual([
        [2, "TaskStarted", undefined],
        [3, "ArtifactAdded", undefined],
        [4, "ArtifactAdded", undefined],
        [5, "TaskCompleted", 5]
      ])
      const task = (await engine.run(Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous)))).task
      expect(task.status.state).toBe("TASK_STATE_COMPLETED")
      expect(task.status.message!.parts).toEqual([{ text: "done" }])
      expect(task.artifacts.map((a) => [a.artifactId, a.parts])).toEqual([
        ["a", [{ text: "one" }]],
        ["b", [{ data: { n: 2 } }]]
      ])
    } finally {
      await engine.close()
    }
  })
})

describe("a blocking send's new task, handed straight to a free worker", () => {
  const gated = (gate: Deferred.Deferred<void>, runs?: { n: number }): Agent => ({
    name: "gated",
    description: "",
    version: "1",
    skills: [],
    run: () => Effect.sync(() => runs && runs.n++).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(Outcome.complete("done")))
  })
  const settle = (text: string, messageId = `m-${Math.random()}`) =>
    Effect.flatMap(TaskEngine, (e) => e.sendAndSettle({ caller: anonymous, message: userMessage(text, messageId) }))
  const list = Effect.flatMap(TaskEngine, (e) => e.list({ tenant: "", owner: "", pageSize: 100 }))
  /** The ids of the tasks a send is waiting on (it listens before its task is recorded). */
  const watchedIds = (count: number) =>
    Effect.flatMap(EventHub, (hub) => hub.watched).pipe(
      Effect.filterOrFail((ids) => ids.length >= count),
      Effect.retry(Schedule.spaced("5 millis")),
      Effect.timeout("5 seconds")
    )

  it("is recorded by its turn's first commit: the Submit, the start and the outcome land in one commit, and nothing before", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const engine = await startEngine(gated(gate), { startDelayMs: 60_000 })
    try {
      const sending = engine.run(settle("go"))
      const [taskId] = await engine.run(watchedIds(1))
      // Nothing is recorded while the agent works on it and has emitted nothing.
      expect((await engine.run(Effect.flip(stateOf(taskId!))))._tag).toBe("TaskNotFound")
      expect((await engine.run(list)).tasks).toEqual([])
      // Only the last event of a commit carries the snapshot: these three are one commit.
      expect(await engine.run(publishedWhenOpened(taskId!, gate, 3))).toEqual([
        [1, "TaskSubmitted", undefined],
        [2, "TaskStarted", undefined],
        [3, "TaskCompleted", 3]
      ])
      const sent = await sending
      if (sent._tag !== "Task") throw new Error("expected a task")
      expect([sent.snapshot.task.id, sent.snapshot.task.status.state]).toEqual([taskId, "TASK_STATE_COMPLETED"])
    } finally {
      await engine.close()
    }
  })

  it("when no worker is free, the Submit is committed at once: the waiting task is shown SUBMITTED", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const engine = await startEngine(gated(gate), { startDelayMs: 60_000, maxWorkers: 1 })
    try {
      const first = engine.run(settle("first"))
      await engine.run(watchedIds(1))
      const second = engine.run(settle("second"))
      await engine.run(
        list.pipe(
          Effect.filterOrFail((page) => page.tasks.length === 1),
          Effect.retry(Schedule.spaced("5 millis")),
          Effect.timeout("5 seconds")
        )
      )
      const shown = (await engine.run(list)).tasks.map((t) => [t.task.history[0]!.parts[0]!.text, t.state])
      expect(shown).toEqual([["second", "TASK_STATE_SUBMITTED"]])
      await Effect.runPromise(Deferred.succeed(gate, undefined))
      for (const sent of await Promise.all([first, second])) {
        if (sent._tag !== "Task") throw new Error("expected a task")
        expect(sent.snapshot.task.status.state).toBe("TASK_STATE_COMPLETED")
      }
      expect((await engine.run(list)).tasks.length).toBe(2)
    } finally {
      await engine.close()
    }
  })

  it("the same message sent twice at once makes one task: the second send answers with the first one's", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const runs = { n: 0 }
    const engine = await startEngine(gated(gate, runs), { startDelayMs: 60_000 })
    try {
      const both = [engine.run(settle("twice", "same-id")), engine.run(settle("twice", "same-id"))]
      await engine.run(watchedIds(2))
      await Effect.runPromise(Deferred.succeed(gate, undefined))
      const ids = (await Promise.all(both)).map((sent) => {
        if (sent._tag !== "Task") throw new Error("expected a task")
        return sent.snapshot.task.id
      })
      expect(ids[0]).toBe(ids[1])
      const tasks = (await engine.run(list)).tasks
      expect(tasks.map((t) => [t.task.id, t.state])).toEqual([[ids[0], "TASK_STATE_COMPLETED"]])
      // Both turns ran (neither was recorded while it worked): the cost of handing a task off unrecorded.
      expect(runs.n).toBe(2)
    } finally {
      await engine.close()
    }
  })

  it("a shutdown before the first commit fails the send, and leaves no task behind", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const engine = await startEngine(gated(gate), { startDelayMs: 60_000 })
    const sending = engine.run(Effect.either(settle("go")))
    await engine.run(watchedIds(1))
    await engine.close()
    const sent = await sending
    if (sent._tag !== "Left") throw new Error("expected the send to fail")
    expect(sent.left).toMatchObject({ _tag: "StoreFailure", reason: expect.stringMatching(/stopped before the task was recorded/) })
    const again = await startEngine(gated(gate), { db: engine.db })
    try {
      expect((await again.run(list)).tasks).toEqual([])
    } finally {
      await again.close()
    }
  })
})

describe("a turn's logs", () => {
  it("name the task, for an agent's own logs and the engine's, whether the task was queued or handed off", async () => {
    const lines: Array<{ message: unknown; taskId: unknown }> = []
    const capture = Logger.make(({ message, annotations }) => {
      lines.push({ message: Array.isArray(message) ? message[0] : message, taskId: HashMap.get(annotations, "taskId").pipe(Option.getOrUndefined) })
    })
    const talking: Agent = {
      name: "talking",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) => Effect.logInfo(`working on ${ctx.input.parts[0]!.text}`).pipe(Effect.zipRight(Effect.fail(new Error("gave up"))))
    }
    const scope = Effect.runSync(Scope.make())
    const layer = Embedded.layerSqlite({ agent: talking, db: path.join(tempDir(), "engine.db") }).pipe(
      Layer.provide(Logger.replace(Logger.defaultLogger, capture))
    )
    const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
    try {
      const queued = await Effect.runPromise(Effect.provide(send("queued"), context))
      const handed = await Effect.runPromise(
        Effect.provide(
          Effect.flatMap(TaskEngine, (e) => e.sendAndSettle({ caller: anonymous, message: userMessage("handed", `m-${Math.random()}`) })),
          context
        )
      )
      const queuedId = taskIdOf(queued)
      await Effect.runPromise(Effect.provide(waitFor(queuedId, settled), context))
      for (const [text, taskId] of [
        ["queued", queuedId],
        ["handed", taskIdOf(handed)]
      ] as const) {
        expect(lines).toContainEqual({ message: `working on ${text}`, taskId })
        expect(lines).toContainEqual({ message: `task ${taskId} failed: gave up`, taskId })
      }
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})

describe("ids the server makes", () => {
  const quiet: Agent = { name: "quiet", description: "", version: "1", skills: [], run: () => Effect.succeed(Outcome.complete()) }
  const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

  it("task and context ids are UUIDv7, in the order the tasks were created, on every send path", async () => {
    const engine = await startEngine(quiet)
    try {
      const snapshots = []
      for (let i = 0; i < 5; i++) {
        const sent = await engine.run(send(`t${i}`))
        if (sent._tag !== "Task") throw new Error("expected a task")
        snapshots.push(sent.snapshot)
        // A millisecond apart at least: ids made within one millisecond are ordered too, but not by their time.
        await new Promise((r) => setTimeout(r, 2))
      }
      const settledSend = await engine.run(
        Effect.flatMap(TaskEngine, (e) => e.sendAndSettle({ caller: anonymous, message: userMessage("s", `m-${Math.random()}`) }))
      )
      if (settledSend._tag !== "Task") throw new Error("expected a task")
      snapshots.push(settledSend.snapshot)
      const taskIds = snapshots.map((s) => s.task.id)
      const contextIds = snapshots.map((s) => s.task.contextId)
      for (const id of [...taskIds, ...contextIds]) expect(id).toMatch(uuidV7)
      expect([...taskIds].sort()).toEqual(taskIds)
      expect([...contextIds].sort()).toEqual(contextIds)
    } finally {
      await engine.close()
    }
  })
})

describe("cancel stops the work (invariant 7)", () => {
  it("interrupts the worker: code after the cancel point never runs and nothing it would emit lands", async () => {
    let resumed = false
    const started = Effect.runSync(Deferred.make<void>())
    const agent: Agent = {
      name: "sleepy",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) =>
        Effect.gen(function* () {
          yield* ctx.progress("before")
          yield* Deferred.succeed(started, undefined)
          yield* Effect.sleep("300 millis")
          resumed = true
          yield* ctx.progress("after")
          return Outcome.complete("done")
        })
    }
    const engine = await startEngine(agent)
    try {
      const taskId = taskIdOf(await engine.run(send("work")))
      await Effect.runPromise(Deferred.await(started))
      const canceled = await engine.run(Effect.flatMap(TaskEngine, (e) => e.cancel(taskId, anonymous)))
      expect(canceled.task.status.state).toBe("TASK_STATE_CANCELED")
      await new Promise((r) => setTimeout(r, 500))
      expect(resumed).toBe(false)
      expect(await engine.run(eventTypes(taskId))).toEqual(["TaskSubmitted", "TaskStarted", "StatusMessageAdded", "TaskCanceled"])
    } finally {
      await engine.close()
    }
  })

  it("cancels a task still waiting for a worker; it never starts", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const agent: Agent = {
      name: "gate",
      description: "",
      version: "1",
      skills: [],
      run: () => Deferred.await(gate).pipe(Effect.as(Outcome.complete()))
    }
    const engine = await startEngine(agent, { maxWorkers: 1 })
    try {
      const busy = taskIdOf(await engine.run(send("busy")))
      await engine.run(waitFor(busy, (s) => s === "TASK_STATE_WORKING"))
      const queued = taskIdOf(await engine.run(send("queued")))
      await engine.run(Effect.flatMap(TaskEngine, (e) => e.cancel(queued, anonymous)))
      await Effect.runPromise(Deferred.succeed(gate, undefined))
      await engine.run(waitFor(busy, settled))
      await new Promise((r) => setTimeout(r, 100))
      expect(await engine.run(eventTypes(queued))).toEqual(["TaskSubmitted", "TaskCanceled"])
    } finally {
      await engine.close()
    }
  })
})

describe("the worker limit", () => {
  it("beyond maxWorkers, tasks wait in SUBMITTED and start in arrival order", async () => {
    const order: Array<string> = []
    const gates = new Map<string, Deferred.Deferred<void>>()
    const gateOf = (text: string) => {
      if (!gates.has(text)) gates.set(text, Effect.runSync(Deferred.make<void>()))
      return gates.get(text)!
    }
    const agent: Agent = {
      name: "gated",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) =>
        Effect.sync(() => order.push(ctx.input.parts[0]!.text!)).pipe(
          Effect.zipRight(Deferred.await(gateOf(ctx.input.parts[0]!.text!))),
          Effect.as(Outcome.complete())
        )
    }
    const engine = await startEngine(agent, { maxWorkers: 2 })
    try {
      const names = ["a", "b", "c", "d", "e"]
      const ids: Array<string> = []
      for (const n of names) ids.push(taskIdOf(await engine.run(send(n))))
      await engine.run(waitFor(ids[1]!, (s) => s === "TASK_STATE_WORKING"))
      await new Promise((r) => setTimeout(r, 100))
      expect(await engine.run(Effect.forEach(ids, stateOf))).toEqual([
        "TASK_STATE_WORKING",
        "TASK_STATE_WORKING",
        "TASK_STATE_SUBMITTED",
        "TASK_STATE_SUBMITTED",
        "TASK_STATE_SUBMITTED"
      ])
      // Release in reverse of start: the queue still starts c, d, e in arrival order.
      for (const n of ["b", "a", "c", "d", "e"]) {
        await Effect.runPromise(Deferred.succeed(gateOf(n), undefined))
        await engine.run(waitFor(ids[names.indexOf(n)]!, settled))
      }
      expect(order).toEqual(names)
    } finally {
      await engine.close()
    }
  })
})

describe("failures become FAILED with the reason", () => {
  const failing = (run: Agent["run"]): Agent => ({ name: "f", description: "", version: "1", skills: [], run })
  const cases: ReadonlyArray<readonly [string, Agent["run"], RegExp]> = [
    ["a typed failure", () => Effect.fail(new Error("disk full")), /disk full/],
    ["a defect", () => Effect.die(new Error("kaboom")), /kaboom/],
    [
      "a throw inside the agent",
      () =>
        Effect.sync(() => {
          throw new Error("thrown")
        }),
      /thrown/
    ],
    ["an outcome of failure", () => Effect.succeed(Outcome.fail("no data")), /no data/],
    ["the agent interrupting itself", () => Effect.interrupt, /interrupted its own turn/],
    [
      "an illegal emission",
      (ctx) => ctx.artifact({ artifactId: "x", parts: [{ text: "y" }] }, { append: true }).pipe(Effect.as(Outcome.complete())),
      /illegal update.*no open artifact x/
    ]
  ]
  for (const [name, run, reason] of cases) {
    it(name, async () => {
      const engine = await startEngine(failing(run))
      try {
        const taskId = taskIdOf(await engine.run(send("x")))
        await engine.run(waitFor(taskId, settled))
        const s = await engine.run(Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous)))
        expect(s.task.status.state).toBe("TASK_STATE_FAILED")
        expect(s.task.status.message!.parts[0]!.text).toMatch(reason)
      } finally {
        await engine.close()
      }
    })

    // A blocking send hands its new task to the worker before anything is recorded: the failure is recorded with it.
    it(`${name}, on a task handed straight to the worker (blocking send)`, async () => {
      const engine = await startEngine(failing(run))
      try {
        const sent = await engine.run(
          Effect.flatMap(TaskEngine, (e) => e.sendAndSettle({ caller: anonymous, message: userMessage("x", `m-${Math.random()}`) }))
        )
        const taskId = taskIdOf(sent)
        expect(sent._tag === "Task" && sent.snapshot.task.status.state).toBe("TASK_STATE_FAILED")
        const s = await engine.run(Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous)))
        expect(s.task.status.state).toBe("TASK_STATE_FAILED")
        expect(s.task.status.message!.parts[0]!.text).toMatch(reason)
        expect((await engine.run(eventTypes(taskId)))[0]).toBe("TaskSubmitted")
      } finally {
        await engine.close()
      }
    })
  }
})

describe("one worker per task (invariant 6)", () => {
  it("a message to a WORKING task is refused and starts no second turn", async () => {
    let turns = 0
    const gate = Effect.runSync(Deferred.make<void>())
    const agent: Agent = {
      name: "once",
      description: "",
      version: "1",
      skills: [],
      run: () => Effect.sync(() => turns++).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(Outcome.complete()))
    }
    const engine = await startEngine(agent)
    try {
      const taskId = taskIdOf(await engine.run(send("x")))
      await engine.run(waitFor(taskId, (s) => s === "TASK_STATE_WORKING"))
      const again = await engine.run(
        Effect.flip(Effect.flatMap(TaskEngine, (e) => e.send({ caller: anonymous, message: { ...userMessage("again"), taskId } })))
      )
      expect(again._tag).toBe("UnsupportedOperation")
      await Effect.runPromise(Deferred.succeed(gate, undefined))
      await engine.run(waitFor(taskId, settled))
      expect(turns).toBe(1)
    } finally {
      await engine.close()
    }
  })
})

describe("start-up recovery", () => {
  const stuck: Agent = { name: "stuck", description: "", version: "1", skills: [], run: () => Effect.never }
  const quick: Agent = {
    name: "quick",
    description: "",
    version: "1",
    skills: [],
    run: (ctx) => Effect.succeed(Outcome.complete(`redo ${ctx.input.parts[0]!.text}`))
  }

  it("rerun: a task left WORKING by a stopped engine is run again from its last input", async () => {
    const first = await startEngine(stuck)
    const taskId = taskIdOf(await first.run(send("job")))
    await first.run(waitFor(taskId, (s) => s === "TASK_STATE_WORKING"))
    await first.close()
    const second = await startEngine(quick, { db: first.db })
    try {
      await second.run(waitFor(taskId, settled))
      const s = await second.run(Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous)))
      expect(s.task.status.state).toBe("TASK_STATE_COMPLETED")
      expect(s.task.status.message!.parts[0]!.text).toBe("redo job")
      expect(await second.run(eventTypes(taskId))).toEqual(["TaskSubmitted", "TaskStarted", "TaskRequeued", "TaskStarted", "TaskCompleted"])
    } finally {
      await second.close()
    }
  })

  it("rerun of a big task (its row a head only): the new turn and every read see its whole history", async () => {
    const chatty: Agent = {
      name: "chatty",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) =>
        Effect.forEach(
          Array.from({ length: 20 }, (_, i) => i + 1),
          (i) => ctx.progress(`step ${i}`)
        ).pipe(Effect.zipRight(Effect.never))
    }
    const first = await startEngine(chatty)
    const taskId = taskIdOf(await first.run(send("job")))
    const historyOf = (engine: typeof first) => engine.run(Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous))).then((s) => s.task.history)
    while ((await historyOf(first)).length < 21) await new Promise((r) => setTimeout(r, 20))
    await first.close()
    let seen: ReadonlyArray<string> = []
    const recorder: Agent = {
      name: "recorder",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) => Effect.sync(() => (seen = ctx.task.history.map((m) => m.parts[0]!.text!))).pipe(Effect.as(Outcome.complete("again")))
    }
    const second = await startEngine(recorder, { db: first.db })
    try {
      await second.run(waitFor(taskId, settled))
      const steps = Array.from({ length: 20 }, (_, i) => `step ${i + 1}`)
      expect(seen).toEqual(["job", ...steps])
      expect((await historyOf(second)).map((m) => m.parts[0]!.text)).toEqual(["job", ...steps, "again"])
    } finally {
      await second.close()
    }
  })

  it("fail: a task left WORKING is marked FAILED with a clear reason", async () => {
    const first = await startEngine(stuck)
    const taskId = taskIdOf(await first.run(send("job")))
    await first.run(waitFor(taskId, (s) => s === "TASK_STATE_WORKING"))
    await first.close()
    const second = await startEngine(quick, { db: first.db, recovery: "fail" })
    try {
      const s = await second.run(Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous)))
      expect(s.task.status.state).toBe("TASK_STATE_FAILED")
      expect(s.task.status.message!.parts[0]!.text).toMatch(/restarted/)
    } finally {
      await second.close()
    }
  })
})

describe("a big task (more facts than its row inlines: its writer keeps its head only)", () => {
  it("every answer, every read and the agent's next turn show the whole task; its row is the one its events fold to", async () => {
    let seen: { history: ReadonlyArray<string>; artifacts: ReadonlyArray<string> } | undefined
    const interviewer: Agent = {
      name: "interviewer",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) =>
        ctx.input.parts[0]!.text === "job"
          ? Effect.forEach(
              Array.from({ length: 20 }, (_, i) => i + 1),
              (i) => ctx.progress(`step ${i}`)
            ).pipe(Effect.zipRight(ctx.artifact({ artifactId: "draft", parts: [{ text: "draft" }] })), Effect.as(Outcome.requireInput("which one?")))
          : Effect.sync(() => {
              seen = { history: ctx.task.history.map((m) => m.parts[0]!.text!), artifacts: ctx.task.artifacts.map((a) => a.artifactId) }
            }).pipe(Effect.zipRight(ctx.progress("on it")), Effect.as(Outcome.requireInput("anything else?")))
    }
    const engine = await startEngine(interviewer)
    const texts = (s: { readonly task: { readonly history: ReadonlyArray<{ readonly parts: ReadonlyArray<{ readonly text?: string }> }> } }) =>
      s.task.history.map((m) => m.parts[0]!.text)
    const steps = Array.from({ length: 20 }, (_, i) => `step ${i + 1}`)
    try {
      // A blocking send settles at the turn's last commit, the task's 24th fact.
      const first = await engine.run(Effect.flatMap(TaskEngine, (e) => e.sendAndSettle({ caller: anonymous, message: userMessage("job", "m-job") })))
      const taskId = taskIdOf(first)
      if (first._tag !== "Task") throw new Error("expected a task")
      expect(first.snapshot.version).toBe(24)
      expect(first.snapshot.detached).toBeUndefined()
      expect(texts(first.snapshot)).toEqual(["job", ...steps, "which one?"])
      expect(first.snapshot.task.artifacts.map((a) => a.artifactId)).toEqual(["draft"])
      // The answer to the message that continues it is the whole task too, as is the agent's view of it.
      const answer = await engine.run(
        Effect.flatMap(TaskEngine, (e) => e.send({ caller: anonymous, message: { ...userMessage("the second", "m-2"), taskId } }))
      )
      if (answer._tag !== "Task") throw new Error("expected a task")
      expect(texts(answer.snapshot)).toEqual(["job", ...steps, "which one?", "the second"])
      await engine.run(waitFor(taskId, (s) => s === "TASK_STATE_INPUT_REQUIRED"))
      expect(seen).toEqual({ history: ["job", ...steps, "which one?", "the second"], artifacts: ["draft"] })
      const canceled = await engine.run(Effect.flatMap(TaskEngine, (e) => e.cancel(taskId, anonymous)))
      expect(canceled.detached).toBeUndefined()
      expect(texts(canceled)).toEqual(["job", ...steps, "which one?", "the second", "on it", "anything else?"])
      expect(canceled.task.artifacts.map((a) => a.artifactId)).toEqual(["draft"])
      const read = await engine.run(Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous)))
      expect(read).toEqual(canceled)
    } finally {
      await engine.close()
    }
    // Invariant 4: the rows the writer wrote from heads are the rows the events fold to.
    expect(await verifyStore(engine.db)).toBe(1)
  })
})

describe("a stream whose reader falls behind (bounded hub queues)", () => {
  it("drops the oldest unread events from memory and refills them from the log: every version arrives, in order", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const agent: Agent = {
      name: "burst",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) =>
        Effect.gen(function* () {
          yield* Deferred.await(gate)
          for (let i = 0; i < 20; i++) yield* ctx.progress(`update ${i}`)
          return Outcome.complete("done")
        })
    }
    const engine = await startEngine(agent, { hubCapacity: 2 })
    try {
      const taskId = taskIdOf(await engine.run(send("go")))
      const blocking = engine.run(Effect.flatMap(TaskEngine, (e) => e.awaitSettled(taskId, 1)))
      const versions = await engine.run(
        Effect.flatMap(TaskEngine, (e) =>
          e.watch(taskId, { stopAt: (s) => s === "TASK_STATE_COMPLETED" }).pipe(
            // Open the gate after the first item, then stall while the burst overflows the queue.
            Stream.tap((item) =>
              item._tag === "Snapshot" ? Deferred.succeed(gate, undefined).pipe(Effect.zipRight(Effect.sleep("300 millis"))) : Effect.void
            ),
            Stream.map((item) => (item._tag === "Snapshot" ? item.version : item.committed.version)),
            Stream.runCollect
          )
        )
      )
      const vs = [...versions]
      for (const [i, v] of vs.entries()) expect(v).toBe(vs[0]! + i)
      expect(vs[vs.length - 1]).toBe(await engine.run(Effect.flatMap(EventLog, (log) => log.version(taskId))))
      expect((await blocking).task.status.state).toBe("TASK_STATE_COMPLETED")
    } finally {
      await engine.close()
    }
  })
})

describe("the streaming send (sendAndFollow)", () => {
  const twoSteps: Agent = {
    name: "two steps",
    description: "",
    version: "1",
    skills: [],
    run: (ctx) => Effect.zipRight(Effect.zipRight(ctx.progress("one"), ctx.progress("two")), Effect.succeed(Outcome.complete()))
  }

  /** A streaming send followed to its end: each item as text, and the version of the task the send answered with. */
  const followToEnd = async (engine: Awaited<ReturnType<typeof startEngine>>) => {
    const seen: Array<string> = []
    let sending: Promise<number | undefined> = Promise.resolve(undefined)
    await new Promise<void>((resolve, reject) => {
      sending = engine
        .run(
          Effect.flatMap(TaskEngine, (e) =>
            e.sendAndFollow({ caller: anonymous, message: userMessage("go", `m-${Math.random()}`) }, settled, {
              item: (i) => {
                seen.push(i._tag === "Snapshot" ? `task v${i.version} ${i.task.status.state}` : `${i.committed.event.type} v${i.committed.version}`)
                return true
              },
              end: resolve,
              fail: reject
            })
          )
        )
        .then((sent) => (sent.outcome._tag === "Task" ? sent.outcome.snapshot.version : undefined))
      sending.catch(reject)
    })
    return { seen, answered: await sending }
  }

  it("feeds the task as the send committed it, then every later fact in order, and ends at the stopping state", async () => {
    const engine = await startEngine(twoSteps)
    try {
      const { seen } = await followToEnd(engine)
      expect(seen).toEqual(["task v1 TASK_STATE_SUBMITTED", "TaskStarted v2", "StatusMessageAdded v3", "StatusMessageAdded v4", "TaskCompleted v5"])
    } finally {
      await engine.close()
    }
  })

  it("a task recorded in one commit with its outcome (handed to a free worker) still streams from its Submit", async () => {
    const quick: Agent = {
      name: "quick",
      description: "",
      version: "1",
      skills: [],
      run: () => Effect.succeed(Outcome.complete("done", { artifacts: [{ artifactId: "a", parts: [{ text: "x" }] }] }))
    }
    const engine = await startEngine(quick)
    try {
      const { seen, answered } = await followToEnd(engine)
      expect(seen).toEqual(["task v1 TASK_STATE_SUBMITTED", "TaskStarted v2", "ArtifactAdded v3", "TaskCompleted v4"])
      // The send answers with the task as its Submit left it, as the stream's first item shows it.
      expect(answered).toBe(1)
    } finally {
      await engine.close()
    }
  })
})
