import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Exit, type Layer, Option, Schedule } from "effect"
import { foldTask } from "../../src/domain/Task"
import type { TaskEvent } from "../../src/domain/TaskEvent"
import { EventLog, tailStart } from "../../src/eventlog/EventLog"
import { LeaseStore } from "../../src/eventlog/LeaseStore"
import { Pruner } from "../../src/eventlog/Pruner"
import { StoreFailure } from "../../src/eventlog/StoreFailure"
import * as Migrations from "../../src/eventlog/migrations"
import { MessageIndex } from "../../src/projections/MessageIndex"
import { inlineVersions, TaskReadModel } from "../../src/projections/TaskReadModel"
import { PushStore } from "../../src/push/PushStore"
import { agentMessage, at, userMessage } from "../support/fixtures"

type Services = EventLog | TaskReadModel | SqlClient.SqlClient | Pruner | PushStore | LeaseStore | MessageIndex
export type StoreLayer = Layer.Layer<Services, unknown>

const submitted = (taskId: string, n = 0): TaskEvent => ({
  type: "TaskSubmitted",
  at: at(n),
  taskId,
  contextId: "ctx",
  tenant: "",
  owner: "",
  message: userMessage(`hello ${taskId}`)
})
const started: TaskEvent = { type: "TaskStarted", at: at(1), instanceId: "i-1" }
const progress = (text: string): TaskEvent => ({ type: "StatusMessageAdded", at: at(2), message: agentMessage(text) })
const meta = { instanceId: "i-1" }

/**
 * The behaviour every event-log store must have. Each test gets a fresh
 * store from `makeStore` (a new SQLite file, a new PostgreSQL schema).
 */
