import { Context, type Either, Effect, Layer, type ParseResult, Schema } from "effect"
import { SqlClient } from "@effect/sql"
import { StoreFailure, storeService } from "./StoreFailure.js"
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

/**
 * One outcome per plan, in order (SqliteCommits' PlanOutcome), as the function returns them: jsonb, which
 * the driver parses (or its text, should a driver not).
 */
const decodeOutcomes: (u: unknown) => Either.Either<ReadonlyArray<PlanOutcome>, ParseResult.ParseError> = Schema.decodeUnknownEither(
  Schema.Union(Schema.parseJson(), Schema.Unknown).pipe(
    Schema.compose(
      Schema.Array(
        Schema.Union(
          Schema.Struct({ _tag: Schema.Literal("Written"), queued: Schema.Number }),
          Schema.Struct({ _tag: Schema.Literal("Conflict") }),
          Schema.Struct({ _tag: Schema.Literal("Duplicate"), taskId: Schema.String, version: Schema.Number }),
          Schema.Struct({ _tag: Schema.Literal("LeaseLost") })
        )
      )
    )
  )
)

export const layer = Layer.effect(
  PgCommits,
  Effect.map(SqlClient.SqlClient, (sql) =>
    PgCommits.of(
      storeService({
        write: (plans: ReadonlyArray<CommitPlan>) =>
          Effect.flatMap(sql<{ outcomes: unknown }>`SELECT a2a_commit_batch(${JSON.stringify(plans)}::jsonb) AS outcomes`, (rows) =>
            Effect.mapBoth(decodeOutcomes(rows[0]?.outcomes), {
              onFailure: (cause) => new StoreFailure({ cause, message: "a2a_commit_batch answered in an unknown shape" }),
              onSuccess: (outcomes): Written => ({ outcomes, synced: Effect.void })
            })
          ),
        load: (taskId: string) =>
          Effect.map(sql<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE task_id = ${taskId}`, (rows) => rows[0]?.snapshot)
      })
    )
  )
)
