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

/**
 * PostgreSQL: a batch of the writer's commits in one statement (issue 11). The committer sends the batch's
 * plans (PgCommits.ts; the same plans the SQLite writer's thread writes) as one JSON parameter; this
 * function writes each plan whole or not at all, in order, and answers with one outcome per plan:
 *   - LeaseLost: the plan is fenced by a work lease its owner no longer holds (checked under FOR SHARE);
 *   - Duplicate: its message key is taken (unless duplicates are accepted), naming the task that holds it;
 *   - Conflict: the task's row is not at the expected version (another instance moved it), or a new
 *     task's id is taken;
 *   - Written: the row, the events, a push config sent with the message, the outbox rows and the key.
 * The key is claimed before the row moves (a key another instance claims at the same time waits for it),
 * and released again when the row refuses. Then every written task's new version is announced on the
 * store's channel (CommitFeed), delivered when the transaction commits.
 */
const commitBatch0008 = `CREATE OR REPLACE FUNCTION a2a_commit_batch(plans jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  plan jsonb;
  key jsonb;
  fence jsonb;
  e jsonb;
  r jsonb;
  holder record;
  claimed boolean;
  moved integer;
  added integer;
  queued integer;
  expected integer;
  v integer;
  i integer;
  at_text text;
  outcomes jsonb := '[]'::jsonb;
  notices text[] := '{}';
BEGIN
  FOR plan IN SELECT value FROM jsonb_array_elements(plans) LOOP
    fence := plan->'fence';
    IF fence IS NOT NULL THEN
      PERFORM 1 FROM a2a_leases WHERE task_id = plan->>'taskId' AND owner = fence->>'owner'
        AND epoch = (fence->>'epoch')::bigint AND expires_at >= (plan->>'now')::bigint FOR SHARE;
      IF NOT FOUND THEN
        outcomes := outcomes || jsonb_build_array(jsonb_build_object('_tag', 'LeaseLost'));
        CONTINUE;
      END IF;
    END IF;
    expected := (plan->>'expectedVersion')::integer;
    key := plan->'messageKey';
    claimed := false;
    IF key IS NOT NULL THEN
      INSERT INTO a2a_message_ids (tenant, owner, message_id, task_id, version)
        VALUES (key->>'tenant', key->>'owner', key->>'messageId', plan->>'taskId', expected + 1)
        ON CONFLICT DO NOTHING;
      GET DIAGNOSTICS added = ROW_COUNT;
      claimed := added = 1;
      IF NOT claimed AND key->>'duplicates' <> 'accept' THEN
        SELECT task_id, version INTO holder FROM a2a_message_ids
          WHERE tenant = key->>'tenant' AND owner = key->>'owner' AND message_id = key->>'messageId';
        outcomes := outcomes || jsonb_build_array(jsonb_build_object('_tag', 'Duplicate', 'taskId', holder.task_id, 'version', holder.version));
        CONTINUE;
      END IF;
    END IF;
    r := plan->'row';
    IF expected = 0 THEN
      INSERT INTO a2a_tasks (task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot)
        VALUES (r->>'task_id', r->>'tenant', r->>'owner', r->>'context_id', r->>'state', (r->>'version')::integer,
          r->>'status_timestamp', r->>'created_at', r->>'snapshot')
        ON CONFLICT (task_id) DO NOTHING;
    ELSE
      UPDATE a2a_tasks SET state = r->>'state', version = (r->>'version')::integer, status_timestamp = r->>'status_timestamp',
          snapshot = r->>'snapshot'
        WHERE task_id = r->>'task_id' AND version = expected;
    END IF;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved <> 1 THEN
      IF claimed THEN
        DELETE FROM a2a_message_ids WHERE tenant = key->>'tenant' AND owner = key->>'owner' AND message_id = key->>'messageId';
      END IF;
      outcomes := outcomes || jsonb_build_array(jsonb_build_object('_tag', 'Conflict'));
      CONTINUE;
    END IF;
    at_text := plan->>'at';
    queued := 0;
    i := 0;
    FOR e IN SELECT value FROM jsonb_array_elements(plan->'events') LOOP
      v := expected + i + 1;
      INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
        VALUES (plan->>'taskId', v, e->>'type', (e->>'schema_version')::integer, e->>'payload', plan->>'metadata', e->>'created_at');
      IF i = 0 AND plan->'pushConfig' IS NOT NULL THEN
        INSERT INTO a2a_push_configs (task_id, config_id, tenant, url, token, auth_scheme, auth_credentials, format, created_at)
          VALUES (plan->>'taskId', plan->'pushConfig'->>'config_id', plan->'pushConfig'->>'tenant', plan->'pushConfig'->>'url',
            plan->'pushConfig'->>'token', plan->'pushConfig'->>'auth_scheme', plan->'pushConfig'->>'auth_credentials',
            plan->'pushConfig'->>'format', plan->'pushConfig'->>'created_at')
          ON CONFLICT (task_id, config_id) DO UPDATE SET url = excluded.url, token = excluded.token,
            auth_scheme = excluded.auth_scheme, auth_credentials = excluded.auth_credentials, format = excluded.format;
      END IF;
      INSERT INTO a2a_push_outbox (task_id, config_id, context_id, version, status, attempts, next_attempt_at, last_error, created_at, updated_at)
        SELECT task_id, config_id, r->>'context_id', v, 'pending', 0, (plan->>'now')::bigint, NULL, at_text, at_text
        FROM a2a_push_configs WHERE task_id = plan->>'taskId' ORDER BY config_id;
      GET DIAGNOSTICS added = ROW_COUNT;
      queued := queued + added;
      i := i + 1;
    END LOOP;
    notices := notices || ((plan->>'taskId') || ' ' || (expected + i) || ' ' || (r->>'context_id'));
    outcomes := outcomes || jsonb_build_array(jsonb_build_object('_tag', 'Written', 'queued', queued));
  END LOOP;
  PERFORM pg_notify(left('a2a_events:' || current_schema(), 63), n) FROM unnest(notices) AS n;
  RETURN outcomes;
END
$fn$`