export const eventLogContract = (name: string, makeStore: () => StoreLayer) =>
  describe(`EventLog contract: ${name}`, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, Services>) => Effect.provide(effect, makeStore())

    it.effect("appends a new stream from version 0 with gap-free versions 1, 2, 3", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const first = yield* log.append("t1", 0, [submitted("t1")], meta)
          const more = yield* log.append("t1", 1, [started, progress("a")], meta)
          expect([...first, ...more].map((e) => e.version)).toEqual([1, 2, 3])
          expect(yield* log.version("t1")).toBe(3)
          const read = yield* log.read("t1")
          expect(read.map((e) => [e.version, e.event.type])).toEqual([
            [1, "TaskSubmitted"],
            [2, "TaskStarted"],
            [3, "StatusMessageAdded"]
          ])
          expect(read[0]!.event).toEqual(submitted("t1"))
          expect(read[0]!.metadata).toEqual(meta)
          // Each row records the schema its payload was written at: the current one of its type.
          expect(read.map((e) => e.schemaVersion)).toEqual([2, 1, 1])
        })
      )
    )

    it.effect("refuses an append at a stale expected version, and writes nothing", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          yield* log.append("t1", 0, [submitted("t1")], meta)
          const stale = yield* Effect.exit(log.append("t1", 0, [submitted("t1")], meta))
          expect(Exit.isFailure(stale)).toBe(true)
          const ahead = yield* Effect.flip(log.append("t1", 5, [started], meta))
          expect(ahead).toMatchObject({ _tag: "VersionConflict", expectedVersion: 5, actualVersion: 1 })
          expect((yield* log.read("t1")).length).toBe(1)
        })
      )
    )

    it.effect("UNIQUE(task_id, version) holds even for a writer that skips the version check", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const sql = yield* SqlClient.SqlClient
          yield* log.append("t1", 0, [submitted("t1")], meta)
          const raw = yield* Effect.exit(
            sql`INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
                VALUES ('t1', 1, 'TaskStarted', 1, '{}', '{}', '2026-01-01T00:00:00.000Z')`
          )
          expect(Exit.isFailure(raw)).toBe(true)
        })
      )
    )

    it.effect("reads a version range, and the global log in commit order across tasks", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          yield* log.append("a", 0, [submitted("a")], meta)
          yield* log.append("b", 0, [submitted("b")], meta)
          yield* log.append("a", 1, [started, progress("x"), progress("y")], meta)
          expect((yield* log.read("a", { fromVersion: 2, toVersion: 3 })).map((e) => e.version)).toEqual([2, 3])
          const all = yield* log.readAll(0, 100)
          expect(all.map((e) => `${e.taskId}@${e.version}`)).toEqual(["a@1", "b@1", "a@2", "a@3", "a@4"])
          const positions = all.map((e) => e.position)
          expect([...positions].sort((x, y) => x - y)).toEqual(positions)
          const after = yield* log.readAll(all[1]!.position, 2)
          expect(after.map((e) => `${e.taskId}@${e.version}`)).toEqual(["a@2", "a@3"])
          expect(yield* log.version("nobody")).toBe(0)
          expect(yield* log.read("nobody")).toEqual([])
        })
      )
    )

    it.effect("an append inside a failed transaction leaves no trace (log and read model commit together)", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const readModel = yield* TaskReadModel
          const sql = yield* SqlClient.SqlClient
          const attempt = sql.withTransaction(
            Effect.gen(function* () {
              yield* log.append("t1", 0, [submitted("t1")], meta)
              yield* readModel.save(foldTask([submitted("t1")]))
              return yield* Effect.fail("boom")
            })
          )
          expect(Exit.isFailure(yield* Effect.exit(attempt))).toBe(true)
          expect(yield* log.version("t1")).toBe(0)
          expect(Option.isNone(yield* readModel.load("t1"))).toBe(true)
        })
      )
    )

    it.effect("every store service fails with StoreFailure, carrying the driver's error, never @effect/sql's SqlError", () =>
      run(
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const log = yield* EventLog
          const readModel = yield* TaskReadModel
          const push = yield* PushStore
          const leases = yield* LeaseStore
          const messages = yield* MessageIndex
          const pruner = yield* Pruner
          // A store that lost its tables fails every statement.
          for (const table of ["a2a_push_outbox", "a2a_push_configs", "a2a_leases", "a2a_message_ids", "a2a_events", "a2a_tasks"]) {
            yield* sql.unsafe(`DROP TABLE ${table}`)
          }
          const failures = [
            yield* Effect.flip(log.append("t1", 0, [submitted("t1")], meta)),
            yield* Effect.flip(log.read("t1")),
            yield* Effect.flip(log.version("t1")),
            yield* Effect.flip(readModel.get("t1")),
            yield* Effect.flip(readModel.list({ tenant: "", owner: "", pageSize: 10 })),
            yield* Effect.flip(push.getConfig("t1", "c")),
            yield* Effect.flip(leases.claim("me", 0, 1_000, 10)),
            yield* Effect.flip(messages.find({ tenant: "", owner: "", messageId: "m" })),
            yield* Effect.flip(pruner.count("2100-01-01T00:00:00.000Z"))
          ]
          for (const failure of failures) {
            expect(failure._tag).toBe("StoreFailure")
            expect(failure).toBeInstanceOf(StoreFailure)
            // The driver's own error, with its code or message naming the missing table.
            expect(String((failure as StoreFailure).cause)).toMatch(/a2a_|no such table|does not exist/)
          }
        })
      )
    )

    it.effect("a read-model row that is not a snapshot fails its reads with a StoreFailure naming the problem, not a crash", () =>
      run(
        Effect.gen(function* () {
          const readModel = yield* TaskReadModel
          const sql = yield* SqlClient.SqlClient
          yield* readModel.save(foldTask([submitted("t1")]))
          yield* readModel.save(foldTask([submitted("t2")]))
          yield* sql`UPDATE a2a_tasks SET snapshot = ${'{"version":"seven"}'} WHERE task_id = 't1'`
          yield* sql`UPDATE a2a_tasks SET snapshot = ${"{not json"} WHERE task_id = 't2'`
          const reads: ReadonlyArray<Effect.Effect<unknown, StoreFailure>> = [
            readModel.get("t1"),
            readModel.load("t1"),
            readModel.list({ tenant: "", owner: "", pageSize: 10 }),
            readModel.get("t2")
          ]
          for (const read of reads) {
            const failure = yield* Effect.flip(read)
            expect(failure._tag).toBe("StoreFailure")
            expect(failure.description).toBe("a stored task cannot be read")
          }
          expect((yield* Effect.flip(readModel.get("t1"))).message).toBe('a read-model row cannot be read: version: Expected number, actual "seven"')
          expect((yield* Effect.flip(readModel.get("t2"))).message).toBe("a read-model row cannot be read: its snapshot is not valid JSON")
        })
      )
    )

    it.effect("a row of an unknown type or a newer schema version is reported, not guessed at", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const sql = yield* SqlClient.SqlClient
          yield* sql`INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
                VALUES ('t1', 1, 'TaskTeleported', 1, '{}', '{}', '2026-01-01T00:00:00.000Z')`
          yield* sql`INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
                VALUES ('t2', 1, 'TaskStarted', 99, '{}', '{}', '2026-01-01T00:00:00.000Z')`
          expect(yield* Effect.flip(log.read("t1"))).toMatchObject({ _tag: "UnreadableEvent", type: "TaskTeleported" })
          expect(yield* Effect.flip(log.read("t2"))).toMatchObject({ _tag: "UnreadableEvent", schemaVersion: 99 })
        })
      )
    )

    it.effect("a TaskSubmitted written at schema 1 (before owners) is read as the current shape, owned by nobody", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const sql = yield* SqlClient.SqlClient
          const payload = JSON.stringify({ at: at(0), taskId: "old", contextId: "c", tenant: "t", message: userMessage("hi") })
          yield* sql`INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
                VALUES ('old', 1, 'TaskSubmitted', 1, ${payload}, '{"instanceId":"i-0"}', ${at(0)})`
          const [e] = yield* log.read("old")
          expect(e!.event).toMatchObject({ type: "TaskSubmitted", taskId: "old", tenant: "t", owner: "" })
          expect(foldTask([e!.event]).owner).toBe("")
        })
      )
    )

    it.effect("the read model saves, loads, lists newest first and finds the tasks that need a worker", () =>
      run(
        Effect.gen(function* () {
          const readModel = yield* TaskReadModel
          const s1 = foldTask([submitted("t1", 10)])
          const s2 = foldTask([submitted("t2", 20), started])
          const s3 = foldTask([submitted("t3", 30), { type: "TaskCanceled", at: at(31) }])
          for (const s of [s1, s2, s3]) yield* readModel.save(s)
          expect(Option.getOrThrow(yield* readModel.load("t2"))).toEqual(s2)
          // t2 started at at(1), earlier than t1's submission at(10)
          const page = yield* readModel.list({ tenant: "", owner: "", pageSize: 2 })
          expect(page.tasks.map((s) => s.task.id)).toEqual(["t3", "t1"])
          expect(page.totalSize).toBe(3)
          const next = yield* readModel.list({ tenant: "", owner: "", pageSize: 2, after: page.next! })
          expect(next.tasks.map((s) => s.task.id)).toEqual(["t2"])
          expect(next.next).toBeUndefined()
          expect((yield* readModel.active).map((s) => s.task.id)).toEqual(["t1", "t2"])
          // Several at once: those that exist, by id.
          const some = yield* readModel.getAll(["t3", "t1", "nope"])
          expect([...some.keys()].sort()).toEqual(["t1", "t3"])
          expect(some.get("t3")).toEqual(s3)
          expect((yield* readModel.getAll([])).size).toBe(0)
          // saving again updates in place
          const s1b = foldTask([started], s1)
          yield* readModel.save(s1b)
          expect(Option.getOrThrow(yield* readModel.load("t1")).version).toBe(2)
        })
      )
    )

    it.effect("a big task's row holds its head only; every read gives the whole task back from its events, as of the row's version", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const readModel = yield* TaskReadModel
          const sql = yield* SqlClient.SqlClient
          // Chunks of three artifacts in turn: each opened by its first, extended by the rest.
          const chunk = (k: number): TaskEvent => ({
            type: "ArtifactAdded",
            at: at(3),
            artifact: { artifactId: `a${k % 3}`, name: `n${k % 3}`, parts: [{ text: `chunk ${k}` }] },
            append: k >= 3,
            lastChunk: false
          })
          const events: Array<TaskEvent> = [submitted("big"), started]
          for (let i = 0; i < 2 * inlineVersions; i++) events.push(i % 2 === 0 ? progress(`step ${i}`) : chunk((i - 1) / 2))
          events.push({ type: "TaskCompleted", at: at(4), message: agentMessage("all done") })
          const small = foldTask(events.slice(0, inlineVersions))
          const big = foldTask(events)
          yield* log.append("big", 0, events, meta)
          yield* readModel.save(big)
          const stored = yield* sql<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE task_id = 'big'`
          expect(stored[0]!.snapshot).not.toContain("step 0")
          expect(stored[0]!.snapshot).not.toContain("chunk 1")
          const whole = JSON.stringify(big)
          for (const read of [
            readModel.load("big"),
            readModel.get("big"),
            readModel.getVisible("big", { tenant: "", owner: "" }),
            Effect.map(readModel.list({ tenant: "", owner: "", pageSize: 5 }), (page) => Option.fromNullable(page.tasks[0])),
            Effect.map(readModel.getAll(["big"]), (all) => Option.fromNullable(all.get("big")))
          ]) {
            // The same task, down to the order of its keys (verify compares JSON).
            expect(JSON.stringify(Option.getOrThrow(yield* read))).toBe(whole)
          }
          expect(big.task.history.length).toBe(inlineVersions + 2)
          expect(big.task.artifacts.map((a) => a.parts.length)).toEqual([6, 5, 5])

          // A row behind its log (read between the events' commit and a later row) shows the row's version.
          yield* readModel.save(foldTask(events.slice(0, inlineVersions + 4)))
          expect(JSON.stringify(Option.getOrThrow(yield* readModel.get("big")))).toBe(JSON.stringify(foldTask(events.slice(0, inlineVersions + 4))))
          // A small task's row holds the whole task.
          yield* log.append(
            "small",
            0,
            events.slice(0, inlineVersions).map((e) => (e.type === "TaskSubmitted" ? submitted("small") : e)),
            meta
          )
          const smallTask = foldTask(events.slice(0, inlineVersions).map((e) => (e.type === "TaskSubmitted" ? submitted("small") : e)))
          yield* readModel.save(smallTask)
          const smallRow = yield* sql<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE task_id = 'small'`
          expect(smallRow[0]!.snapshot).toBe(JSON.stringify(smallTask))
          expect(small.version).toBe(inlineVersions)
          // The active tasks come whole too.
          const active = (yield* readModel.active).find((s) => s.task.id === "big")
          expect(active?.task?.history.length).toBe(foldTask(events.slice(0, inlineVersions + 4)).task.history.length)
        })
      )
    )

    it.effect("a row of 64 KiB or more is parsed once per version: reads share it until the row moves on, and it stays its owner's", () =>
      run(
        Effect.gen(function* () {
          const readModel = yield* TaskReadModel
          const huge: TaskEvent = {
            type: "TaskSubmitted",
            at: at(0),
            taskId: "huge",
            contextId: "ctx",
            tenant: "",
            owner: "alice",
            message: userMessage("x".repeat(100 * 1024), "m-huge")
          }
          const v1 = foldTask([huge])
          yield* readModel.save(v1)
          const first = Option.getOrThrow(yield* readModel.get("huge"))
          expect(first).toEqual(v1)
          // The same version: the snapshot parsed by the first read, not a second parse.
          expect(Option.getOrThrow(yield* readModel.get("huge"))).toBe(first)
          expect(Option.getOrThrow(yield* readModel.getVisible("huge", { tenant: "", owner: "alice" }))).toBe(first)
          // Kept or not, another owner's view of it is the same as a missing task's.
          expect(Option.isNone(yield* readModel.getVisible("huge", { tenant: "", owner: "bob" }))).toBe(true)
          expect(Option.isNone(yield* readModel.getVisible("huge", { tenant: "other", owner: "alice" }))).toBe(true)
          // The row moves on: the next read is the new row, and that one is shared from then on.
          const v2 = foldTask([started], v1)
          yield* readModel.save(v2)
          const second = Option.getOrThrow(yield* readModel.getVisible("huge", { tenant: "", owner: "alice" }))
          expect(second.version).toBe(2)
          expect(second).toEqual(v2)
          expect(Option.getOrThrow(yield* readModel.get("huge"))).toBe(second)
          // A small row is parsed at every read.
          const small = foldTask([submitted("small")])
          yield* readModel.save(small)
          const a = Option.getOrThrow(yield* readModel.get("small"))
          expect(a).toEqual(small)
          expect(Option.getOrThrow(yield* readModel.get("small"))).not.toBe(a)
        })
      )
    )

    it.effect("several big tasks in one page are read whole, each as of its own row's version", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const readModel = yield* TaskReadModel
          const eventsOf = (id: string, steps: number): Array<TaskEvent> => [
            submitted(id),
            started,
            ...Array.from({ length: steps }, (_, i) => progress(`${id} step ${i}`))
          ]
          const ids = Array.from({ length: 10 }, (_, i) => `big${i}`)
          for (const [i, id] of ids.entries()) {
            const events = eventsOf(id, inlineVersions + i)
            yield* log.append(id, 0, events, meta)
            // The first task's row is behind its log (read between a commit of its events and its row).
            yield* readModel.save(foldTask(i === 0 ? events.slice(0, inlineVersions + 1) : events))
          }
          const expected = new Map(
            ids.map((id, i) => [id, JSON.stringify(foldTask(eventsOf(id, inlineVersions + i).slice(0, i === 0 ? inlineVersions + 1 : undefined)))])
          )
          const page = yield* readModel.list({ tenant: "", owner: "", pageSize: 20 })
          expect(page.tasks.length).toBe(ids.length)
          for (const task of page.tasks) expect(JSON.stringify(task)).toBe(expected.get(task.task.id))
          const all = yield* readModel.getAll(ids)
          for (const id of ids) expect(JSON.stringify(all.get(id))).toBe(expected.get(id))
        })
      )
    )

    it.effect("ListTasks' totalSize is exact under every filter as tasks arrive, change state and are pruned", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const readModel = yield* TaskReadModel
          const inContext = (taskId: string, contextId: string, n: number, owner = ""): TaskEvent => ({
            type: "TaskSubmitted",
            at: at(n),
            taskId,
            contextId,
            tenant: "",
            owner,
            message: userMessage(`hello ${taskId}`)
          })
          const write = (taskId: string, events: ReadonlyArray<TaskEvent>) =>
            Effect.zipRight(log.append(taskId, 0, events, meta), readModel.save(foldTask(events)))
          yield* write("a", [inContext("a", "x", 1)])
          yield* write("b", [inContext("b", "x", 2), started])
          yield* write("c", [inContext("c", "y", 3), { type: "TaskCanceled", at: at(4) }])
          yield* write("other", [inContext("other", "x", 5, "someone else")])
          const total = (filter: Partial<Parameters<typeof readModel.list>[0]> = {}) =>
            Effect.map(readModel.list({ tenant: "", owner: "", pageSize: 1, ...filter }), (p) => p.totalSize)
          expect(yield* total()).toBe(3)
          expect(yield* total({ state: "TASK_STATE_SUBMITTED" })).toBe(1)
          expect(yield* total({ state: "TASK_STATE_CANCELED" })).toBe(1)
          expect(yield* total({ contextId: "x" })).toBe(2)
          expect(yield* total({ statusTimestampAfter: at(2) })).toBe(1)
          expect(yield* total({ owner: "someone else" })).toBe(1)
          // A task moves from one state to another.
          yield* readModel.save(foldTask([inContext("a", "x", 1), started, { type: "TaskCompleted", at: at(6) }]))
          expect(yield* total()).toBe(3)
          expect(yield* total({ state: "TASK_STATE_SUBMITTED" })).toBe(0)
          expect(yield* total({ state: "TASK_STATE_COMPLETED" })).toBe(1)
          expect(yield* total({ statusTimestampAfter: at(2) })).toBe(2)
          // Pruned tasks are no longer counted.
          expect(yield* (yield* Pruner).prune(at(10), 100)).toBe(2)
          expect(yield* total()).toBe(1)
          expect(yield* total({ state: "TASK_STATE_CANCELED" })).toBe(0)
          expect(yield* total({ state: "TASK_STATE_WORKING" })).toBe(1)
        })
      )
    )

    it.effect(
      "pruning removes whole finished tasks older than the cutoff (events, row, push configs, deliveries, message keys) and nothing else",
      () =>
        run(
          Effect.gen(function* () {
            const log = yield* EventLog
            const readModel = yield* TaskReadModel
            const push = yield* PushStore
            const write = (taskId: string, events: ReadonlyArray<TaskEvent>) =>
              Effect.gen(function* () {
                const appended = yield* log.append(taskId, 0, events, meta)
                yield* readModel.save(foldTask(events))
                yield* push.saveConfig({ taskId, id: "c", tenant: "", url: "https://example.com/", format: "1.0", createdAt: at(0) })
                yield* push.enqueue(taskId, "ctx", appended, 0)
                yield* index.claim({ key: { tenant: "", owner: "", messageId: `m-${taskId}` }, accepted: { taskId, version: 1 }, at: 0 })
              })
            const index = yield* MessageIndex
            yield* write("old-done", [submitted("old-done", 1), { type: "TaskCanceled", at: at(2) }])
            yield* write("old-working", [submitted("old-working", 1), started])
            yield* write("new-done", [submitted("new-done", 50), { type: "TaskCanceled", at: at(60) }])
            const pruner = yield* Pruner
            expect(yield* pruner.prune(at(30), 100)).toBe(1)
            expect(yield* log.read("old-done")).toEqual([])
            expect(Option.isNone(yield* readModel.load("old-done"))).toBe(true)
            expect(Option.isNone(yield* push.getConfig("old-done", "c"))).toBe(true)
            expect(Option.isNone(yield* index.find({ tenant: "", owner: "", messageId: "m-old-done" }))).toBe(true)
            expect(Option.isSome(yield* index.find({ tenant: "", owner: "", messageId: "m-new-done" }))).toBe(true)
            expect((yield* push.due(Number.MAX_SAFE_INTEGER, 100)).map((d) => d.taskId).sort()).toEqual(["new-done", "old-working"])
            // Unfinished tasks are never pruned, however old; newer finished ones wait for their time.
            expect((yield* log.read("old-working")).length).toBe(2)
            expect((yield* log.read("new-done")).length).toBe(2)
            expect(yield* pruner.prune(at(30), 100)).toBe(0)
          })
        )
    )

    it.effect("pruning by state removes only terminal tasks in the states named", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          const readModel = yield* TaskReadModel
          const write = (taskId: string, events: ReadonlyArray<TaskEvent>) =>
            Effect.zipRight(log.append(taskId, 0, events, meta), readModel.save(foldTask(events)))
          yield* write("canceled", [submitted("canceled", 1), { type: "TaskCanceled", at: at(2) }])
          yield* write("completed", [submitted("completed", 1), started, { type: "TaskCompleted", at: at(2) }])
          yield* write("working", [submitted("working", 1), started])
          const pruner = yield* Pruner
          // A non-terminal state named is simply never pruned.
          expect(yield* pruner.prune(at(30), 100, ["TASK_STATE_WORKING"])).toBe(0)
          expect(yield* pruner.prune(at(30), 100, ["TASK_STATE_COMPLETED", "TASK_STATE_WORKING"])).toBe(1)
          expect(yield* log.read("completed")).toEqual([])
          expect((yield* log.read("canceled")).length).toBe(2)
          expect((yield* log.read("working")).length).toBe(2)
        })
      )
    )

    // Live clock: the wait for PostgreSQL to show a commit sleeps between tries, which the test clock of
    // `it.effect` would never let end (the test hung whenever the first try came too early).
    it.live("tail follows the whole log with a cursor: everything once, in commit order, then nothing until more commits", () =>
      run(
        Effect.gen(function* () {
          const log = yield* EventLog
          yield* log.append("t1", 0, [submitted("t1")], meta)
          yield* log.append("t2", 0, [submitted("t2")], meta)
          // On PostgreSQL the tail shows a commit once no older transaction is open anywhere in the
          // cluster (other tests run beside this one), so new events may take a moment to appear.
          const visible = (cursor: typeof tailStart, count: number) =>
            log.tail(cursor, 10).pipe(
              Effect.filterOrFail(
                (page) => page.events.length >= count,
                () => "not yet"
              ),
              Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds"))),
              // Still short: the page as it is, for the assertion to show.
              Effect.orElse(() => log.tail(cursor, 10))
            )
          const first = yield* visible(tailStart, 2)
          expect(first.events.map((e) => e.taskId)).toEqual(["t1", "t2"])
          expect((yield* log.tail(first.cursor, 10)).events).toEqual([])
          yield* log.append("t1", 1, [started], meta)
          const next = yield* visible(first.cursor, 1)
          expect(next.events.map((e) => [e.taskId, e.version])).toEqual([["t1", 2]])
          const paged = yield* log.tail(tailStart, 1)
          expect(paged.events.map((e) => e.taskId)).toEqual(["t1"])
          expect((yield* log.tail(paged.cursor, 10)).events.map((e) => [e.taskId, e.version])).toEqual([
            ["t2", 1],
            ["t1", 2]
          ])
        })
      )
    )

    describe("message index (idempotency)", () => {
      const key = { tenant: "t", owner: "alice", messageId: "m-1" }
      const claimOf = (k: typeof key, taskId: string, at: number) => ({ key: k, accepted: { taskId, version: 1 }, at })

      it.effect("a key is claimed once; the second claim writes nothing and find names the first task", () =>
        run(
          Effect.gen(function* () {
            const index = yield* MessageIndex
            expect(yield* index.claim(claimOf(key, "a", 1_000))).toBe(true)
            expect(yield* index.claim(claimOf(key, "b", 2_000))).toBe(false)
            expect(yield* index.find(key)).toEqual(Option.some({ taskId: "a", version: 1 }))
            // Tenant and owner are part of the key.
            expect(yield* index.claim(claimOf({ ...key, owner: "bob" }, "c", 1_000))).toBe(true)
            expect(yield* index.claim(claimOf({ ...key, tenant: "u" }, "d", 1_000))).toBe(true)
            expect(Option.isNone(yield* index.find({ ...key, messageId: "m-2" }))).toBe(true)
          })
        )
      )

      it.effect("a key expires: found only since its time, claimed over once expired, deleted by expire oldest first", () =>
        run(
          Effect.gen(function* () {
            const index = yield* MessageIndex
            expect(yield* index.claim(claimOf(key, "a", 1_000))).toBe(true)
            expect(yield* index.claim(claimOf({ ...key, messageId: "m-2" }, "a", 3_000))).toBe(true)
            // Found by a look-up since its time or before; passed over by one after it.
            expect(yield* index.find(key, 1_000)).toEqual(Option.some({ taskId: "a", version: 1 }))
            expect(Option.isNone(yield* index.find(key, 1_001))).toBe(true)
            // A live key stays; an expired one is taken over, by the new task at its time.
            expect(yield* index.claim(claimOf(key, "b", 5_000), 1_000)).toBe(false)
            expect(yield* index.claim(claimOf(key, "b", 5_000), 1_001)).toBe(true)
            expect(yield* index.find(key, 5_000)).toEqual(Option.some({ taskId: "b", version: 1 }))
            // Expiry deletes what is older than the cutoff, oldest first, up to the limit.
            expect(yield* index.claim(claimOf({ ...key, messageId: "m-3" }, "c", 2_000))).toBe(true)
            expect(yield* index.expire(4_000, 1)).toBe(1)
            expect(Option.isNone(yield* index.find({ ...key, messageId: "m-3" }))).toBe(true)
            expect(Option.isSome(yield* index.find({ ...key, messageId: "m-2" }))).toBe(true)
            expect(yield* index.expire(4_000, 10)).toBe(1)
            expect(Option.isNone(yield* index.find({ ...key, messageId: "m-2" }))).toBe(true)
            expect(yield* index.expire(4_000, 10)).toBe(0)
            expect(Option.isSome(yield* index.find(key))).toBe(true)
          })
        )
      )

      it.effect("a claim inside a rolled-back transaction leaves nothing behind", () =>
        run(
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            const index = yield* MessageIndex
            yield* Effect.exit(sql.withTransaction(Effect.zipRight(index.claim(claimOf(key, "a", 1_000)), Effect.fail("abort"))))
            expect(Option.isNone(yield* index.find(key))).toBe(true)
          })
        )
      )

      it.effect("the migration fills the index from a log written before it existed", () =>
        run(
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            const log = yield* EventLog
            const readModel = yield* TaskReadModel
            const events: ReadonlyArray<TaskEvent> = [
              submitted("old"),
              started,
              { type: "InputRequested", at: at(3), message: agentMessage("?") },
              { type: "InputProvided", at: at(4), message: userMessage("answer", "m-answer") }
            ]
            yield* log.append("old", 0, events, meta)
            yield* readModel.save(foldTask(events))
            // As if the store predated migration 6: no index, no record of it (nor of the later ones).
            yield* sql`DROP TABLE a2a_message_ids`
            yield* sql`DELETE FROM a2a_migrations WHERE migration_id >= 6`
            yield* Migrations.run
            const index = yield* MessageIndex
            const owner = { tenant: "", owner: "" }
            expect(yield* index.find({ ...owner, messageId: userMessage("hello old").messageId })).toEqual(Option.some({ taskId: "old", version: 1 }))
            expect(yield* index.find({ ...owner, messageId: "m-answer" })).toEqual(Option.some({ taskId: "old", version: 4 }))
            // Each key's time is its event's: the answer's is at(4), so a look-up since a moment later passes it over.
            expect(yield* index.find({ ...owner, messageId: "m-answer" }, Date.parse(at(4)))).toEqual(Option.some({ taskId: "old", version: 4 }))
            expect(Option.isNone(yield* index.find({ ...owner, messageId: "m-answer" }, Date.parse(at(4)) + 1))).toBe(true)
          })
        )
      )
    })

    describe("work leases", () => {
      const states = (readModel: typeof TaskReadModel.Service) =>
        Effect.forEach(
          [
            ["old-submitted", [submitted("old-submitted", 1)]],
            ["working", [submitted("working", 2), started]],
            ["waiting", [submitted("waiting", 3), started, { type: "InputRequested", at: at(4), message: agentMessage("?") }]],
            ["done", [submitted("done", 5), { type: "TaskCanceled", at: at(6) }]],
            ["new-submitted", [submitted("new-submitted", 10)]]
          ] as const,
          ([, events]) => readModel.save(foldTask(events as ReadonlyArray<TaskEvent>)),
          { discard: true }
        )

      it.effect("claims take the tasks that need a worker (a lost turn first, then SUBMITTED), each once, from epoch 1", () =>
        run(
          Effect.gen(function* () {
            yield* states(yield* TaskReadModel)
            const leases = yield* LeaseStore
            // The WORKING task whose worker is gone goes first: its turn was admitted before any waiting one.
            expect([...(yield* leases.claim("i1", 1_000, 100, 2))].sort((a, b) => a.taskId.localeCompare(b.taskId))).toEqual([
              { taskId: "old-submitted", epoch: 1 },
              { taskId: "working", epoch: 1 }
            ])
            expect(yield* leases.claim("i2", 1_000, 100, 10)).toEqual([{ taskId: "new-submitted", epoch: 1 }])
            expect(yield* leases.claim("i2", 1_050, 100, 10)).toEqual([])
          })
        )
      )

      it.effect("a claim's limit counts only tasks it can take: leased ones are passed over, the next in line taken", () =>
        run(
          Effect.gen(function* () {
            yield* states(yield* TaskReadModel)
            const leases = yield* LeaseStore
            expect(yield* leases.claim("i1", 1_000, 100, 1)).toEqual([{ taskId: "working", epoch: 1 }])
            // The lost turn is leased now: a claim of one takes the oldest SUBMITTED, then the next.
            expect(yield* leases.claim("i2", 1_010, 100, 1)).toEqual([{ taskId: "old-submitted", epoch: 1 }])
            expect(yield* leases.claim("i2", 1_020, 100, 1)).toEqual([{ taskId: "new-submitted", epoch: 1 }])
            // Once the first lease expires, that task is claimable again, at its next epoch.
            expect(yield* leases.claim("i3", 1_101, 100, 3)).toEqual([{ taskId: "working", epoch: 2 }])
          })
        )
      )

      it.effect("a live lease is renewed by its owner; an expired one is taken over at the next epoch, and the old owner is fenced off", () =>
        run(
          Effect.gen(function* () {
            yield* states(yield* TaskReadModel)
            const leases = yield* LeaseStore
            yield* leases.claim("i1", 1_000, 100, 10)
            expect((yield* leases.renew("i1", ["working"], 1_090, 100)).map((l) => l.taskId)).toEqual(["working"])
            // Renewed until 1_190: not claimable at 1_150, claimable at 1_200.
            expect((yield* leases.claim("i2", 1_150, 100, 10)).map((l) => l.taskId)).not.toContain("working")
            const taken = yield* leases.claim("i2", 1_200, 100, 10)
            expect(taken).toContainEqual({ taskId: "working", epoch: 2 })
            expect(yield* leases.renew("i1", ["working"], 1_210, 100)).toEqual([])
            // An expired lease is not revived by a late renewal, even when nobody took it over.
            expect(yield* leases.renew("i2", ["new-submitted"], 1_400, 100)).toEqual([])
            expect(yield* leases.holds("i1", { taskId: "working", epoch: 1 }, 1_210)).toBe(false)
            expect(yield* leases.holds("i2", { taskId: "working", epoch: 2 }, 1_210)).toBe(true)
            expect(yield* leases.holds("i2", { taskId: "working", epoch: 2 }, 1_301)).toBe(false)
          })
        )
      )

      it.effect("a released lease is claimable at once and keeps counting epochs", () =>
        run(
          Effect.gen(function* () {
            yield* states(yield* TaskReadModel)
            const leases = yield* LeaseStore
            const [first] = yield* leases.claim("i1", 1_000, 60_000, 1)
            yield* leases.release("i1", [first!])
            expect(yield* leases.holds("i1", first!, 1_001)).toBe(false)
            expect(yield* leases.claim("i2", 1_001, 60_000, 1)).toEqual([{ taskId: first!.taskId, epoch: 2 }])
            // A stale release (old epoch) changes nothing.
            yield* leases.release("i1", [first!])
            expect(yield* leases.holds("i2", { taskId: first!.taskId, epoch: 2 }, 1_002)).toBe(true)
            // Several at once: each of the owner's at its epoch, nothing else.
            const two = yield* leases.claim("i1", 1_003, 60_000, 2)
            expect(two).toHaveLength(2)
            yield* leases.release("i1", [...two, { taskId: first!.taskId, epoch: 2 }])
            for (const lease of two) expect(yield* leases.holds("i1", lease, 1_004)).toBe(false)
            expect(yield* leases.holds("i2", { taskId: first!.taskId, epoch: 2 }, 1_004)).toBe(true)
            yield* leases.release("i1", [])
          })
        )
      )

      it.effect("a sleeping task (durable timer) is claimed only once its timer is due, soonest first, and never as an orphan before", () =>
        run(
          Effect.gen(function* () {
            const readModel = yield* TaskReadModel
            const sleeping = (id: string, n: number, dueAt: string): ReadonlyArray<TaskEvent> => [
              submitted(id, n),
              started,
              { type: "TimerStarted", at: at(2), turn: 1, sequence: 1, dueAt }
            ]
            yield* readModel.save(foldTask(sleeping("sleeps-late", 1, at(40))))
            yield* readModel.save(foldTask(sleeping("sleeps-early", 2, at(30))))
            // A turn that moved past its timer (a step recorded after it) is running, not sleeping: an orphan when unleased.
            yield* readModel.save(
              foldTask([...sleeping("moved-on", 3, at(50)), { type: "StepCompleted", at: at(3), turn: 1, sequence: 2, name: "s" }])
            )
            const sql = yield* SqlClient.SqlClient
            const wakeAt = yield* sql<{ task_id: string; wake_at: number | string | null }>`SELECT task_id, wake_at FROM a2a_tasks ORDER BY task_id`
            expect(wakeAt.map((r) => [r.task_id, r.wake_at === null ? null : Number(r.wake_at)])).toEqual([
              ["moved-on", null],
              ["sleeps-early", Date.parse(at(30))],
              ["sleeps-late", Date.parse(at(40))]
            ])
            const leases = yield* LeaseStore
            expect(yield* leases.claim("i1", Date.parse(at(20)), 60_000, 10)).toEqual([{ taskId: "moved-on", epoch: 1 }])
            expect(yield* leases.claim("i1", Date.parse(at(29)), 60_000, 10)).toEqual([])
            expect(yield* leases.claim("i1", Date.parse(at(45)), 100, 1)).toEqual([{ taskId: "sleeps-early", epoch: 1 }])
            expect(yield* leases.claim("i2", Date.parse(at(45)), 100, 10)).toEqual([{ taskId: "sleeps-late", epoch: 1 }])
            // Woken (its timer fired), the task is an ordinary running one: wake_at is cleared.
            yield* readModel.save(
              foldTask([...sleeping("sleeps-late", 1, at(40)), { type: "TimerFired", at: at(45), sequence: 1, instanceId: "i2" }])
            )
            const after = yield* sql<{ wake_at: number | string | null }>`SELECT wake_at FROM a2a_tasks WHERE task_id = 'sleeps-late'`
            expect(after[0]?.wake_at).toBeNull()
          })
        )
      )

      it.effect(
        "claims take turns across tenants: a tenant's backlog does not hold back another's task; each tenant's go by priority, then age",
        () =>
          run(
            Effect.gen(function* () {
              const readModel = yield* TaskReadModel
              const ofTenant = (id: string, tenant: string, n: number, priority?: number): TaskEvent => ({
                type: "TaskSubmitted",
                at: at(n),
                taskId: id,
                contextId: `c-${id}`,
                tenant,
                owner: "",
                message: { ...userMessage(`hello ${id}`), ...(priority !== undefined ? { metadata: { "a2a-ledger/priority": priority } } : {}) }
              })
              // acme's ten tasks are all older than globex's one; acme's last asks for a higher priority.
              for (let i = 0; i < 10; i++) yield* readModel.save(foldTask([ofTenant(`acme-${i}`, "acme", i, i === 9 ? 5 : undefined)]))
              yield* readModel.save(foldTask([ofTenant("globex-0", "globex", 20)]))
              const leases = yield* LeaseStore
              const first = (yield* leases.claim("i1", 1_000, 60_000, 2)).map((l) => l.taskId).sort()
              expect(first).toEqual(["acme-9", "globex-0"])
              // With globex's done, the rest of acme's come oldest first; a claim fills all it asks for.
              expect((yield* leases.claim("i1", 1_000, 60_000, 3)).map((l) => l.taskId).sort()).toEqual(["acme-0", "acme-1", "acme-2"])
              // A tenant at its running limit is passed over (its tasks wait); another is not.
              yield* readModel.save(foldTask([ofTenant("globex-1", "globex", 21)]))
              const passed = yield* leases.claim("i1", 1_000, 60_000, 10, { tenants: ["acme"], principals: [] })
              expect(passed.map((l) => l.taskId)).toEqual(["globex-1"])
              yield* readModel.save(foldTask([ofTenant("globex-2", "globex", 22)]))
              expect(yield* leases.claim("i1", 1_000, 60_000, 10, { tenants: [], principals: [{ tenant: "globex", principal: "" }] })).toHaveLength(6)
              // What runs: the live leases, by tenant and principal.
              const running = [...(yield* leases.running(1_000))].sort((a, b) => a.tenant.localeCompare(b.tenant))
              expect(running).toEqual([
                { tenant: "acme", principal: "", running: 10 },
                { tenant: "globex", principal: "", running: 2 }
              ])
            })
          )
      )

      it.effect("claimers racing for the same tasks never get the same task", () =>
        run(
          Effect.gen(function* () {
            const readModel = yield* TaskReadModel
            const ids = Array.from({ length: 60 }, (_, i) => `race-${String(i).padStart(2, "0")}`)
            yield* Effect.forEach(ids, (id, i) => readModel.save(foldTask([submitted(id, i)])), { discard: true })
            const leases = yield* LeaseStore
            const claims = yield* Effect.forEach(
              ["a", "b", "c"],
              (owner) =>
                Effect.map(
                  Effect.forEach(Array.from({ length: 10 }), () => leases.claim(owner, 5_000, 60_000, 3)),
                  (r) => r.flat()
                ),
              { concurrency: "unbounded" }
            )
            const all = claims.flat().map((l) => l.taskId)
            expect(new Set(all).size).toBe(all.length)
            expect(all.length).toBe(60)
          })
        )
      )
    })
  })
