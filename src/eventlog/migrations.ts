import { Effect } from "effect"
import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"

/**
 * Schema of the log and the read model, for SQLite and PostgreSQL. Run by
 * the store layer at start-up; each migration is recorded once in
 * `a2a_migrations`, so running again is a no-op.
 */
const m0001 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const position = sql.onDialectOrElse({
    pg: () => sql.literal("position BIGSERIAL PRIMARY KEY"),
    orElse: () => sql.literal("position INTEGER PRIMARY KEY AUTOINCREMENT")
  })
  yield* sql`CREATE TABLE IF NOT EXISTS a2a_events (
    ${position},
    task_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (task_id, version)
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS a2a_tasks (
    task_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    context_id TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    status_timestamp TEXT NOT NULL,
    created_at TEXT NOT NULL,
    snapshot TEXT NOT NULL
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_by_status_time ON a2a_tasks (tenant, status_timestamp, task_id)`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_by_context ON a2a_tasks (tenant, context_id, status_timestamp)`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_by_state ON a2a_tasks (state, created_at)`
})

/**
 * Push notifications: the configs clients register per task, and the durable
 * outbox of deliveries (one row per event per config, written in the commit's
 * transaction). `next_attempt_at` is epoch milliseconds.
 */
const m0002 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const id = sql.onDialectOrElse({
    pg: () => sql.literal("id BIGSERIAL PRIMARY KEY"),
    orElse: () => sql.literal("id INTEGER PRIMARY KEY AUTOINCREMENT")
  })
  yield* sql`CREATE TABLE IF NOT EXISTS a2a_push_configs (
    task_id TEXT NOT NULL,
    config_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    url TEXT NOT NULL,
    token TEXT,
    auth_scheme TEXT,
    auth_credentials TEXT,
    format TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (task_id, config_id)
  )`
  yield* sql`CREATE TABLE IF NOT EXISTS a2a_push_outbox (
    ${id},
    task_id TEXT NOT NULL,
    config_id TEXT NOT NULL,
    context_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (task_id, config_id, version)
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_push_outbox_due ON a2a_push_outbox (status, next_attempt_at)`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_push_outbox_queue ON a2a_push_outbox (task_id, config_id, status, id)`
})

/** Tasks belong to a principal (authentication); existing tasks to the anonymous one. */
const m0003 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE a2a_tasks ADD COLUMN owner TEXT NOT NULL DEFAULT ''`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_by_owner ON a2a_tasks (tenant, owner, status_timestamp, task_id)`
})

/**
 * Work leases: which process runs a task's worker, until when. `epoch` grows
 * by one with every claim of a task and never goes back (a released lease
 * keeps its epoch and just expires), so a worker can be fenced by it.
 * `expires_at` is epoch milliseconds.
 */
const m0004 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS a2a_leases (
    task_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    expires_at BIGINT NOT NULL
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_waiting ON a2a_tasks (state, status_timestamp, task_id)`
})

/**
 * PostgreSQL: each event row records its writing transaction, so a tail of
 * the whole log can wait for transactions that took a lower position but
 * have not committed yet. (SQLite has one writer: positions commit in order.)
 */
const m0005 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.onDialectOrElse({
    pg: () =>
      Effect.zipRight(
        sql`ALTER TABLE a2a_events ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT pg_current_xact_id()`,
        sql`CREATE INDEX IF NOT EXISTS a2a_events_by_tx ON a2a_events (tx, position)`
      ),
    orElse: () => Effect.void
  })
})

/**
 * Idempotency: the user messages each task accepted, by (tenant, owner,
 * messageId). Filled from the existing log, so messages sent before the
 * upgrade are recognised too.
 */
