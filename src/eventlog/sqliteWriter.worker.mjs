// @ts-check
/**
 * The writer's SQLite connection, in a thread of its own (see SqliteCommits.ts).
 *
 * better-sqlite3 is synchronous: on the main thread every statement of a
 * batch, and every disk sync, stops all requests. Here they stop only this
 * thread, while the main thread goes on serving and the next batch grows.
 *
 * Plain JavaScript, so that it runs as it is under the tests and beside the
 * bundle (scripts/build.mjs copies it into dist/). It takes one request at a
 * time, in order, and answers each:
 *   { id, op: "open", filename, sync }   sync: "wal" (sync the WAL after each commit) or "none"
 *   { id, op: "write", plans }           -> outcomes, one per plan (CommitPlan / PlanOutcome)
 *   { id, op: "load", taskId }           -> the task's snapshot JSON, or undefined
 *   { id, op: "sync" }                   -> everything committed so far (by any connection) is on disk
 *   { id, op: "ping" }                   -> nothing: every request before it was answered
 *   { id, op: "pragma", statement }      -> the pragma's rows
 *   { id, op: "close" }
 * A failure is answered as { id, error: { message, code } }: `code` is
 * better-sqlite3's (SQLITE_FULL, SQLITE_BUSY…) or the sync's (see syncError).
 */
import Database from "better-sqlite3"
import * as fs from "node:fs"
import { parentPort } from "node:worker_threads"

/** @type {import("better-sqlite3").Database | undefined} */
let db
/** @type {ReturnType<typeof prepare> | undefined} */
let s
let syncs = false
let wal = ""
/** Why the connection could not be opened: every later request fails with it. @type {unknown} */
let openFailure

/** @param {import("better-sqlite3").Database} db */
const prepare = (db) => ({
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
  findKey: db.prepare("SELECT task_id, version FROM a2a_message_ids WHERE tenant = ? AND owner = ? AND message_id = ?"),
  claimKey: db.prepare("INSERT INTO a2a_message_ids (tenant, owner, message_id, task_id, version) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"),
  saveConfig: db.prepare(`INSERT INTO a2a_push_configs (task_id, config_id, tenant, url, token, auth_scheme, auth_credentials, format, created_at)
    VALUES (@task_id, @config_id, @tenant, @url, @token, @auth_scheme, @auth_credentials, @format, @created_at)
    ON CONFLICT (task_id, config_id) DO UPDATE SET url = excluded.url, token = excluded.token,
      auth_scheme = excluded.auth_scheme, auth_credentials = excluded.auth_credentials, format = excluded.format`),
  // One outbox row per push config of the task, for one event; none (and no work) for a task without configs.
  enqueue: db.prepare(`INSERT INTO a2a_push_outbox (task_id, config_id, context_id, version, status, attempts, next_attempt_at, last_error, created_at, updated_at)
    SELECT task_id, config_id, ?, ?, 'pending', 0, ?, NULL, ?, ? FROM a2a_push_configs WHERE task_id = ? ORDER BY config_id`),
  load: db.prepare("SELECT snapshot FROM a2a_tasks WHERE task_id = ?")
})

/**
 * One plan inside the batch's transaction: refused by its message key or its
 * expected version (then it writes nothing), or written whole.
 * @param {ReturnType<typeof prepare>} s
 * @param {any} plan
 */
