import Database from "better-sqlite3"
import { Context, Effect, Layer } from "effect"
import { SqlError } from "@effect/sql/SqlError"

/**
 * The writer's own connection to a SQLite store, and the one call a batch of
 * commits makes to it. A batch is a list of plans, one per command the writer
 * decided; each plan holds everything its commit writes: the new events, the
 * task's read-model row, the message key it claims, a push config sent with
 * the message, and one outbox row per event and push config of the task. The
 * whole batch is one transaction, run by better-sqlite3's prepared statements
 * in one synchronous call: no statement is compiled, cached or wrapped in an
 * Effect per commit.
 *
 * A plan checks its expected version on the read-model row (`UPDATE … WHERE
 * version = ?`, or an insert that must be the first): the row and the log
 * move together (invariant 4), so this costs no extra query, and the log's
 * `UNIQUE (task_id, version)` stays the last line of defence. A plan refused
 * there or by its message key writes nothing and leaves the others alone.
 *
 * This connection and the store's SqlClient share the file. They never wait
 * for each other: a batch holds the write lock only within one synchronous
 * call, and a busy lock (a tool writing beside the server) fails the BEGIN at
 * once, to be tried again by the writer.
 */

/** The task's row in the read model (`a2a_tasks`), as the writer folded it. */
export interface TaskRow {
  readonly task_id: string
  readonly tenant: string
  readonly owner: string
  readonly context_id: string
  readonly state: string
  readonly version: number
  readonly status_timestamp: string
  readonly created_at: string
  readonly snapshot: string
}

export interface EventRow {
  readonly type: string
  readonly schema_version: number
  readonly payload: string
  readonly created_at: string
}

/** A push config row (`a2a_push_configs`), sent with a message. */
export interface PushConfigRow {
  readonly config_id: string
  readonly tenant: string
  readonly url: string
  readonly token: string | null
  readonly auth_scheme: string | null
  readonly auth_credentials: string | null
  readonly format: string
  readonly created_at: string
}

export interface CommitPlan {
  readonly taskId: string
  /** The task's version the events were decided on (0: a new task). */
  readonly expectedVersion: number
  readonly events: ReadonlyArray<EventRow>
  readonly metadata: string
  readonly row: TaskRow
  /** The user message this commit records, for idempotency. */
  readonly messageKey?: {
    readonly tenant: string
    readonly owner: string
    readonly messageId: string
    /** A key already taken: refuse the plan (default), or write it anyway and leave the key with its first task. */
    readonly duplicates: "refuse" | "accept"
  }
  readonly pushConfig?: PushConfigRow
  /** Epoch ms: when outbox rows are first due. */
  readonly now: number
}

export type PlanOutcome =
  | { readonly _tag: "Written"; readonly queued: number }
  /** The task is not at the expected version (the writer's view was stale): nothing written. */
  | { readonly _tag: "Conflict" }
  /** The message key was taken, by this task at this version: nothing written. */
  | { readonly _tag: "Duplicate"; readonly taskId: string; readonly version: number }

export class SqliteCommits extends Context.Tag("a2a-ledger/SqliteCommits")<
  SqliteCommits,
  {
    /** Write a batch in one transaction; a SqlError means none of it was written. */
    readonly write: (plans: ReadonlyArray<CommitPlan>) => Effect.Effect<ReadonlyArray<PlanOutcome>, SqlError>
    /** The task's committed snapshot JSON (the read-model row), read on this connection. */
    readonly load: (taskId: string) => Effect.Effect<string | undefined, SqlError>
    /** A PRAGMA on this connection (some, like `max_page_count`, are per connection); returns its rows. */
    readonly pragma: (statement: string) => Effect.Effect<unknown, SqlError>
  }
>() {}

