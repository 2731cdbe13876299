import { Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "@effect/sql"
import type { PushConfigRow } from "../eventlog/SqliteCommits.js"
import { retryTransient } from "../eventlog/Transient.js"
import { type StoreFailure, storeService } from "../eventlog/StoreFailure.js"
import { isJournalEvent, type VersionedEvent } from "../domain/TaskEvent.js"
import { type Delivery, maxConfigsPerTask, type PushConfig } from "./PushConfig.js"

/**
 * Push configs and the delivery outbox, on the store's SQL client.
 *
 * `enqueue` runs inside the committer's transaction, so a delivery row exists
 * exactly when its event committed. Deliveries of one config leave in version
 * order: only the oldest pending row of a (task, config) is ever due.
 */
export class PushStore extends Context.Tag("a2a-ledger/PushStore")<
  PushStore,
  {
    /** Insert or replace (same task and id) a config. */
    readonly saveConfig: (config: PushConfig) => Effect.Effect<void, StoreFailure>
    readonly getConfig: (taskId: string, id: string) => Effect.Effect<Option.Option<PushConfig>, StoreFailure>
    /** Configs of a task ordered by id, from after `afterId`. */
    readonly listConfigs: (taskId: string, limit: number, afterId?: string) => Effect.Effect<ReadonlyArray<PushConfig>, StoreFailure>
    readonly countConfigs: (taskId: string) => Effect.Effect<number, StoreFailure>
    /** Whether saving config `id` keeps the task within maxConfigsPerTask (replacing one always does). */
    readonly hasRoomFor: (taskId: string, id: string) => Effect.Effect<boolean, StoreFailure>
    /** Remove a config and every delivery still queued for it. True when it existed. */
    readonly deleteConfig: (taskId: string, id: string) => Effect.Effect<boolean, StoreFailure>
    /** Queue one delivery per event per config of the task (none for the step journal's events); the number queued. */
    readonly enqueue: (taskId: string, contextId: string, events: ReadonlyArray<VersionedEvent>, now: number) => Effect.Effect<number, StoreFailure>
    /** Pending deliveries due at `now`, each the oldest of its (task, config). */
    readonly due: (now: number, limit: number) => Effect.Effect<ReadonlyArray<Delivery>, StoreFailure>
    /**
     * Take due deliveries to send: each is held (not due again) until `now + holdMs`, so processes
     * sharing the store do not send the same one; a sender that dies leaves it to be sent after that.
     */
    readonly take: (now: number, limit: number, holdMs: number) => Effect.Effect<ReadonlyArray<Delivery>, StoreFailure>
    /** A taken delivery that was not attempted after all: due again at `now`. */
    readonly unhold: (id: number, now: number) => Effect.Effect<void, StoreFailure>
    /** When the next head-of-line delivery falls due, if any is waiting. */
    readonly nextDueAt: Effect.Effect<Option.Option<number>, StoreFailure>
    /** The delivery was made: kept, marked delivered (until its task is pruned). */
    readonly delivered: (id: number, now: number) => Effect.Effect<void, StoreFailure>
    /** Nothing is left to deliver (its config was deleted, or its event is not shown to clients): removed. */
    readonly dropped: (id: number) => Effect.Effect<void, StoreFailure>
    /** Record a failed attempt: retry at `retryAt`, or (undefined) move it to the dead letters. */
    readonly failed: (id: number, error: string, now: number, retryAt: number | undefined) => Effect.Effect<void, StoreFailure>
    readonly deadLetters: (limit: number) => Effect.Effect<ReadonlyArray<Delivery>, StoreFailure>
    /** A task's deliveries still in the outbox (pending or dead; a delivered one leaves it), oldest first. */
    readonly forTask: (taskId: string, limit: number) => Effect.Effect<ReadonlyArray<Delivery>, StoreFailure>
    /** How many deliveries wait to be made, and how many failed for good. */
    readonly depth: Effect.Effect<{ readonly pending: number; readonly dead: number }, StoreFailure>
    /** Put dead deliveries back in the queue (all of them when `ids` is undefined); the number requeued. */
    readonly redeliver: (ids: ReadonlyArray<number> | undefined, now: number) => Effect.Effect<number, StoreFailure>
  }
>() {}

/** A row of `a2a_push_configs` (the writer's connection inserts the same rows: SqliteCommits). */
type ConfigRow = PushConfigRow & { readonly task_id: string }

interface DeliveryRow {
  readonly id: number | string
  readonly task_id: string
  readonly config_id: string
  readonly context_id: string
  readonly version: number | string
  readonly status: string
  readonly attempts: number | string
  readonly next_attempt_at: number | string
  readonly last_error: string | null
  readonly created_at: string
  readonly updated_at: string
}

const toConfig = (r: ConfigRow): PushConfig => ({
  taskId: r.task_id,
  id: r.config_id,
  tenant: r.tenant,
  url: r.url,
  ...(r.token !== null ? { token: r.token } : {}),
  ...(r.auth_scheme !== null
    ? { authentication: { scheme: r.auth_scheme, ...(r.auth_credentials !== null ? { credentials: r.auth_credentials } : {}) } }
    : {}),
  format: r.format === "0.3" ? "0.3" : "1.0",
  createdAt: r.created_at
})

// PostgreSQL returns BIGINT as a string.
const toDelivery = (r: DeliveryRow): Delivery => ({
  id: Number(r.id),
  taskId: r.task_id,
  configId: r.config_id,
  contextId: r.context_id,
  version: Number(r.version),
  attempts: Number(r.attempts),
  nextAttemptAt: Number(r.next_attempt_at),
  status: r.status === "dead" ? "dead" : r.status === "delivered" ? "delivered" : "pending",
  ...(r.last_error !== null ? { lastError: r.last_error } : {}),
  createdAt: r.created_at,
  updatedAt: r.updated_at
})

const iso = (ms: number) => new Date(ms).toISOString()

/** A config's row in `a2a_push_configs`. */
export const configRow = (c: PushConfig) => ({
  task_id: c.taskId,
  config_id: c.id,
  tenant: c.tenant,
  url: c.url,
  token: c.token ?? null,
  auth_scheme: c.authentication?.scheme ?? null,
  auth_credentials: c.authentication?.credentials ?? null,
  format: c.format,
  created_at: c.createdAt
})

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // Writes outside the engine's writer meet its thread at SQLite's write lock now and then (or a tool's):
  // each is tried again (Transient), never waited for on the event loop. (saveConfig is also written
  // inside the writer's transaction, which retries as a whole: PushConfigs retries it alone.)

  const saveConfig = (c: PushConfig) => {
    const row = configRow(c)
    return sql`INSERT INTO a2a_push_configs ${sql.insert(row)}
      ON CONFLICT (task_id, config_id) DO UPDATE SET url = ${row.url}, token = ${row.token},
        auth_scheme = ${row.auth_scheme}, auth_credentials = ${row.auth_credentials}, format = ${row.format}`.pipe(Effect.asVoid)
  }

  const getConfig = (taskId: string, id: string) =>
    sql<ConfigRow>`SELECT * FROM a2a_push_configs WHERE task_id = ${taskId} AND config_id = ${id}`.pipe(
      Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toConfig))
    )

  const listConfigs = (taskId: string, limit: number, afterId?: string) =>
    (afterId === undefined
      ? sql<ConfigRow>`SELECT * FROM a2a_push_configs WHERE task_id = ${taskId} ORDER BY config_id LIMIT ${limit}`
      : sql<ConfigRow>`SELECT * FROM a2a_push_configs WHERE task_id = ${taskId} AND config_id > ${afterId}
          ORDER BY config_id LIMIT ${limit}`
    ).pipe(Effect.map((rows) => rows.map(toConfig)))

  const countConfigs = (taskId: string) =>
    sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM a2a_push_configs WHERE task_id = ${taskId}`.pipe(
      Effect.map((rows) => Number(rows[0]?.n ?? 0))
    )

  const deleteConfig = (taskId: string, id: string) =>
    retryTransient(
      sql.withTransaction(
        Effect.gen(function* () {
          const existed = yield* sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM a2a_push_configs
          WHERE task_id = ${taskId} AND config_id = ${id}`
          yield* sql`DELETE FROM a2a_push_outbox WHERE task_id = ${taskId} AND config_id = ${id}`
          yield* sql`DELETE FROM a2a_push_configs WHERE task_id = ${taskId} AND config_id = ${id}`
          return Number(existed[0]?.n ?? 0) > 0
        })
      )
    )

  const enqueue = (taskId: string, contextId: string, committed: ReadonlyArray<VersionedEvent>, now: number) =>
    Effect.gen(function* () {
      // The step journal is told to no webhook: its events get no rows.
      const events = committed.filter((e) => !isJournalEvent(e.event))
      if (events.length === 0) return 0
      const configs = yield* sql<{ config_id: string }>`SELECT config_id FROM a2a_push_configs WHERE task_id = ${taskId}`
      if (configs.length === 0) return 0
      const at = iso(now)
      const rows = configs.flatMap((c) =>
        events.map((e) => ({
          task_id: taskId,
          config_id: c.config_id,
          context_id: contextId,
          version: e.version,
          status: "pending",
          attempts: 0,
          next_attempt_at: now,
          last_error: null,
          created_at: at,
          updated_at: at
        }))
      )
      yield* sql`INSERT INTO a2a_push_outbox ${sql.insert(rows)}`
      return rows.length
    })

  const headOfLine = sql`NOT EXISTS (SELECT 1 FROM a2a_push_outbox p WHERE p.task_id = o.task_id
    AND p.config_id = o.config_id AND p.status = 'pending' AND p.id < o.id)`

  const isDue = (now: number) => sql`o.status = 'pending' AND o.next_attempt_at <= ${now} AND ${headOfLine}`

  const due = (now: number, limit: number) =>
    sql<DeliveryRow>`SELECT o.* FROM a2a_push_outbox o WHERE ${isDue(now)}
      ORDER BY o.next_attempt_at, o.id LIMIT ${limit}`.pipe(Effect.map((rows) => rows.map(toDelivery)))

  const take = (now: number, limit: number, holdMs: number) =>
    sql<DeliveryRow>`UPDATE a2a_push_outbox SET next_attempt_at = ${now + holdMs}
      WHERE id IN (
        SELECT o.id FROM a2a_push_outbox o WHERE ${isDue(now)}
        ORDER BY o.next_attempt_at, o.id LIMIT ${limit}
        ${sql.onDialectOrElse({ pg: () => sql`FOR UPDATE OF o SKIP LOCKED`, orElse: () => sql`` })}
      )
      RETURNING *`.pipe(
      retryTransient,
      Effect.map((rows) => rows.map(toDelivery).sort((a, b) => a.id - b.id))
    )

  const unhold = (id: number, now: number) =>
    sql`UPDATE a2a_push_outbox SET next_attempt_at = ${now} WHERE id = ${id} AND status = 'pending'`.pipe(Effect.asVoid, retryTransient)

  const nextDueAt = sql<{ t: number | string | null }>`SELECT MIN(o.next_attempt_at) AS t FROM a2a_push_outbox o
    WHERE o.status = 'pending' AND ${headOfLine}`.pipe(
    Effect.map((rows) => (rows[0]?.t === null || rows[0]?.t === undefined ? Option.none() : Option.some(Number(rows[0].t))))
  )

  // Kept, marked delivered (the board shows a task's deliveries; the task's pruning removes them); one with
  // nothing left to deliver (its config deleted, its event not one a client is shown) is removed.
  const delivered = (id: number, now: number) =>
    sql`UPDATE a2a_push_outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, updated_at = ${iso(now)}
      WHERE id = ${id}`.pipe(Effect.asVoid, retryTransient)
  const dropped = (id: number) => sql`DELETE FROM a2a_push_outbox WHERE id = ${id}`.pipe(Effect.asVoid, retryTransient)

  const failed = (id: number, error: string, now: number, retryAt: number | undefined) => {
    const at = iso(now)
    return (
      retryAt === undefined
        ? sql`UPDATE a2a_push_outbox SET status = 'dead', attempts = attempts + 1, last_error = ${error}, updated_at = ${at}
            WHERE id = ${id}`
        : sql`UPDATE a2a_push_outbox SET attempts = attempts + 1, next_attempt_at = ${retryAt}, last_error = ${error},
            updated_at = ${at} WHERE id = ${id}`
    ).pipe(Effect.asVoid, retryTransient)
  }

  const deadLetters = (limit: number) =>
    sql<DeliveryRow>`SELECT * FROM a2a_push_outbox WHERE status = 'dead' ORDER BY id LIMIT ${limit}`.pipe(Effect.map((rows) => rows.map(toDelivery)))

  const redeliver = (ids: ReadonlyArray<number> | undefined, now: number) => {
    if (ids !== undefined && ids.length === 0) return Effect.succeed(0)
    const at = iso(now)
    const which = ids === undefined ? sql`status = 'dead'` : sql.and([sql`status = 'dead'`, sql.in("id", ids)])
    return retryTransient(
      sql.withTransaction(
        Effect.gen(function* () {
          const n = yield* sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM a2a_push_outbox WHERE ${which}`
          yield* sql`UPDATE a2a_push_outbox SET status = 'pending', attempts = 0, next_attempt_at = ${now}, updated_at = ${at}
          WHERE ${which}`
          return Number(n[0]?.n ?? 0)
        })
      )
    )
  }

  const hasRoomFor = (taskId: string, id: string) =>
    Effect.flatMap(getConfig(taskId, id), (existing) =>
      Option.isSome(existing) ? Effect.succeed(true) : Effect.map(countConfigs(taskId), (n) => n < maxConfigsPerTask)
    )

  const depth = Effect.map(
    sql<{ status: string; n: number | string }>`SELECT status, COUNT(*) AS n FROM a2a_push_outbox GROUP BY status`,
    (rows) => ({
      pending: Number(rows.find((r) => r.status === "pending")?.n ?? 0),
      dead: Number(rows.find((r) => r.status === "dead")?.n ?? 0)
    })
  )

  const forTask = (taskId: string, limit: number) =>
    sql<DeliveryRow>`SELECT * FROM a2a_push_outbox WHERE task_id = ${taskId} ORDER BY id LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map(toDelivery))
    )

  return PushStore.of(
    storeService({
      depth,
      forTask,
      hasRoomFor,
      saveConfig,
      getConfig,
      listConfigs,
      countConfigs,
      deleteConfig,
      enqueue,
      due,
      take,
      unhold,
      nextDueAt,
      delivered,
      dropped,
      failed,
      deadLetters,
      redeliver
    })
  )
})

export const layer = Layer.effect(PushStore, make)
