import { randomBytes } from "node:crypto"
import { SqlClient } from "@effect/sql"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Logger, LogLevel, Scope, Stream } from "effect"
import { expect, it } from "vitest"
import { Outcome } from "../../src/agent/Agent"
import * as CommitFeed from "../../src/engine/CommitFeed"
import * as EventHub from "../../src/engine/EventHub"
import * as InstanceId from "../../src/engine/InstanceId"
import { anonymous, TaskEngine } from "../../src/engine/TaskEngine"
import * as TaskWriterModule from "../../src/engine/TaskWriter"
import { TaskWriter } from "../../src/engine/TaskWriter"
import { isTerminal } from "../../src/domain/TaskState"
import * as Deliverer from "../../src/push/Deliverer"
import { EventLog } from "../../src/eventlog/EventLog"
import { LeaseStore } from "../../src/eventlog/LeaseStore"
import { PgCommits } from "../../src/eventlog/PgCommits"
import * as Metrics from "../../src/observability/Metrics"
import * as Store from "../../src/eventlog/Store"
import * as Engine from "../../src/layers/Engine"
import * as EngineConfig from "../../src/engine/EngineConfig"
import { terminateBackends } from "../support/faults"
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
    Layer.provideMerge(Store.layerPg(url, { maxConnections: 2 })),
    Layer.provide(Logger.minimumLogLevel(LogLevel.None))
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return <A, E>(f: (writer: typeof TaskWriter.Service) => Effect.Effect<A, E, EventLog | LeaseStore>) =>
    Effect.runPromise(Effect.flatMap(TaskWriter, f).pipe(Effect.provide(context)))
}

/** A fresh schema and a scope for the writers on it, both gone after `use`. */
const onFreshSchema = async (use: (schema: { readonly url: string }, scope: Scope.CloseableScope) => Promise<void>) => {
  const schema = await freshSchema()
  const scope = Effect.runSync(Scope.make())
  try {
    await use(schema, scope)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await schema.drop()
  }
}

await describePg("writers sharing a PostgreSQL store", () => {
  it("a writer with a stale snapshot decides again on the committed state; versions stay gap-free", async () => {
    await onFreshSchema(async (schema, scope) => {
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
    })
  })

  it("a commit fenced by a lease its owner no longer holds is refused as LeaseLost and writes nothing; the new holder commits", async () => {
    await onFreshSchema(async (schema, scope) => {
      const a = await writerOn(schema.url, scope)
      await a((w) => w.commit("t1", { type: "Submit", taskId: "t1", contextId: "c", tenant: "", owner: "", message: userMessage("go") }))
      const leases = (f: (l: typeof LeaseStore.Service) => Effect.Effect<any, any>) => a(() => Effect.flatMap(LeaseStore, f))
      const [first] = await leases((l) => l.claim("i-a", 1_000, 100, 1))
      // i-a's lease expired and i-b took the task over at the next epoch.
      const [second] = await leases((l) => l.claim("i-b", 2_000, Date.now(), 1))
      expect(second.epoch).toBe(first.epoch + 1)
      const start = { type: "Start", instanceId: "x" } as const
      const lost = await a((w) => Effect.flip(w.commit("t1", start, { fence: { owner: "i-a", lease: first } })))
      expect(lost).toMatchObject({ _tag: "LeaseLost", taskId: "t1", epoch: first.epoch })
      expect(await a(() => Effect.flatMap(EventLog, (l) => l.version("t1")))).toBe(1)
      const started = await a((w) => w.commit("t1", start, { fence: { owner: "i-b", lease: second } }))
      expect(started.snapshot.version).toBe(2)
    })
  })

  it("one message sent to two writers at once makes one task: the other answers DuplicateMessage, naming it", async () => {
    await onFreshSchema(async (schema, scope) => {
      const a = await writerOn(schema.url, scope)
      const b = await writerOn(schema.url, scope)
      const message = userMessage("once", "m-once")
      const submit = (id: string) => (w: typeof TaskWriter.Service) =>
        Effect.either(w.commit(id, { type: "Submit", taskId: id, contextId: "c", tenant: "", owner: "", message }))
      const [fromA, fromB] = await Promise.all([a(submit("from-a")), b(submit("from-b"))])
      const won = [fromA, fromB].filter((r) => r._tag === "Right")
      const lost = [fromA, fromB].filter((r) => r._tag === "Left")
      expect(won).toHaveLength(1)
      expect(lost).toHaveLength(1)
      const winner = fromA._tag === "Right" ? "from-a" : "from-b"
      expect(lost[0]).toMatchObject({ left: { _tag: "DuplicateMessage", taskId: winner, version: 1 } })
      expect(await verifyStore(schema.url)).toBe(1)
    })
  })
})

