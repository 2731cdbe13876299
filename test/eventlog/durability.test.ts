import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Exit, Layer, Logger, LogLevel } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Outcome } from "../../src/agent/Agent"
import { StoreFailure } from "../../src/engine/errors"
import { TaskWriter } from "../../src/engine/TaskWriter"
import { anonymous, TaskEngine } from "../../src/engine/TaskEngine"
import { Durability } from "../../src/eventlog/Durability"
import * as Store from "../../src/eventlog/Store"
import * as Embedded from "../../src/layers/Embedded"
import { userMessage } from "../support/fixtures"
import { tempDir } from "../support/server"

const submit = (id: string) => ({ type: "Submit", taskId: id, contextId: "c", tenant: "", owner: "", message: userMessage(id) }) as const

describe("Durability: the engine syncs SQLite's WAL itself, off the event loop", () => {
  it.effect("many syncs asked for at once are all answered, and settled is immediate once they are", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const durability = yield* Durability
      yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => Effect.zipRight(sql`UPDATE a2a_migrations SET name = name WHERE migration_id = ${i}`, durability.sync),
        { concurrency: "unbounded", discard: true }
      )
      yield* durability.settled
    }).pipe(Effect.provide(Store.layerSqlite(path.join(tempDir(), "syncs.db"))))
  )

  it.effect("a commit whose WAL cannot be synced is not acknowledged: the writer answers StoreFailure, naming the file gone", () => {
    const db = path.join(tempDir(), "unsynced.db")
    const idle = { name: "idle", description: "", version: "1", skills: [], run: () => Effect.never.pipe(Effect.as(Outcome.complete())) }
    return Effect.gen(function* () {
      const writer = yield* TaskWriter
      yield* writer.commit("before", submit("before"))
      // SQLite keeps writing to the WAL it has open; a sync of the file at the WAL's path can no longer be done.
      fs.rmSync(`${db}-wal`)
      const exit = yield* Effect.exit(writer.commit("after", submit("after")))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(failure).toBeInstanceOf(StoreFailure)
        expect((failure as StoreFailure).description).toBe("SQLite: the database file was removed or replaced while the server ran")
      }
      expect((yield* writer.health).ok).toBe(false)
    }).pipe(Effect.provide(Embedded.layerSqlite({ agent: idle, db, maxWorkers: 0 }).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.None)))))
  })

  it.effect("a send whose new task cannot be synced is not acknowledged, though its turn starts at the commit", () => {
    const db = path.join(tempDir(), "unsynced-send.db")
    const idle = { name: "idle", description: "", version: "1", skills: [], run: () => Effect.never.pipe(Effect.as(Outcome.complete())) }
    return Effect.gen(function* () {
      const engine = yield* TaskEngine
      const first = yield* engine.send({ caller: anonymous, message: userMessage("before") })
      expect(first._tag).toBe("Task")
      fs.rmSync(`${db}-wal`)
      const exit = yield* Effect.exit(engine.send({ caller: anonymous, message: userMessage("after") }))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(exit.cause._tag === "Fail" ? exit.cause.error : undefined).toBeInstanceOf(StoreFailure)
    }).pipe(Effect.provide(Embedded.layerSqlite({ agent: idle, db }).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.None)))))
  })
})
