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
    /**
     * Claim up to `limit` tasks for `owner`, each with its new epoch: lost turns and due timers first, then
     * submitted tasks fairly across tenants (each tenant's by priority, then age). `exclude`: tenants and
     * principals at their running limits, whose tasks are not started now. `served`: the tenants this
     * claimer started tasks of lately, the latest last: they come after the others (round robin).
     */
    readonly claim: (
      owner: string,
      now: number,
      ttlMs: number,
      limit: number,
      exclude?: ClaimExclusions,
      served?: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<Lease>, StoreFailure>
    /** Turns held now (live leases: running, or claimed and starting), by tenant and principal: what running limits count. */
    readonly running: (
      now: number
    ) => Effect.Effect<ReadonlyArray<{ readonly tenant: string; readonly principal: string; readonly running: number }>, StoreFailure>
    /** Extend `owner`'s live leases on these tasks; the ones still held (an expired or taken-over lease is lost for good). */
    readonly renew: (owner: string, taskIds: ReadonlyArray<string>, now: number, ttlMs: number) => Effect.Effect<ReadonlyArray<Lease>, StoreFailure>
    /** Every live lease, soonest to expire first (the board's instances page). */
    readonly live: (
      now: number
    ) => Effect.Effect<
      ReadonlyArray<{ readonly taskId: string; readonly owner: string; readonly epoch: number; readonly expiresAt: number }>,
      StoreFailure
    >
    /** Give leases up (each expires now, keeping its epoch); one that is not `owner`'s at that epoch is left as it is. */
    readonly release: (owner: string, leases: ReadonlyArray<Lease>) => Effect.Effect<void, StoreFailure>
    /** Whether `owner` still holds this lease at `now` (the fence for a worker's commits). */
    readonly holds: (owner: string, lease: Lease, now: number) => Effect.Effect<boolean, StoreFailure>
    /** A handed-off task's lease, made with its first commit (its id is new: nobody holds it). */
    readonly create: (owner: string, lease: Lease, expiresAt: number) => Effect.Effect<void, StoreFailure>
  }
>() {}

/** Tenants and principals a claim passes over (at their running limits). */
export interface ClaimExclusions {
  readonly tenants: ReadonlyArray<string>
  readonly principals: ReadonlyArray<{ readonly tenant: string; readonly principal: string }>
}

const noExclusions: ClaimExclusions = { tenants: [], principals: [] }

interface LeaseRow {
  readonly task_id: string
  readonly epoch: number | string
}

const toLease = (r: LeaseRow): Lease => ({ taskId: r.task_id, epoch: Number(r.epoch) })

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient

  const claim = (
    owner: string,
    now: number,
    ttlMs: number,
    limit: number,
    exclude: ClaimExclusions = noExclusions,
    served: ReadonlyArray<string> = []
  ) =>
    sql.onDialectOrElse({
      // One function (migration 0011), whose plans are made once per connection.
      pg: () =>
        sql<{
          claimed_task: string
          claimed_epoch: number | string
        }>`SELECT claimed_task, claimed_epoch FROM a2a_claim(${owner}, ${now}, ${ttlMs}, ${limit},
          ${[...exclude.tenants]}::text[], ${exclude.principals.map((p) => `${p.tenant}\u0001${p.principal}`)}::text[], ${[...served]}::text[])`.pipe(
          Effect.map((rows) => rows.map((r) => ({ taskId: r.claimed_task, epoch: Number(r.claimed_epoch) })))
        ),
      orElse: () => claimSqlite(owner, now, ttlMs, limit, exclude, served)
    })

  /**
   * The same claim on SQLite (its tests use leases; a SQLite store has one process): every submitted task
   * ranked within its tenant, the tenants served lately after the others.
   */
  const claimSqlite = (owner: string, now: number, ttlMs: number, limit: number, exclude: ClaimExclusions, served: ReadonlyArray<string>) => {
    const unleased = sql`NOT EXISTS (SELECT 1 FROM a2a_leases l WHERE l.task_id = t.task_id AND l.expires_at >= ${now})`
    const allowed = sql.and([
      sql`true`,
      ...exclude.tenants.map((tenant) => sql`t.tenant <> ${tenant}`),
      ...exclude.principals.map((p) => sql`NOT (t.tenant = ${p.tenant} AND t.owner = ${p.principal})`)
    ])
    const submitted = sql`t.state = 'TASK_STATE_SUBMITTED' AND t.wake_at IS NULL`
    const turn =
      served.length === 0 ? sql`0` : sql`CASE t.tenant ${sql.join(" ", false)(served.map((t, i) => sql`WHEN ${t} THEN ${i + 1}`))} ELSE 0 END`
    return sql<LeaseRow>`WITH candidates AS (
        SELECT w.task_id FROM (
          SELECT c.task_id, MIN(c.tier) AS tier, MIN(c.rn) AS rn, MIN(c.status_timestamp) AS status_timestamp FROM (
            SELECT t.task_id, t.status_timestamp, 0 AS tier, 0 AS rn FROM a2a_tasks t
              WHERE t.state = 'TASK_STATE_WORKING' AND t.wake_at IS NULL AND ${unleased}
            UNION ALL
            SELECT t.task_id, t.status_timestamp, 0 AS tier, 0 AS rn FROM a2a_tasks t
              WHERE t.wake_at IS NOT NULL AND t.wake_at <= ${now} AND ${unleased} AND ${allowed}
            UNION ALL
            SELECT t.task_id, t.status_timestamp, 1 AS tier,
              ROW_NUMBER() OVER (PARTITION BY t.tenant ORDER BY t.priority DESC, t.status_timestamp, t.task_id) * 1000000 + ${turn} AS rn
              FROM a2a_tasks t WHERE ${submitted} AND ${unleased} AND ${allowed}
          ) c GROUP BY c.task_id
        ) w
        ORDER BY w.tier, w.rn, w.status_timestamp, w.task_id
        LIMIT ${limit}
      )
      INSERT INTO a2a_leases (task_id, owner, epoch, expires_at)
      SELECT task_id, ${owner}, 1, ${now + ttlMs} FROM candidates WHERE true
      ON CONFLICT (task_id) DO UPDATE SET owner = excluded.owner, epoch = a2a_leases.epoch + 1, expires_at = excluded.expires_at
        WHERE a2a_leases.expires_at < ${now}
      RETURNING task_id, epoch`.pipe(Effect.map((rows) => rows.map(toLease)))
  }

  // Live leases, through their own index (migration 0011): a turn claimed but not yet started counts too.
  const running = (now: number) =>
    sql<{ tenant: string; owner: string; n: number | string }>`SELECT t.tenant, t.owner, COUNT(*) AS n
      FROM a2a_leases l JOIN a2a_tasks t ON t.task_id = l.task_id
      WHERE l.expires_at >= ${now} GROUP BY t.tenant, t.owner`.pipe(
      Effect.map((rows) => rows.map((r) => ({ tenant: r.tenant, principal: r.owner, running: Number(r.n) })))
    )

  const live = (now: number) =>
    sql<{ task_id: string; owner: string; epoch: number | string; expires_at: number | string }>`SELECT task_id, owner, epoch, expires_at
      FROM a2a_leases WHERE expires_at >= ${now} ORDER BY expires_at LIMIT 1000`.pipe(
      Effect.map((rows) => rows.map((r) => ({ taskId: r.task_id, owner: r.owner, epoch: Number(r.epoch), expiresAt: Number(r.expires_at) })))
    )

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

  return LeaseStore.of(storeService({ claim, renew, release, holds, create, running, live }))
})

export const layer = Layer.effect(LeaseStore, make)