await describePg("a batch PostgreSQL aborts to break a deadlock", () => {
  it("is decided and written again, and every command in it succeeds", async () => {
    await onFreshSchema(async (schema, scope) => {
      const commitWith = await writerOn(schema.url, scope)
      const writer = await commitWith((w) => Effect.succeed(w))
      for (const id of ["t0", "t1", "t2"]) {
        await Effect.runPromise(writer.commit(id, { type: "Submit", taskId: id, contextId: "c", tenant: "", owner: "", message: userMessage(id) }))
      }
      const others = await Effect.runPromise(Layer.buildWithScope(Store.layerPg(schema.url, { maxConnections: 3 }), scope))
      const sql = Context.get(others, SqlClient.SqlClient)
      const lock = (id: string) => sql`SELECT 1 FROM a2a_tasks WHERE task_id = ${id} FOR UPDATE`
      await Effect.runPromise(
        Effect.gen(function* () {
          const t0Locked = yield* Deferred.make<void>()
          const releaseT0 = yield* Deferred.make<void>()
          const t2Locked = yield* Deferred.make<void>()
          const lockT1 = yield* Deferred.make<void>()
          // One transaction holds t0 until told; another holds t2, and later wants t1.
          const holder0 = yield* Effect.fork(
            sql.withTransaction(Effect.zipRight(lock("t0"), Effect.zipRight(Deferred.succeed(t0Locked, undefined), Deferred.await(releaseT0))))
          )
          const holder = yield* Effect.fork(
            sql.withTransaction(
              Effect.zipRight(lock("t2"), Effect.zipRight(Deferred.succeed(t2Locked, undefined), Effect.zipRight(Deferred.await(lockT1), lock("t1"))))
            )
          )
          yield* Deferred.await(t0Locked)
          yield* Deferred.await(t2Locked)
          // The committer waits on t0, so the next two commands queue up and go in one batch: t1, then t2.
          const first = yield* Effect.fork(writer.commit("t0", { type: "Start", instanceId: "i" }))
          yield* Effect.sleep("200 millis")
          const pair = yield* Effect.fork(
            Effect.all([writer.commit("t1", { type: "Start", instanceId: "i" }), writer.commit("t2", { type: "Start", instanceId: "i" })], {
              concurrency: 2
            })
          )
          yield* Effect.sleep("200 millis")
          yield* Deferred.succeed(releaseT0, undefined)
          // The batch now holds t1 and waits for t2; the holder of t2 asks for t1: a deadlock, which the
          // batch (waiting longer) detects and loses.
          yield* Effect.sleep("300 millis")
          yield* Deferred.succeed(lockT1, undefined)
          yield* Fiber.join(holder0)
          yield* Fiber.join(holder)
          yield* Fiber.join(first)
          const [r1, r2] = yield* Fiber.join(pair)
          expect([r1.snapshot.version, r2.snapshot.version]).toEqual([2, 2])
        })
      )
      expect(await verifyStore(schema.url)).toBe(3)
    })
  }, 30_000)
})