const prepare = (db: Database.Database) => ({
  begin: db.prepare("BEGIN IMMEDIATE"),
  commit: db.prepare("COMMIT"),
  rollback: db.prepare("ROLLBACK"),
  insertTask: db.prepare(`INSERT INTO a2a_tasks (task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot)
    VALUES (@task_id, @tenant, @owner, @context_id, @state, @version, @status_timestamp, @created_at, @snapshot)
    ON CONFLICT (task_id) DO NOTHING`),
  updateTask: db.prepare(`UPDATE a2a_tasks SET state = @state, version = @version, status_timestamp = @status_timestamp, snapshot = @snapshot
    WHERE task_id = @task_id AND version = @expected`),
  insertEvent: db.prepare(`INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)`),
  findKey: db.prepare<[string, string, string], { task_id: string; version: number }>(
    "SELECT task_id, version FROM a2a_message_ids WHERE tenant = ? AND owner = ? AND message_id = ?"
  ),
  claimKey: db.prepare("INSERT INTO a2a_message_ids (tenant, owner, message_id, task_id, version) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
  saveConfig: db.prepare(`INSERT INTO a2a_push_configs (task_id, config_id, tenant, url, token, auth_scheme, auth_credentials, format, created_at)
    VALUES (@task_id, @config_id, @tenant, @url, @token, @auth_scheme, @auth_credentials, @format, @created_at)
    ON CONFLICT (task_id, config_id) DO UPDATE SET url = excluded.url, token = excluded.token,
      auth_scheme = excluded.auth_scheme, auth_credentials = excluded.auth_credentials, format = excluded.format`),
  // One outbox row per push config of the task, for one event; none (and no work) for a task without configs.
  enqueue: db.prepare(`INSERT INTO a2a_push_outbox (task_id, config_id, context_id, version, status, attempts, next_attempt_at, last_error, created_at, updated_at)
    SELECT task_id, config_id, ?, ?, 'pending', 0, ?, NULL, ?, ? FROM a2a_push_configs WHERE task_id = ? ORDER BY config_id`),
  load: db.prepare<[string], { snapshot: string }>("SELECT snapshot FROM a2a_tasks WHERE task_id = ?")
})

type Statements = ReturnType<typeof prepare>

const writePlan = (s: Statements, plan: CommitPlan): PlanOutcome => {
  const key = plan.messageKey
  // The key is looked up first: within this transaction nobody else can take it before the claim below.
  const taken = key === undefined ? undefined : s.findKey.get(key.tenant, key.owner, key.messageId)
  if (taken !== undefined && key?.duplicates !== "accept") return { _tag: "Duplicate", taskId: taken.task_id, version: Number(taken.version) }
  const row = plan.row
  const moved = plan.expectedVersion === 0 ? s.insertTask.run(row) : s.updateTask.run({ ...row, expected: plan.expectedVersion })
  if (moved.changes !== 1) return { _tag: "Conflict" }
  const at = new Date(plan.now).toISOString()
  let queued = 0
  for (const [i, e] of plan.events.entries()) {
    const version = plan.expectedVersion + i + 1
    s.insertEvent.run(plan.taskId, version, e.type, e.schema_version, e.payload, plan.metadata, e.created_at)
    if (i === 0 && plan.pushConfig !== undefined) s.saveConfig.run({ ...plan.pushConfig, task_id: plan.taskId })
    queued += s.enqueue.run(row.context_id, version, plan.now, at, at, plan.taskId).changes
  }
  if (key !== undefined && taken === undefined) s.claimKey.run(key.tenant, key.owner, key.messageId, plan.taskId, plan.expectedVersion + 1)
  return { _tag: "Written", queued }
}

const sqlError = (cause: unknown, message: string) => new SqlError({ cause, message })

/**
 * The connection, opened on a store whose schema is in place. `synchronous`
 * as the store's other connection has it (see Store and Durability).
 */
export const layer = (filename: string, options: { readonly synchronous: "FULL" | "NORMAL" }) =>
  Layer.scoped(
    SqliteCommits,
    Effect.gen(function* () {
      const db = yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            const db = new Database(filename)
            db.pragma(`synchronous = ${options.synchronous}`)
            // Never sleep on the event loop waiting for a lock: the writer tries again instead.
            db.pragma("busy_timeout = 0")
            return db
          },
          catch: (cause) => sqlError(cause, `cannot open ${filename} for writing`)
        }),
        (db) => Effect.sync(() => db.close())
      )
      const s = yield* Effect.try({ try: () => prepare(db), catch: (cause) => sqlError(cause, "cannot prepare the writer's statements") })
      const write = (plans: ReadonlyArray<CommitPlan>) =>
        Effect.try({
          try: () => {
            s.begin.run()
            try {
              const outcomes = plans.map((plan) => writePlan(s, plan))
              s.commit.run()
              return outcomes
            } catch (cause) {
              // SQLite may have rolled back already (SQLITE_FULL does): then this ROLLBACK fails, and that changes nothing.
              if (db.inTransaction) {
                try {
                  s.rollback.run()
                } catch {
                  // the error that matters is `cause`
                }
              }
              throw cause
            }
          },
          catch: (cause) => sqlError(cause, "the writer's transaction failed")
        })
      const load = (taskId: string) =>
        Effect.try({ try: () => s.load.get(taskId)?.snapshot, catch: (cause) => sqlError(cause, "cannot read a task's row") })
      const pragma = (statement: string) =>
        Effect.try({ try: () => db.pragma(statement), catch: (cause) => sqlError(cause, `PRAGMA ${statement} failed`) })
      return SqliteCommits.of({ write, load, pragma })
    })
  )