const m0008 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.onDialectOrElse({
    pg: () => sql.unsafe(commitBatch0008),
    orElse: () => Effect.void
  })
})

/**
 * PostgreSQL: the batch function again (0008's, two changes), for a task handed straight to a worker
 * (Supervisor.handOff): a plan whose fence carries `createUntil` is the first commit of a task nobody else
 * knows yet, so its lease is not checked but created, at the fence's epoch, once the task's row is
 * inserted. Every other plan is written as 0008 wrote it.
 */
const fenceCheck = "    IF fence IS NOT NULL THEN\n      PERFORM 1 FROM a2a_leases"
const rowMoved = `      outcomes := outcomes || jsonb_build_array(jsonb_build_object('_tag', 'Conflict'));
      CONTINUE;
    END IF;
`
const commitBatch0009 = (() => {
  if (!commitBatch0008.includes(fenceCheck) || !commitBatch0008.includes(rowMoved)) throw new Error("migration 0009: 0008's function text changed")
  return commitBatch0008
    .replace(fenceCheck, "    IF fence IS NOT NULL AND NOT (fence ? 'createUntil') THEN\n      PERFORM 1 FROM a2a_leases")
    .replace(
      rowMoved,
      `${rowMoved}    IF fence IS NOT NULL AND fence ? 'createUntil' THEN
      INSERT INTO a2a_leases (task_id, owner, epoch, expires_at)
        VALUES (plan->>'taskId', fence->>'owner', (fence->>'epoch')::bigint, (fence->>'createUntil')::bigint)
        ON CONFLICT (task_id) DO NOTHING;
    END IF;
`
    )
})()

const m0009 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.onDialectOrElse({
    pg: () => sql.unsafe(commitBatch0009),
    orElse: () => Effect.void
  })
})

