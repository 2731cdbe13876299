import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Exit, Layer, Scope } from "effect"
import * as path from "node:path"
import { Durability } from "../../src/eventlog/Durability"
import * as Store from "../../src/eventlog/Store"
import { tempDir } from "../support/server"
import { eventLogContract } from "./contract"
import { foldTask } from "../../src/domain/Task"
import { EventLog } from "../../src/eventlog/EventLog"
import { projectTask } from "../../src/projections/Refold"
import { verifyStore } from "../support/verifyStore"
import * as Migrations from "../../src/eventlog/migrations"
import { TaskReadModel } from "../../src/projections/TaskReadModel"

eventLogContract("SQLite file", () => Store.layerSqlite(path.join(tempDir(), "contract.db")))

describe("SQLite store settings", () => {
  const pragma = (name: string) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Record<string, unknown>>(`PRAGMA ${name}`)).pipe(Effect.map((rows) => rows[0]![name]))

  it.effect("an engine's store syncs the WAL itself by default: SQLite commits with NORMAL, the Durability service syncs", () =>
    Effect.gen(function* () {
      expect(yield* pragma("journal_mode")).toBe("wal")
      expect(yield* pragma("synchronous")).toBe(1) // NORMAL: the writer's thread syncs the WAL itself
      const durability = yield* Durability
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE a2a_migrations SET name = name`
      yield* durability.sync
      yield* durability.settled
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "sync.db"))))
  )

  it.effect("a tool beside an engine (not the owner) leaves syncing to SQLite: synchronous FULL", () =>
    Effect.gen(function* () {
      expect(yield* pragma("synchronous")).toBe(2) // FULL
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "sync-tool.db"), { exclusive: false })))
  )

  it.effect("synchronous NORMAL is an explicit choice", () =>
    Effect.gen(function* () {
      expect(yield* pragma("synchronous")).toBe(1) // NORMAL
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "sync-normal.db"), { synchronous: "normal" })))
  )
})

describe("one engine per SQLite file", () => {
  it("a second owner of the same file is refused at once with a clear message; a released file can be owned again", async () => {
    const db = path.join(tempDir(), "owned.db")
    const scope = Effect.runSync(Scope.make())
    await Effect.runPromise(Layer.buildWithScope(Store.layerSqlite(db), scope))
    const t0 = Date.now()
    const second = await Effect.runPromise(Effect.flip(Effect.scoped(Layer.build(Store.layerSqlite(db)))))
    expect(Date.now() - t0).toBeLessThan(2_000)
    expect(second).toMatchObject({ _tag: "StoreInUse" })
    expect((second as { message: string }).message).toMatch(/another a2a-ledger process is running on .*owned\.db/)
    // A reader that does not claim ownership may open it meanwhile.
    await Effect.runPromise(Effect.scoped(Layer.build(Store.layerSqlite(db, { exclusive: false }))))
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await Effect.runPromise(Effect.scoped(Layer.build(Store.layerSqlite(db))))
  })
})

describe("the read-model check used by the end-to-end suites", () => {
  it("passes on a consistent store and catches a tampered row", async () => {
    const db = path.join(tempDir(), "verify.db")
    const events = [
      {
        type: "TaskSubmitted",
        // Within the idempotency window, so verify expects the message's key.
        at: new Date(Date.now() - 2_000).toISOString(),
        taskId: "t1",
        contextId: "c",
        tenant: "",
        owner: "",
        message: { messageId: "m", role: "ROLE_USER", parts: [{ text: "x" }] }
      },
      { type: "TaskStarted", at: new Date(Date.now() - 1_000).toISOString(), instanceId: "i" }
    ] as const
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const appended = yield* (yield* EventLog).append("t1", 0, events, { instanceId: "i" })
          yield* projectTask(foldTask(events), appended)
        }).pipe(Effect.provide(Store.layerSqlite(db)))
      )
    )
    expect(await verifyStore(db)).toBe(1)
    await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql`UPDATE a2a_tasks SET snapshot = replace(snapshot, 'TASK_STATE_WORKING', 'TASK_STATE_COMPLETED')`
        ).pipe(Effect.provide(Store.layerSqlite(db)))
      )
    )
    await expect(verifyStore(db)).rejects.toThrow(/read model differs/)
    await Effect.runPromise(
      Effect.scoped(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM a2a_message_ids`).pipe(Effect.provide(Store.layerSqlite(db))))
    )
    await expect(verifyStore(db)).rejects.toThrow(/message m \(version 1\) is not in the message index/)
  })
})

