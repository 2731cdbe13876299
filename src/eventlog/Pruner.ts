import { Context, Effect, Layer } from "effect"
import { SqlClient } from "@effect/sql"
import { type StoreFailure, storeService } from "./StoreFailure.js"
import { type TaskState, TerminalStates } from "../domain/TaskState.js"

/**
 * Removal of whole finished tasks: their events, read-model row, push configs,
 * queued deliveries, lease and message keys (a pruned message may be sent
 * again), in one transaction per batch. Only terminal tasks qualify, and
 * nothing is ever appended to those (invariant 2), so pruning is safe while
 * the engine runs. A pruned task answers as a missing one.
 */
export class Pruner extends Context.Tag("a2a-ledger/Pruner")<
  Pruner,
  {
    /**
     * Remove up to `limit` terminal tasks whose last change is before `before`
     * (ISO-8601), only of `states` when given (non-terminal ones are ignored); the number removed.
     */
    readonly prune: (before: string, limit: number, states?: ReadonlyArray<TaskState>) => Effect.Effect<number, StoreFailure>
    /** How many tasks `prune` would remove, in all. */
    readonly count: (before: string, states?: ReadonlyArray<TaskState>) => Effect.Effect<number, StoreFailure>
  }
>() {}

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const eligibleOf = (states?: ReadonlyArray<TaskState>) => TerminalStates.filter((s) => states === undefined || states.includes(s))
  // (`wake_at IS NULL` holds for every finished task: it lets the waiting index, migration 0011, serve.)
  const count = (before: string, states?: ReadonlyArray<TaskState>) => {
    const eligible = eligibleOf(states)
    return eligible.length === 0
      ? Effect.succeed(0)
      : sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM a2a_tasks
          WHERE ${sql.in("state", eligible)} AND wake_at IS NULL AND status_timestamp < ${before}`.pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0)))
  }
  const prune = (before: string, limit: number, states?: ReadonlyArray<TaskState>) =>
    sql.withTransaction(
      Effect.gen(function* () {
        const eligible = eligibleOf(states)
        if (eligible.length === 0) return 0
        const rows = yield* sql<{ task_id: string }>`SELECT task_id FROM a2a_tasks
          WHERE ${sql.in("state", eligible)} AND wake_at IS NULL AND status_timestamp < ${before}
          ORDER BY status_timestamp LIMIT ${limit}`
        const ids = rows.map((r) => r.task_id)
        if (ids.length === 0) return 0
        yield* sql`DELETE FROM a2a_push_outbox WHERE ${sql.in("task_id", ids)}`
        yield* sql`DELETE FROM a2a_push_configs WHERE ${sql.in("task_id", ids)}`
        yield* sql`DELETE FROM a2a_leases WHERE ${sql.in("task_id", ids)}`
        yield* sql`DELETE FROM a2a_message_ids WHERE ${sql.in("task_id", ids)}`
        yield* sql`DELETE FROM a2a_events WHERE ${sql.in("task_id", ids)}`
        yield* sql`DELETE FROM a2a_tasks WHERE ${sql.in("task_id", ids)}`
        return ids.length
      })
    )
  return Pruner.of(storeService({ prune, count }))
})

export const layer = Layer.effect(Pruner, make)