const m0006 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS a2a_message_ids (
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    message_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant, owner, message_id)
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_message_ids_by_task ON a2a_message_ids (task_id)`
  const messageId = sql.onDialectOrElse({
    pg: () => sql.literal("(e.payload::jsonb)->'message'->>'messageId'"),
    orElse: () => sql.literal("json_extract(e.payload, '$.message.messageId')")
  })
  yield* sql`INSERT INTO a2a_message_ids (tenant, owner, message_id, task_id, version)
    SELECT t.tenant, t.owner, ${messageId}, e.task_id, e.version
    FROM a2a_events e JOIN a2a_tasks t ON t.task_id = e.task_id
    WHERE e.type IN ('TaskSubmitted', 'InputProvided')
    ORDER BY e.position
    ON CONFLICT DO NOTHING`
})

/**
 * ListTasks at scale (issue 11). Its pages filter by tenant and owner, and by context or state: an index
 * for each, in the page's order. Its `totalSize` on SQLite comes from counts of tasks by tenant, owner
 * and state, kept by triggers in every transaction that inserts, deletes or moves a task (the writer,
 * pruning, rebuild, import: none can forget them), instead of a COUNT(*) over every matching row (70 ms
 * over a million tasks, 400 ms with a state filter). PostgreSQL keeps counting: there one row per count
 * would make every instance's commits wait for each other on it.
 */
const m0007 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_by_owner_context ON a2a_tasks (tenant, owner, context_id, status_timestamp, task_id)`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_by_owner_state ON a2a_tasks (tenant, owner, state, status_timestamp, task_id)`
  // Every commit that moves a task rewrites each index on its state and time: these three no query needs
  // any more (pages go by owner; the start-up scan and pruning by a2a_tasks_waiting; tools read in full).
  yield* sql`DROP INDEX IF EXISTS a2a_tasks_by_status_time`
  yield* sql`DROP INDEX IF EXISTS a2a_tasks_by_context`
  yield* sql`DROP INDEX IF EXISTS a2a_tasks_by_state`
  yield* sql.onDialectOrElse({
    sqlite: () =>
      Effect.gen(function* () {
        yield* sql`CREATE TABLE IF NOT EXISTS a2a_task_counts (
          tenant TEXT NOT NULL,
          owner TEXT NOT NULL,
          state TEXT NOT NULL,
          n INTEGER NOT NULL,
          PRIMARY KEY (tenant, owner, state)
        )`
        yield* sql`CREATE TRIGGER IF NOT EXISTS a2a_task_counts_insert AFTER INSERT ON a2a_tasks BEGIN
          INSERT INTO a2a_task_counts (tenant, owner, state, n) VALUES (new.tenant, new.owner, new.state, 1)
            ON CONFLICT (tenant, owner, state) DO UPDATE SET n = n + 1;
        END`
        yield* sql`CREATE TRIGGER IF NOT EXISTS a2a_task_counts_delete AFTER DELETE ON a2a_tasks BEGIN
          UPDATE a2a_task_counts SET n = n - 1 WHERE tenant = old.tenant AND owner = old.owner AND state = old.state;
        END`
        yield* sql`CREATE TRIGGER IF NOT EXISTS a2a_task_counts_update AFTER UPDATE OF tenant, owner, state ON a2a_tasks
          WHEN old.tenant IS NOT new.tenant OR old.owner IS NOT new.owner OR old.state IS NOT new.state BEGIN
          UPDATE a2a_task_counts SET n = n - 1 WHERE tenant = old.tenant AND owner = old.owner AND state = old.state;
          INSERT INTO a2a_task_counts (tenant, owner, state, n) VALUES (new.tenant, new.owner, new.state, 1)
            ON CONFLICT (tenant, owner, state) DO UPDATE SET n = n + 1;
        END`
        yield* sql`DELETE FROM a2a_task_counts`
        yield* sql`INSERT INTO a2a_task_counts (tenant, owner, state, n)
          SELECT tenant, owner, state, COUNT(*) FROM a2a_tasks GROUP BY tenant, owner, state`
      }),
    orElse: () => Effect.void
  })
})

export const run = Migrator.make({})({
  loader: Migrator.fromRecord({ "0001_event_log_and_tasks": m0001, "0002_push_notifications": m0002, "0003_task_owner": m0003, "0004_leases": m0004, "0005_event_tx": m0005, "0006_message_ids": m0006, "0007_list_at_scale": m0007 }),
  table: "a2a_migrations"
})