const engineOn = async (url: string, scope: Scope.CloseableScope, commitPollMs?: number) => {
  const layer = Engine.layer({ agent: idle, maxWorkers: 0, ...(commitPollMs !== undefined ? { commitPollMs } : {}) }).pipe(
    Layer.provideMerge(Store.layerPg(url, { maxConnections: 3 })),
    Layer.provide(Logger.minimumLogLevel(LogLevel.None))
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return <A, E>(effect: Effect.Effect<A, E, TaskEngine | TaskWriter | EventHub.EventHub>) => Effect.runPromise(Effect.provide(effect, context))
}

/** A writer whose commits announce nothing: what a lost notice looks like to the others. */
const silentWriterOn = async (url: string, scope: Scope.CloseableScope) => {
  const layer = TaskWriterModule.layer.pipe(
    Layer.provide(
      Layer.mergeAll(
        EventHub.layer(),
        InstanceId.layer("silent"),
        EngineConfig.layerConfig(),
        Deliverer.layerSignal,
        Metrics.layerEngine("silent"),
        Layer.succeed(CommitFeed.CommitFeed, { announce: () => Effect.void, published: () => {}, landing: () => ({ landed: () => {} }) })
      )
    ),
    // Without the store's batch function (it would announce the commits itself): the writer's
    // statement-by-statement path, whose announcements go to the silent feed above.
    Layer.provide(Layer.map(Store.layerPg(url, { maxConnections: 2 }), Context.omit(PgCommits)))
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return <A, E>(f: (writer: typeof TaskWriter.Service) => Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.flatMap(TaskWriter, f).pipe(Effect.provide(context)))
}

const until = async (check: () => Promise<boolean>) => {
  for (let i = 0; !(await check()); i++) {
    if (i > 500) throw new Error("condition not reached")
    await new Promise((r) => setTimeout(r, 10))
  }
}

await describePg("streams across processes sharing a PostgreSQL store", () => {
  const streamSeen = async (
    commitPollMs: number | undefined,
    commitElsewhere: (url: string, scope: Scope.CloseableScope, taskId: string) => Promise<void>,
    beforeCommit: (applicationName: string) => Promise<void> = async () => {}
  ) => {
    const applicationName = `a2a-feed-${randomBytes(4).toString("hex")}`
    await onFreshSchema(async (schema, scope) => {
      const a = await engineOn(`${schema.url}&application_name=${applicationName}`, scope, commitPollMs)
      const sent = await a(Effect.flatMap(TaskEngine, (e) => e.send({ caller: anonymous, message: userMessage("watch me") })))
      if (sent._tag !== "Task") throw new Error("expected a task")
      const taskId = sent.snapshot.task.id
      const contextId = sent.snapshot.task.contextId
      const items = a(Effect.flatMap(TaskEngine, (e) => Stream.runCollect(e.watch(taskId, { stopAt: isTerminal }))).pipe(Effect.map((c) => [...c])))
      const settled = a(Effect.flatMap(TaskEngine, (e) => e.awaitSettled(taskId, 1)))
      await until(() => a(Effect.flatMap(EventHub.EventHub, (h) => h.subscriptions)).then((n) => n === 2))
      await beforeCommit(applicationName)
      await commitElsewhere(schema.url, scope, taskId)
      const seen = await items
      expect(seen.map((i) => (i._tag === "Snapshot" ? `task@${i.version}` : `${i.committed.event.type}@${i.committed.version}`))).toEqual([
        "task@1",
        "TaskStarted@2",
        "StatusMessageAdded@3",
        "TaskCompleted@4"
      ])
      expect(seen.every((i) => i._tag === "Snapshot" || i.committed.contextId === contextId)).toBe(true)
      expect((await settled).task.status.state).toBe("TASK_STATE_COMPLETED")
    })
  }

  const commitTurn = (run: <A, E>(f: (w: typeof TaskWriter.Service) => Effect.Effect<A, E>) => Promise<A>, taskId: string) =>
    run((w) =>
      Effect.gen(function* () {
        yield* w.commit(taskId, { type: "Start", instanceId: "other" })
        yield* w.commit(taskId, { type: "Progress", message: agentMessage("step") })
        yield* w.commit(taskId, { type: "Complete", message: agentMessage("done") })
      })
    )

  it("a stream and a blocking wait on one process see, in order, what another process commits (LISTEN/NOTIFY)", async () => {
    // A long poll: only the notices can deliver in time.
    await streamSeen(60_000, async (url, scope, taskId) => {
      const b = await writerOn(url, scope)
      await commitTurn(b, taskId)
    })
  })

  it("a listening connection PostgreSQL terminated is replaced: notices arrive again within seconds", async () => {
    await streamSeen(
      60_000,
      async (url, scope, taskId) => {
        const b = await writerOn(url, scope)
        await commitTurn(b, taskId)
      },
      async (applicationName) => {
        expect(await terminateBackends(applicationName)).toBeGreaterThan(0)
        // The silence limit (3 s) and a new connection.
        await new Promise((r) => setTimeout(r, 5_500))
      }
    )
  }, 30_000)

  it("a lost notice costs latency, never an event: watched tasks are checked against the log", async () => {
    await streamSeen(200, async (url, scope, taskId) => {
      const silent = await silentWriterOn(url, scope)
      await commitTurn(silent, taskId)
    })
  })
})

await describePg("a process's own commits on a shared PostgreSQL store", () => {
  it("come back as notices that are not read from the log: blocking sends read nothing of their own tasks", async () => {
    await onFreshSchema(async (schema, scope) => {
      let reads = 0
      // The store's event log, counting reads of a task's events (what a notice not yet known would cost).
      const counting = Layer.map(Store.layerPg(schema.url, { maxConnections: 3 }), (context) => {
        const log = Context.get(context, EventLog)
        return Context.add(
          context,
          EventLog,
          EventLog.of({
            ...log,
            read: (taskId, options) =>
              Effect.suspend(() => {
                reads++
                return log.read(taskId, options)
              })
          })
        )
      })
      const echo = {
        name: "echo",
        description: "",
        version: "1",
        skills: [],
        run: (ctx: import("../../src/agent/Agent").AgentContext) =>
          ctx.artifact({ artifactId: "a", parts: [{ text: "x" }] }).pipe(Effect.as(Outcome.complete("done")))
      }
      const layer = Engine.layer({ agent: echo }).pipe(Layer.provideMerge(counting), Layer.provide(Logger.minimumLogLevel(LogLevel.None)))
      const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
      for (let i = 0; i < 20; i++) {
        const sent = await Effect.runPromise(
          Effect.flatMap(TaskEngine, (e) => e.sendAndSettle({ caller: anonymous, message: userMessage(`go ${i}`) })).pipe(Effect.provide(context))
        )
        if (sent._tag !== "Task") throw new Error("expected a task")
        expect(sent.snapshot.task.status.state).toBe("TASK_STATE_COMPLETED")
      }
      expect(reads).toBe(0)
    })
  }, 60_000)
})

await describePg("the worker limit on a shared PostgreSQL store", () => {
  it("claims never run more turns than there are workers, however many tasks one claim could take; all of them finish", async () => {
    await onFreshSchema(async (schema, scope) => {
      let running = 0
      let most = 0
      const counted = {
        name: "counted",
        description: "",
        version: "1",
        skills: [],
        run: () =>
          Effect.acquireUseRelease(
            Effect.sync(() => (most = Math.max(most, ++running))),
            () => Effect.sleep("30 millis"),
            () => Effect.sync(() => running--)
          ).pipe(Effect.as(Outcome.complete("done")))
      }
      const layer = Engine.layer({ agent: counted, maxWorkers: 3 }).pipe(
        Layer.provideMerge(Store.layerPg(schema.url, { maxConnections: 3 })),
        Layer.provide(Logger.minimumLogLevel(LogLevel.None))
      )
      const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
      const sent = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          Effect.runPromise(
            Effect.flatMap(TaskEngine, (e) => e.sendAndSettle({ caller: anonymous, message: userMessage(`go ${i}`) })).pipe(Effect.provide(context))
          )
        )
      )
      expect(sent.map((o) => (o._tag === "Task" ? o.snapshot.task.status.state : o._tag))).toEqual(Array(12).fill("TASK_STATE_COMPLETED"))
      expect(most).toBe(3)
    })
  }, 60_000)
})