/**
 * PostgreSQL: the batch function again (0009's, one change): the step journal's events (StepCompleted,
 * StepAttemptFailed, StepsReset) get no outbox rows, as no webhook is told of them. (Rows queued for them
 * before this migration are marked delivered by the deliverer without a POST.)
 */
const outboxRows = `      INSERT INTO a2a_push_outbox (task_id, config_id, context_id, version, status, attempts, next_attempt_at, last_error, created_at, updated_at)
        SELECT task_id, config_id, r->>'context_id', v, 'pending', 0, (plan->>'now')::bigint, NULL, at_text, at_text
        FROM a2a_push_configs WHERE task_id = plan->>'taskId' ORDER BY config_id;
      GET DIAGNOSTICS added = ROW_COUNT;
      queued := queued + added;
`
const commitBatch0010 = (() => {
  if (!commitBatch0009.includes(outboxRows)) throw new Error("migration 0010: 0009's function text changed")
  const indented = outboxRows
    .split("\n")
    .map((line) => (line === "" ? line : `  ${line}`))
    .join("\n")
  return commitBatch0009.replace(
    outboxRows,
    `      IF e->>'type' NOT IN ('StepCompleted', 'StepAttemptFailed', 'StepsReset') THEN
${indented}      END IF;
`
  )
})()

const m0010 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql.onDialectOrElse({
    pg: () => sql.unsafe(commitBatch0010),
    orElse: () => Effect.void
  })
})

/**
 * Durable timers and flow control (`ctx.sleep`, fair starts; issue 13).
 *   - `wake_at`: when a task sleeping on a timer is due (ms), else NULL; the writer sets it with the row.
 *   - `priority`: the priority of a task's current turn (its input message's `a2a-ledger/priority`); the
 *     submitted tasks get an index by tenant, priority and age, for claims that take turns across tenants.
 *   - Sleeping tasks get an index of their own, by due time; the waiting index (claims: the oldest task in a
 *     state with no live lease) leaves them out, so a claim does not walk past every sleeping task.
 *   - PostgreSQL: the batch function again (0010's, two changes): it writes `wake_at` and `priority`, and it leaves out of the
 *     outbox every event the plan marks as the journal's (where 0010 named the step events), so the journal
 *     can grow without another migration.
 */
const journalByType = "      IF e->>'type' NOT IN ('StepCompleted', 'StepAttemptFailed', 'StepsReset') THEN\n"
const insertRow = `    IF expected = 0 THEN
      INSERT INTO a2a_tasks (task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot)
        VALUES (r->>'task_id', r->>'tenant', r->>'owner', r->>'context_id', r->>'state', (r->>'version')::integer,
          r->>'status_timestamp', r->>'created_at', r->>'snapshot')
        ON CONFLICT (task_id) DO NOTHING;
    ELSE
      UPDATE a2a_tasks SET state = r->>'state', version = (r->>'version')::integer, status_timestamp = r->>'status_timestamp',
          snapshot = r->>'snapshot'
        WHERE task_id = r->>'task_id' AND version = expected;
    END IF;
`
const commitBatch0011 = (() => {
  if (!commitBatch0010.includes(journalByType) || !commitBatch0010.includes(insertRow))
    throw new Error("migration 0011: 0010's function text changed")
  return commitBatch0010.replace(journalByType, "      IF (e->>'journal') IS NULL THEN\n").replace(
    insertRow,
    `    IF expected = 0 THEN
      INSERT INTO a2a_tasks (task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot, wake_at, priority)
        VALUES (r->>'task_id', r->>'tenant', r->>'owner', r->>'context_id', r->>'state', (r->>'version')::integer,
          r->>'status_timestamp', r->>'created_at', r->>'snapshot', (r->>'wake_at')::bigint, (r->>'priority')::integer)
        ON CONFLICT (task_id) DO NOTHING;
    ELSE
      UPDATE a2a_tasks SET state = r->>'state', version = (r->>'version')::integer, status_timestamp = r->>'status_timestamp',
          snapshot = r->>'snapshot', wake_at = (r->>'wake_at')::bigint, priority = (r->>'priority')::integer
        WHERE task_id = r->>'task_id' AND version = expected;
    END IF;
`
  )
})()

