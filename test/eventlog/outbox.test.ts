import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, type Layer, Option } from "effect"
import * as path from "node:path"
import { foldTask } from "../../src/domain/Task"
import { isJournalEvent, type TaskEvent, type VersionedEvent } from "../../src/domain/TaskEvent"
import { PgCommits } from "../../src/eventlog/PgCommits"
import { type CommitPlan, eventRow, SqliteCommits } from "../../src/eventlog/SqliteCommits"
import * as Store from "../../src/eventlog/Store"
import type { StoreServices } from "../../src/eventlog/Store"
import { taskRow } from "../../src/projections/TaskReadModel"
import type { PushConfig } from "../../src/push/PushConfig"
import { configRow, PushStore } from "../../src/push/PushStore"
import { agentMessage, at, userMessage } from "../support/fixtures"
import { describePg, pgStoreLayer } from "../support/pg"
import { tempDir } from "../support/server"

/**
 * The step journal is told to no webhook (docs/events.md): a commit of a task with push configs queues
 * one delivery per event a client is shown, and none for the journal's (steps and timers), on every write
 * path: the SQLite writer's thread, PostgreSQL's batch function (migration 0011) and the
 * store's own `enqueue`.
 */
const events: ReadonlyArray<TaskEvent> = [
  { type: "TaskSubmitted", at: at(0), taskId: "t1", contextId: "c1", tenant: "", owner: "", message: userMessage("hi") },
  { type: "TaskStarted", at: at(1), instanceId: "i-1" },
  { type: "StatusMessageAdded", at: at(2), message: agentMessage("Step 1") },
  { type: "StepCompleted", at: at(3), turn: 1, sequence: 1, name: "announce 1" },
  { type: "StepAttemptFailed", at: at(4), turn: 1, sequence: 2, name: "load", attempt: 1, error: "boom", retryAt: at(5) },
  { type: "StepCompleted", at: at(5), turn: 1, sequence: 2, name: "load", result: [1, 2] },
  { type: "TimerStarted", at: at(5), turn: 1, sequence: 3, dueAt: at(6) },
  { type: "TimerFired", at: at(6), sequence: 3, instanceId: "i-2" },
  { type: "TaskCompleted", at: at(6) }
]
const shown = events.flatMap((e, i) => (isJournalEvent(e) ? [] : [i + 1]))

const config = (taskId: string): PushConfig => ({ taskId, id: "hook", tenant: "", url: "https://example.com/hook", format: "1.0", createdAt: at(0) })

const plan = (taskId: string): CommitPlan => {
  const stamped = events.map((e) => (e.type === "TaskSubmitted" ? { ...e, taskId } : e))
  return {
    taskId,
    expectedVersion: 0,
    events: stamped.map(eventRow),
    metadata: JSON.stringify({ instanceId: "i-1" }),
    row: taskRow(foldTask(stamped)),
    pushConfig: configRow(config(taskId)),
    now: Date.parse(at(6)),
    at: at(6)
  }
}

const queuedVersions = (taskId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ version: number | string }>`SELECT version FROM a2a_push_outbox WHERE task_id = ${taskId}`).pipe(
    Effect.map((rows) => rows.map((r) => Number(r.version)).sort((a, b) => a - b))
  )

/** The batch port of the store under test: the SQLite writer's thread, or PostgreSQL's batch function. */
const writeBatch = (p: CommitPlan) =>
  Effect.gen(function* () {
    // (Both are in the store layer's context, though its type names neither.)
    const sqlite = yield* Effect.serviceOption(SqliteCommits)
    const pg = yield* Effect.serviceOption(PgCommits)
    if (Option.isSome(sqlite)) return (yield* sqlite.value.write([p])).outcomes
    if (Option.isSome(pg)) return (yield* pg.value.write([p])).outcomes
    return yield* Effect.dieMessage("the store has no batch port")
  })

const suite = (layer: () => Layer.Layer<StoreServices, unknown>) => {
  it.effect("the writer's batch queues deliveries for the events a client is shown, none for the journal's", () =>
    Effect.gen(function* () {
      const outcomes = yield* writeBatch(plan("t-batch"))
      expect(outcomes).toEqual([{ _tag: "Written", queued: shown.length }])
      expect(yield* queuedVersions("t-batch")).toEqual(shown)
    }).pipe(Effect.provide(layer()))
  )

  it.effect("the store's enqueue skips the journal's events too", () =>
    Effect.gen(function* () {
      const push = yield* PushStore
      yield* push.saveConfig(config("t-enqueue"))
      const versioned = events.map((event, i): VersionedEvent => ({ taskId: "t-enqueue", version: i + 1, event }))
      expect(yield* push.enqueue("t-enqueue", "c1", versioned, Date.parse(at(6)))).toBe(shown.length)
      expect(yield* queuedVersions("t-enqueue")).toEqual(shown)
    }).pipe(Effect.provide(layer()))
  )
}

describe("push outbox and the step journal: SQLite", () => suite(() => Store.layer(path.join(tempDir(), "outbox.db"))))

await describePg("push outbox and the step journal: PostgreSQL", () => suite(pgStoreLayer))