await describePg("a blocking send on a shared PostgreSQL store", () => {
  const quick = {
    name: "quick",
    description: "",
    version: "1",
    skills: [],
    run: () => Effect.succeed(Outcome.complete("done", { artifacts: [{ artifactId: "a", parts: [{ text: "x" }] }] }))
  }
  const gate = Effect.runSync(Deferred.make<void>())
  const gated = { name: "gated", description: "", version: "1", skills: [], run: () => Deferred.await(gate).pipe(Effect.as(Outcome.complete())) }

  const instance = async (
    url: string,
    scope: Scope.CloseableScope,
    agent: typeof quick,
    instanceId: string,
    maxWorkers: number,
    startDelayMs = 60_000
  ) => {
    const layer = Engine.layer({ agent, maxWorkers, instanceId, startDelayMs }).pipe(
      Layer.provideMerge(Store.layerPg(url, { maxConnections: 3 })),
      Layer.provide(Logger.minimumLogLevel(LogLevel.None))
    )
    const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
    return <A, E>(effect: Effect.Effect<A, E, TaskEngine | SqlClient.SqlClient | EventLog>) => Effect.runPromise(Effect.provide(effect, context))
  }
  const settle = (text: string) =>
    Effect.flatMap(TaskEngine, (e) => e.sendAndSettle({ caller: anonymous, message: userMessage(text, `m-${randomBytes(4).toString("hex")}`) }))
  const leaseOf = (taskId: string) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) =>
        sql<{
          owner: string
          epoch: string | number
          expires_at: string | number
        }>`SELECT owner, epoch, expires_at FROM a2a_leases WHERE task_id = ${taskId}`
    )
  const commitsOf = (taskId: string) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ type: string; tx: string }>`SELECT type, tx::text AS tx FROM a2a_events WHERE task_id = ${taskId} ORDER BY version`
    )

  it("goes straight to a free worker: one commit records the task and makes its lease (epoch 1, this instance's), given up when the turn ends", async () => {
    await onFreshSchema(async (schema, scope) => {
      const run = await instance(schema.url, scope, quick, "hand", 2)
      const sent = await run(settle("go"))
      if (sent._tag !== "Task") throw new Error("expected a task")
      const taskId = sent.snapshot.task.id
      expect(sent.snapshot.task.status.state).toBe("TASK_STATE_COMPLETED")
      const events = await run(commitsOf(taskId))
      expect(events.map((e) => e.type)).toEqual(["TaskSubmitted", "TaskStarted", "ArtifactAdded", "TaskCompleted"])
      // One transaction wrote them all.
      expect(new Set(events.map((e) => e.tx)).size).toBe(1)
      await until(async () => Number((await run(leaseOf(taskId)))[0]?.expires_at ?? -1) === 0)
      expect((await run(leaseOf(taskId))).map((l) => [l.owner, Number(l.epoch)])).toEqual([["hand", 1]])
      expect(await verifyStore(schema.url)).toBe(1)
    })
  })

  it("while its agent works, the lease its first commit made is held: another instance with free workers never claims the task", async () => {
    await onFreshSchema(async (schema, scope) => {
      // A short start delay: the task is recorded (SUBMITTED, then WORKING) with its lease while the agent waits.
      const a = await instance(schema.url, scope, gated, "a", 1, 20)
      const b = await instance(schema.url, scope, gated, "b", 4, 20)
      const sending = a(settle("held"))
      await until(async () => (await b(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT task_id FROM a2a_tasks`))).length === 1)
      // Longer than an idle instance's claim poll (1 s): b looks for work at least once meanwhile.
      await new Promise((r) => setTimeout(r, 1_500))
      await Effect.runPromise(Deferred.succeed(gate, undefined))
      const sent = await sending
      if (sent._tag !== "Task") throw new Error("expected a task")
      expect(sent.snapshot.task.status.state).toBe("TASK_STATE_COMPLETED")
      const taskId = sent.snapshot.task.id
      // Started once, by "a" (a turn's start names its instance); the lease never moved (epoch 1).
      const log = await a(Effect.flatMap(EventLog, (l) => l.read(taskId)))
      expect(log.flatMap((e) => (e.event.type === "TaskStarted" ? [e.event.instanceId] : []))).toEqual(["a"])
      expect((await a(leaseOf(taskId))).map((l) => [l.owner, Number(l.epoch)])).toEqual([["a", 1]])
    })
  }, 20_000)
})