describe("ListTasks at scale on SQLite (counts kept by triggers)", () => {
  /** `n` finished tasks of one owner, a second apart from 2026-01-01, every fifth one FAILED, written in one statement. */
  const bulk = (n: number) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.unsafe(`WITH RECURSIVE i(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM i WHERE k + 1 < ${n}),
        t AS (SELECT 'bulk-' || k AS id, CASE WHEN k % 5 = 4 THEN 'TASK_STATE_FAILED' ELSE 'TASK_STATE_COMPLETED' END AS state,
          strftime('%Y-%m-%dT%H:%M:%S.000Z', '2026-01-01', '+' || k || ' seconds') AS ts FROM i)
        INSERT INTO a2a_tasks (task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot)
        SELECT id, '', '', 'ctx', state, 2, ts, ts, json_object('version', 2, 'state', state, 'machine', json_object('artifacts', json_object()),
          'tenant', '', 'owner', '', 'createdAt', ts, 'task', json_object('id', id, 'contextId', 'ctx', 'status', json_object('state', state, 'timestamp', ts),
            'artifacts', json_array(), 'history', json_array()))
        FROM t`)
    )
  const count = (where: string) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<{ n: number }>(`SELECT COUNT(*) AS n FROM a2a_tasks WHERE ${where}`)).pipe(
      Effect.map((r) => r[0]!.n)
    )
  const second = (k: number) => new Date(Date.UTC(2026, 0, 1) + k * 1000).toISOString()

  it.effect(
    "totalSize matches a count of the rows for every filter, whether the time window holds few rows, few rows are before it, or neither",
    () =>
      Effect.gen(function* () {
        yield* bulk(25_000)
        const readModel = yield* TaskReadModel
        const total = (filter: Partial<Parameters<typeof readModel.list>[0]> = {}) =>
          Effect.map(readModel.list({ tenant: "", owner: "", pageSize: 1, ...filter }), (p) => p.totalSize)
        expect(yield* total()).toBe(25_000)
        expect(yield* total({ state: "TASK_STATE_FAILED" })).toBe(5_000)
        expect(yield* total({ contextId: "ctx" })).toBe(25_000)
        // few in the window; few before it; many on both sides
        for (const k of [24_000, 3_000, 12_000]) {
          expect(yield* total({ statusTimestampAfter: second(k) })).toBe(yield* count(`status_timestamp >= '${second(k)}'`))
          expect(yield* total({ statusTimestampAfter: second(k), state: "TASK_STATE_FAILED" })).toBe(
            yield* count(`status_timestamp >= '${second(k)}' AND state = 'TASK_STATE_FAILED'`)
          )
        }
        expect(yield* total({ statusTimestampAfter: second(3_000) })).toBe(22_000)
      }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "scale.db"))))
  )

  it.effect("the migration fills the counts from the tasks of a store that predates it", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* bulk(50)
      // As if the store predated migration 7 (and the later ones).
      yield* sql`DROP TABLE a2a_task_counts`
      yield* sql`DELETE FROM a2a_migrations WHERE migration_id >= 7`
      yield* Migrations.run
      const page = yield* (yield* TaskReadModel).list({ tenant: "", owner: "", pageSize: 1, state: "TASK_STATE_COMPLETED" })
      expect(page.totalSize).toBe(40)
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "counts-migration.db"))))
  )
})
