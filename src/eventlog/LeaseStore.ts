import { Context, Effect, Layer } from "effect"
import { SqlClient } from "@effect/sql"
import { type StoreFailure, storeService } from "./StoreFailure.js"

/** A claim on a task's worker: held by `owner` at `epoch` until it expires or is released. */
export interface Lease {
  readonly taskId: string
  readonly epoch: number
}

/**
 * Work leases in the store, the ground for several processes sharing one
 * database: a task's worker may run only where its lease is held. Claims
 * take the oldest tasks needing a worker (SUBMITTED, WORKING whose owner
 * stopped renewing, or sleeping on a timer that is due) that no live lease
 * covers; on PostgreSQL concurrent
 * claimers skip each other's rows (`FOR UPDATE SKIP LOCKED`), so a task is
 * never handed to two of them.
 */
export class LeaseStore extends Context.Tag("a2a-ledger/LeaseStore")<
  LeaseStore,
  {
    /** Claim up to `limit` tasks for `owner`, oldest first; each with its new epoch. */
    readonly claim: (owner: string, now: number, ttlMs: number, limit: number) => Effect.Effect<ReadonlyArray<Lease>, StoreFailure>
    /** Extend `owner`'s live leases on these tasks; the ones still held (an expired or taken-over lease is lost for good). */
    readonly renew: (owner: string, taskIds: ReadonlyArray<string>, now: number, ttlMs: number) => Effect.Effect<ReadonlyArray<Lease>, StoreFailure>
    /** Give leases up (each expires now, keeping its epoch); one that is not `owner`'s at that epoch is left as it is. */
    readonly release: (owner: string, leases: ReadonlyArray<Lease>) => Effect.Effect<void, StoreFailure>
    /** Whether `owner` still holds this lease at `now` (the fence for a worker's commits). */
    readonly holds: (owner: string, lease: Lease, now: number) => Effect.Effect<boolean, StoreFailure>
    /** A handed-off task's lease, made with its first commit (its id is new: nobody holds it). */
    readonly create: (owner: string, lease: Lease, expiresAt: number) => Effect.Effect<void, StoreFailure>
  }
>() {}

interface LeaseRow {
  readonly task_id: string
  readonly epoch: number | string
}

const toLease = (r: LeaseRow): Lease => ({ taskId: r.task_id, epoch: Number(r.epoch) })

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  const claim = (owner: string, now: number, ttlMs: number, limit: number) => {
    const expires = now + ttlMs
    // PostgreSQL: lock the chosen task rows and skip the ones another claimer holds. SQLite has one writer.
    const lock = sql.onDialectOrElse({ pg: () => sql`FOR UPDATE OF t SKIP LOCKED`, orElse: () => sql`` })
    // The oldest tasks in one state with no live lease, in the waiting index's own order: an index scan
    // that stops at \`limit\` and looks a lease up by its key per task. (One scan over both states had to
    // gather and sort every entry of both, dead row versions included until a vacuum, and joined them
    // with the whole leases table, which keeps a row for every task ever run: a claim's cost grew with
    // the store's history.)
    // Sleeping tasks (durable timers) are left out of it (its index holds no row with a wake time), and
    // claimed from their own index once due, soonest first.
    const unleased = sql`NOT EXISTS (SELECT 1 FROM a2a_leases l WHERE l.task_id = t.task_id AND l.expires_at >= ${now})`
    const oldest = (state: string) => sql`SELECT t.task_id, t.status_timestamp FROM a2a_tasks t
        WHERE t.state = ${state} AND t.wake_at IS NULL AND ${unleased}
        ORDER BY t.status_timestamp, t.task_id
        LIMIT ${limit}
        ${lock}`
    const due = sql`SELECT t.task_id, t.status_timestamp FROM a2a_tasks t
        WHERE t.wake_at IS NOT NULL AND t.wake_at <= ${now} AND ${unleased}
        ORDER BY t.wake_at, t.task_id
        LIMIT ${limit}
        ${lock}`
    return sql<LeaseRow>`WITH candidates AS (
        SELECT w.task_id FROM (
          SELECT s.task_id, s.status_timestamp FROM (${oldest("TASK_STATE_SUBMITTED")}) s
          UNION ALL
          SELECT k.task_id, k.status_timestamp FROM (${oldest("TASK_STATE_WORKING")}) k
          UNION ALL
          SELECT d.task_id, d.status_timestamp FROM (${due}) d
        ) w
        ORDER BY w.status_timestamp, w.task_id
        LIMIT ${limit}
      )
      INSERT INTO a2a_leases (task_id, owner, epoch, expires_at)
      SELECT task_id, ${owner}, 1, ${expires} FROM candidates WHERE true
      ON CONFLICT (task_id) DO UPDATE SET owner = excluded.owner, epoch = a2a_leases.epoch + 1, expires_at = excluded.expires_at
        WHERE a2a_leases.expires_at < ${now}
      RETURNING task_id, epoch`.pipe(Effect.map((rows) => rows.map(toLease)))
  }

  // One row per statement: a renewal that locked several rows could wait for a commit that holds one
  // of them (FOR SHARE, below) while that commit waits for another it locked: a deadlock, which
  // PostgreSQL breaks by failing one side (seen under load in the crash-safety test).
  const renew = (owner: string, taskIds: ReadonlyArray<string>, now: number, ttlMs: number) =>
    Effect.forEach(
      taskIds,
      (taskId) =>
        sql<LeaseRow>`UPDATE a2a_leases SET expires_at = ${now + ttlMs}
          WHERE owner = ${owner} AND task_id = ${taskId} AND expires_at >= ${now}
          RETURNING task_id, epoch`.pipe(Effect.map((rows) => rows.map(toLease))),
      { concurrency: 4 }
    ).pipe(Effect.map((rows) => rows.flat()))

  const release = (owner: string, leases: ReadonlyArray<Lease>) =>
    leases.length === 0
      ? Effect.void
      : sql`UPDATE a2a_leases SET expires_at = 0 WHERE owner = ${owner}
          AND (${sql.or(leases.map((l) => sql`(task_id = ${l.taskId} AND epoch = ${l.epoch})`))})`.pipe(Effect.asVoid)

  // Inside a commit's transaction on PostgreSQL, FOR SHARE keeps a claimer from taking the lease over
  // until that commit is done, so a fenced commit never lands after a takeover.
  const holds = (owner: string, lease: Lease, now: number) =>
    sql<{ epoch: number | string }>`SELECT epoch FROM a2a_leases
      WHERE task_id = ${lease.taskId} AND owner = ${owner} AND epoch = ${lease.epoch} AND expires_at >= ${now}
      ${sql.onDialectOrElse({ pg: () => sql`FOR SHARE`, orElse: () => sql`` })}`.pipe(Effect.map((rows) => rows.length > 0))

  const create = (owner: string, lease: Lease, expiresAt: number) =>
    sql`INSERT INTO a2a_leases (task_id, owner, epoch, expires_at) VALUES (${lease.taskId}, ${owner}, ${lease.epoch}, ${expiresAt})
      ON CONFLICT (task_id) DO NOTHING`.pipe(Effect.asVoid)

  return LeaseStore.of(storeService({ claim, renew, release, holds, create }))
})

export const layer = Layer.effect(LeaseStore, make)
