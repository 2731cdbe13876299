import { Context, Effect, Layer } from "effect"
import { SqlClient } from "@effect/sql"
import { type StoreFailure, storeService } from "./StoreFailure.js"
import type { CommitPlan, PlanOutcome, Written } from "./SqliteCommits.js"

/**
 * The writer's batches on PostgreSQL: the same plans the SQLite writer's
 * thread writes (SqliteCommits), sent as one JSON parameter to the
 * `a2a_commit_batch` function (migration 0008), which writes them in one
 * statement and announces the new versions. One round trip per batch,
 * where writing each command through @effect/sql took about ten.
 */
export class PgCommits extends Context.Tag("a2a-ledger/PgCommits")<
  PgCommits,
  {
    /** Write a batch in one statement (atomic by itself); a StoreFailure means none of it was written. */
    readonly write: (plans: ReadonlyArray<CommitPlan>) => Effect.Effect<Written, StoreFailure>
    /** The task's committed snapshot JSON (the read-model row). */
    readonly load: (taskId: string) => Effect.Effect<string | undefined, StoreFailure>
  }
>() {}

export const layer = Layer.effect(
  PgCommits,
  Effect.map(SqlClient.SqlClient, (sql) =>
    PgCommits.of(
      storeService({
        write: (plans: ReadonlyArray<CommitPlan>) =>
          Effect.map(
            sql<{ outcomes: ReadonlyArray<PlanOutcome> | string }>`SELECT a2a_commit_batch(${JSON.stringify(plans)}::jsonb) AS outcomes`,
            (rows) => {
              const outcomes = rows[0]?.outcomes ?? []
              return { outcomes: typeof outcomes === "string" ? (JSON.parse(outcomes) as ReadonlyArray<PlanOutcome>) : outcomes, synced: Effect.void }
            }
          ),
        load: (taskId: string) =>
          Effect.map(sql<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE task_id = ${taskId}`, (rows) => rows[0]?.snapshot)
      })
    )
  )
)