/**
 * PostgreSQL: a claim (LeaseStore.claim) as one function, so its plans are made once per connection (a
 * statement sent as text is planned at every call, and this one, with its walk over tenants, took longer
 * to plan than to run). Lost turns and due timers first; then submitted tasks fairly across tenants: each
 * tenant with waiting tasks gets a share of the claim, the tenants this claimer served least lately
 * (`p_served`, the latest last) first, each share taken by priority then age; what the shares leave is
 * filled with the oldest waiting tasks. Tenants and principals (`tenant || chr(1) || owner`) at their
 * running limits are passed over.
 */
const claim0011 = `CREATE OR REPLACE FUNCTION a2a_claim(p_owner text, p_now bigint, p_ttl bigint, p_limit integer,
  p_excluded_tenants text[], p_excluded_principals text[], p_served text[])
RETURNS TABLE(claimed_task text, claimed_epoch bigint) LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
BEGIN
  FOR r IN
    WITH RECURSIVE tenants(tenant) AS (
      SELECT MIN(t.tenant) FROM a2a_tasks t WHERE t.state = 'TASK_STATE_SUBMITTED' AND t.wake_at IS NULL
      UNION ALL
      SELECT (SELECT MIN(t.tenant) FROM a2a_tasks t WHERE t.state = 'TASK_STATE_SUBMITTED' AND t.wake_at IS NULL AND t.tenant > w.tenant)
      FROM tenants w WHERE w.tenant IS NOT NULL
    ),
    heads AS (
      SELECT w.tenant, (SELECT t.status_timestamp FROM a2a_tasks t WHERE t.state = 'TASK_STATE_SUBMITTED' AND t.wake_at IS NULL
          AND t.tenant = w.tenant ORDER BY t.priority DESC, t.status_timestamp, t.task_id LIMIT 1) AS head
      FROM tenants w WHERE w.tenant IS NOT NULL AND w.tenant <> ALL (p_excluded_tenants)
    ),
    shares AS (
      SELECT h.tenant, COALESCE(array_position(p_served, h.tenant), 0) AS turn,
        (p_limit + COUNT(*) OVER () - ROW_NUMBER() OVER (ORDER BY COALESCE(array_position(p_served, h.tenant), 0), h.head, h.tenant)) / COUNT(*) OVER () AS share
      FROM heads h
    ),
    fair AS (
      SELECT q.task_id, q.status_timestamp, 1 AS tier, q.rn * 1000000 + s.turn AS rn FROM shares s CROSS JOIN LATERAL (
        SELECT c.task_id, c.status_timestamp, ROW_NUMBER() OVER (ORDER BY c.priority DESC, c.status_timestamp, c.task_id) AS rn FROM (
          SELECT t.task_id, t.status_timestamp, t.priority FROM a2a_tasks t
          WHERE t.state = 'TASK_STATE_SUBMITTED' AND t.wake_at IS NULL AND t.tenant = s.tenant
            AND (t.tenant || chr(1) || t.owner) <> ALL (p_excluded_principals)
            AND NOT EXISTS (SELECT 1 FROM a2a_leases l WHERE l.task_id = t.task_id AND l.expires_at >= p_now)
          ORDER BY t.priority DESC, t.status_timestamp, t.task_id
          LIMIT p_limit
          FOR UPDATE OF t SKIP LOCKED
        ) c
      ) q WHERE s.share > 0 AND q.rn <= s.share
    ),
    orphans AS (
      SELECT t.task_id, t.status_timestamp, 0 AS tier, 0::bigint AS rn FROM a2a_tasks t
      WHERE t.state = 'TASK_STATE_WORKING' AND t.wake_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM a2a_leases l WHERE l.task_id = t.task_id AND l.expires_at >= p_now)
      ORDER BY t.status_timestamp, t.task_id LIMIT p_limit
      FOR UPDATE OF t SKIP LOCKED
    ),
    due AS (
      SELECT t.task_id, t.status_timestamp, 0 AS tier, 0::bigint AS rn FROM a2a_tasks t
      WHERE t.wake_at IS NOT NULL AND t.wake_at <= p_now AND t.tenant <> ALL (p_excluded_tenants)
        AND (t.tenant || chr(1) || t.owner) <> ALL (p_excluded_principals)
        AND NOT EXISTS (SELECT 1 FROM a2a_leases l WHERE l.task_id = t.task_id AND l.expires_at >= p_now)
      ORDER BY t.wake_at, t.task_id LIMIT p_limit
      FOR UPDATE OF t SKIP LOCKED
    ),
    rest AS (
      SELECT t.task_id, t.status_timestamp, 2 AS tier, 1000000000000::bigint AS rn FROM a2a_tasks t
      WHERE t.state = 'TASK_STATE_SUBMITTED' AND t.wake_at IS NULL AND t.tenant <> ALL (p_excluded_tenants)
        AND (t.tenant || chr(1) || t.owner) <> ALL (p_excluded_principals)
        AND NOT EXISTS (SELECT 1 FROM a2a_leases l WHERE l.task_id = t.task_id AND l.expires_at >= p_now)
      ORDER BY t.status_timestamp, t.task_id LIMIT p_limit
      FOR UPDATE OF t SKIP LOCKED
    ),
    candidates AS (
      SELECT c.task_id FROM (
        SELECT u.task_id, MIN(u.tier) AS tier, MIN(u.rn) AS rn, MIN(u.status_timestamp) AS status_timestamp FROM (
          SELECT * FROM orphans UNION ALL SELECT * FROM due UNION ALL SELECT * FROM fair UNION ALL SELECT * FROM rest
        ) u GROUP BY u.task_id
      ) c ORDER BY c.tier, c.rn, c.status_timestamp, c.task_id LIMIT p_limit
    )
    INSERT INTO a2a_leases AS l (task_id, owner, epoch, expires_at)
    SELECT c.task_id, p_owner, 1, p_now + p_ttl FROM candidates c
    ON CONFLICT (task_id) DO UPDATE SET owner = excluded.owner, epoch = l.epoch + 1, expires_at = excluded.expires_at
      WHERE l.expires_at < p_now
    RETURNING l.task_id, l.epoch
  LOOP
    claimed_task := r.task_id;
    claimed_epoch := r.epoch;
    RETURN NEXT;
  END LOOP;
END
$fn$`