const writePlan = (s, plan) => {
  const key = plan.messageKey
  // The key is looked up first: within this transaction nobody else can take it before the claim below.
  const taken = key === undefined ? undefined : /** @type {any} */ (s.findKey.get(key.tenant, key.owner, key.messageId))
  if (taken !== undefined && key.duplicates !== "accept") return { _tag: "Duplicate", taskId: taken.task_id, version: Number(taken.version) }
  const row = plan.row
  const moved = plan.expectedVersion === 0 ? s.insertTask.run(row) : s.updateTask.run({ ...row, expected: plan.expectedVersion })
  if (moved.changes !== 1) return { _tag: "Conflict" }
  const at = new Date(plan.now).toISOString()
  let queued = 0
  for (let i = 0; i < plan.events.length; i++) {
    const e = plan.events[i]
    const version = plan.expectedVersion + i + 1
    s.insertEvent.run(plan.taskId, version, e.type, e.schema_version, e.payload, plan.metadata, e.created_at)
    if (i === 0 && plan.pushConfig !== undefined) s.saveConfig.run({ ...plan.pushConfig, task_id: plan.taskId })
    queued += s.enqueue.run(row.context_id, version, plan.now, at, at, plan.taskId).changes
  }
  if (key !== undefined && taken === undefined) s.claimKey.run(key.tenant, key.owner, key.messageId, plan.taskId, plan.expectedVersion + 1)
  return { _tag: "Written", queued }
}

/**
 * One descriptor of the WAL, kept while the file at the WAL's path is the one
 * it opened (a stat per sync): a WAL removed under the server is not synced
 * as if it counted.
 * @type {{ fd: number, id: string } | undefined}
 */
let open
/** @param {fs.Stats} st */
const identity = (st) => `${st.dev}:${st.ino}`
const syncWal = () => {
  try {
    const now = identity(fs.statSync(wal))
    if (open?.id !== now) {
      if (open !== undefined) fs.closeSync(open.fd)
      open = undefined
      const fd = fs.openSync(wal, "r")
      open = { fd, id: identity(fs.fstatSync(fd)) }
    }
    fs.fdatasyncSync(open.fd)
  } catch (cause) {
    throw syncError(cause)
  }
}

/** A failed sync, with a code StoreFault reads like a driver's. @param {any} cause */
const syncError = (cause) => {
  const code = cause?.code === "ENOSPC" ? "SQLITE_FULL" : cause?.code === "ENOENT" ? "A2A_SQLITE_FILE_GONE" : "SQLITE_IOERR"
  return Object.assign(new Error(`cannot sync ${wal}: ${cause?.message ?? cause}`), { code })
}

/** @param {any} plans */
const write = (plans) => {
  if (s === undefined || db === undefined) throw new Error("the writer's connection is not open")
  s.begin.run()
  let outcomes
  try {
    outcomes = plans.map((/** @type {any} */ plan) => writePlan(/** @type {ReturnType<typeof prepare>} */ (s), plan))
    s.commit.run()
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
  // The lock is free again before the disk sync: the main thread's own writes do not wait for the disk.
  if (syncs) syncWal()
  return outcomes
}

/** @param {any} request */
const handle = (request) => {
  if (openFailure !== undefined && request.op !== "close") throw openFailure
  switch (request.op) {
    case "open": {
      try {
        db = new Database(request.filename)
        // Synced here after each commit (sync "wal"), or never (the store's `normal`).
        db.pragma("synchronous = NORMAL")
        // A busy lock (a tool writing beside the server) fails at once, and the main thread tries again later.
        db.pragma("busy_timeout = 0")
        s = prepare(db)
      } catch (cause) {
        openFailure = cause
        throw cause
      }
      syncs = request.sync === "wal"
      wal = `${request.filename}-wal`
      return undefined
    }
    case "write":
      return write(request.plans)
    case "load":
      return /** @type {any} */ (s?.load.get(request.taskId))?.snapshot
    case "sync":
      if (syncs) syncWal()
      return undefined
    case "ping":
      return undefined
    case "pragma":
      return db?.pragma(request.statement)
    case "close":
      if (open !== undefined) fs.closeSync(open.fd)
      open = undefined
      db?.close()
      db = undefined
      s = undefined
      return undefined
    default:
      throw new Error(`unknown request ${request.op}`)
  }
}

const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort)
port.on("message", (request) => {
  try {
    port.postMessage({ id: request.id, value: handle(request) })
  } catch (cause) {
    const e = /** @type {any} */ (cause)
    port.postMessage({ id: request.id, error: { message: String(e?.message ?? e), code: typeof e?.code === "string" ? e.code : undefined } })
  }
  if (request.op === "close") port.close()
})
