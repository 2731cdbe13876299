import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Exit, Layer, Scope } from "effect"
import * as path from "node:path"
import { Durability } from "../../src/eventlog/Durability"
import * as Store from "../../src/eventlog/Store"
import { tempDir } from "../support/server"
import { eventLogContract } from "./contract"
import { fold } from "../../src/domain/Task"
import { EventLog } from "../../src/eventlog/EventLog"
import { projectTask } from "../../src/projections/Refold"
import { verifyStore } from "../support/verifyStore"

eventLogContract("SQLite file", () => Store.layerSqlite(path.join(tempDir(), "contract.db")))

describe("SQLite store settings", () => {
  const pragma = (name: string) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<Record<string, unknown>>(`PRAGMA ${name}`)).pipe(Effect.map((rows) => rows[0]![name]))

  it.effect("an engine's store syncs the WAL itself by default: SQLite commits with NORMAL, the Durability service syncs", () =>
    Effect.gen(function* () {
      expect(yield* pragma("journal_mode")).toBe("wal")
      expect(yield* pragma("synchronous")).toBe(1) // NORMAL: the fsync is Durability's, off the event loop
      const durability = yield* Durability
      const sql = yield* SqlClient.SqlClient
      yield* sql`UPDATE a2a_migrations SET name = name`
      yield* durability.sync
      yield* durability.settled
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "sync.db")))))

  it.effect("a tool beside an engine (not the owner) leaves syncing to SQLite: synchronous FULL", () =>
    Effect.gen(function* () {
      expect(yield* pragma("synchronous")).toBe(2) // FULL
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "sync-tool.db"), { exclusive: false }))))

  it.effect("synchronous NORMAL is an explicit choice", () =>
    Effect.gen(function* () {
      expect(yield* pragma("synchronous")).toBe(1) // NORMAL
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "sync-normal.db"), { synchronous: "normal" }))))
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
      { type: "TaskSubmitted", at: "2026-01-01T00:00:00.000Z", taskId: "t1", contextId: "c", tenant: "", owner: "", message: { messageId: "m", role: "ROLE_USER", parts: [{ text: "x" }] } },
      { type: "TaskStarted", at: "2026-01-01T00:00:01.000Z", instanceId: "i" }
    ] as const
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const appended = yield* (yield* EventLog).append("t1", 0, events, { instanceId: "i" })
          yield* projectTask(fold(events), appended)
        }).pipe(Effect.provide(Store.layerSqlite(db)))
      )
    )
    expect(await verifyStore(db)).toBe(1)
    await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE a2a_tasks SET snapshot = replace(snapshot, 'TASK_STATE_WORKING', 'TASK_STATE_COMPLETED')`).pipe(
          Effect.provide(Store.layerSqlite(db))
        )
      )
    )
    await expect(verifyStore(db)).rejects.toThrow(/read model differs/)
    await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM a2a_message_ids`).pipe(Effect.provide(Store.layerSqlite(db)))
      )
    )
    await expect(verifyStore(db)).rejects.toThrow(/message m \(version 1\) is not in the message index/)
  })
})