const m0011 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  // (A store whose record of migrations was cut back, as tests do, may have the column already.)
  const columns = yield* sql.onDialectOrElse({
    pg: () =>
      sql<{
        name: string
      }>`SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'a2a_tasks'`,
    orElse: () => sql<{ name: string }>`SELECT name FROM pragma_table_info('a2a_tasks')`
  })
  if (!columns.some((c) => c.name === "wake_at")) yield* sql`ALTER TABLE a2a_tasks ADD COLUMN wake_at BIGINT`
  if (!columns.some((c) => c.name === "priority")) yield* sql`ALTER TABLE a2a_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0`
  // Live leases, for what running limits count (a released or lapsed lease is past them).
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_leases_live ON a2a_leases (expires_at)`
  // The queue of one process and of claims, tenant by tenant (fair starts), each by priority then age.
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_submitted_fair ON a2a_tasks (tenant, priority DESC, status_timestamp, task_id)
    WHERE state = 'TASK_STATE_SUBMITTED' AND wake_at IS NULL`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_sleeping ON a2a_tasks (wake_at, task_id) WHERE wake_at IS NOT NULL`
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_tasks_waiting_awake ON a2a_tasks (state, status_timestamp, task_id) WHERE wake_at IS NULL`
  yield* sql`DROP INDEX IF EXISTS a2a_tasks_waiting`
  yield* sql.onDialectOrElse({
    pg: () => Effect.zipRight(sql.unsafe(commitBatch0011), sql.unsafe(claim0011)),
    orElse: () => Effect.void
  })
})

/**
 * Idempotency keys expire (issue 15): `accepted_at` is when the key's message was accepted (ms), filled
 * for existing keys from their event's time. A key older than the window (EngineConfig) no longer
 * answers for its task: a new message under its id takes it over, and the expiry loop (KeyExpiry.ts)
 * deletes it, oldest first, by the new index.
 * PostgreSQL: the batch function again (0011's, one change): a key taken by an expired one is claimed
 * over it (the plan's key carries `expiresBefore`).
 */
const claimKey0011 = `      INSERT INTO a2a_message_ids (tenant, owner, message_id, task_id, version)
        VALUES (key->>'tenant', key->>'owner', key->>'messageId', plan->>'taskId', expected + 1)
        ON CONFLICT DO NOTHING;
`
const commitBatch0012 = (() => {
  if (!commitBatch0011.includes(claimKey0011)) throw new Error("migration 0012: 0011's function text changed")
  return commitBatch0011.replace(
    claimKey0011,
    `      INSERT INTO a2a_message_ids AS k (tenant, owner, message_id, task_id, version, accepted_at)
        VALUES (key->>'tenant', key->>'owner', key->>'messageId', plan->>'taskId', expected + 1, (plan->>'now')::bigint)
        ON CONFLICT (tenant, owner, message_id) DO UPDATE SET task_id = excluded.task_id, version = excluded.version,
          accepted_at = excluded.accepted_at
          WHERE k.accepted_at < (key->>'expiresBefore')::bigint;
`
  )
})()

const m0012 = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const columns = yield* sql.onDialectOrElse({
    pg: () =>
      sql<{
        name: string
      }>`SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'a2a_message_ids'`,
    orElse: () => sql<{ name: string }>`SELECT name FROM pragma_table_info('a2a_message_ids')`
  })
  if (!columns.some((c) => c.name === "accepted_at")) {
    yield* sql`ALTER TABLE a2a_message_ids ADD COLUMN accepted_at BIGINT NOT NULL DEFAULT 0`
    const eventMs = sql.onDialectOrElse({
      pg: () => sql.literal("(EXTRACT(EPOCH FROM e.created_at::timestamptz) * 1000)::bigint"),
      orElse: () => sql.literal("CAST(ROUND((julianday(e.created_at) - 2440587.5) * 86400000) AS INTEGER)")
    })
    yield* sql`UPDATE a2a_message_ids SET accepted_at = COALESCE((SELECT ${eventMs} FROM a2a_events e
      WHERE e.task_id = a2a_message_ids.task_id AND e.version = a2a_message_ids.version), ${Date.now()})`
  }
  yield* sql`CREATE INDEX IF NOT EXISTS a2a_message_ids_by_age ON a2a_message_ids (accepted_at)`
  yield* sql.onDialectOrElse({
    pg: () => sql.unsafe(commitBatch0012),
    orElse: () => Effect.void
  })
})

export const run = Migrator.make({})({
  loader: Migrator.fromRecord({
    "0001_event_log_and_tasks": m0001,
    "0002_push_notifications": m0002,
    "0003_task_owner": m0003,
    "0004_leases": m0004,
    "0005_event_tx": m0005,
    "0006_message_ids": m0006,
    "0007_list_at_scale": m0007,
    "0008_pg_commit_batch": m0008,
    "0009_pg_commit_batch_hand_off": m0009,
    "0010_pg_commit_batch_no_journal_outbox": m0010,
    "0011_durable_timers": m0011,
    "0012_message_key_expiry": m0012
  }),
  table: "a2a_migrations"
})
