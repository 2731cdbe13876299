// @ts-check
/**
 * The writer's SQLite connection, in a thread of its own (see SqliteCommits.ts).
 *
 * better-sqlite3 is synchronous: on the main thread every statement of a
 * batch, and every disk sync, stops all requests. Here they stop only this
 * thread, while the main thread goes on serving and the next batch grows.
 *
 * Plain JavaScript, so that it runs as it is under the tests and beside the
 * bundle (scripts/build.mjs copies it into dist/). It takes requests in
 * order and answers each with its id:
 *   { op: "open", filename, sync }   sync: "wal" (this thread syncs the WAL) or "none" (SQLite's NORMAL)
 *   { op: "write", plans }           -> outcomes, one per plan (CommitPlan / PlanOutcome), once committed;
 *                                       then, with sync "wal", { synced: true } or { syncError } once on disk
 *   { op: "load", taskId }           -> the task's snapshot JSON, or undefined
 *   { op: "sync" }                   -> everything committed so far (by any connection) is on disk
 *   { op: "ping" }                   -> nothing
 *   { op: "pragma", statement }      -> the pragma's rows
 *   { op: "close" }
 * A failure is answered as { id, error: { message, code } }: `code` is
 * better-sqlite3's (SQLITE_FULL, SQLITE_BUSY…) or the sync's (see syncError).
 */
import Database from "better-sqlite3"
import * as fs from "node:fs"
import { parentPort, receiveMessageOnPort } from "node:worker_threads"

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
  insertTask:
    db.prepare(`INSERT INTO a2a_tasks (task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot, wake_at, priority)
    VALUES (@task_id, @tenant, @owner, @context_id, @state, @version, @status_timestamp, @created_at, @snapshot, @wake_at, @priority)
    ON CONFLICT (task_id) DO NOTHING`),
  updateTask: db.prepare(`UPDATE a2a_tasks SET state = @state, version = @version, status_timestamp = @status_timestamp, snapshot = @snapshot,
    wake_at = @wake_at, priority = @priority WHERE task_id = @task_id AND version = @expected`),
  insertEvent: db.prepare(`INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)`),
  // A key accepted before the plan's `expiresBefore` has expired: it is not found, and a claim takes it over.
  findKey: db.prepare("SELECT task_id, version FROM a2a_message_ids WHERE tenant = ? AND owner = ? AND message_id = ? AND accepted_at >= ?"),
  claimKey: db.prepare(`INSERT INTO a2a_message_ids (tenant, owner, message_id, task_id, version, accepted_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (tenant, owner, message_id) DO UPDATE SET task_id = excluded.task_id, version = excluded.version, accepted_at = excluded.accepted_at`),
  saveConfig: db.prepare(`INSERT INTO a2a_push_configs (task_id, config_id, tenant, url, token, auth_scheme, auth_credentials, format, created_at)
    VALUES (@task_id, @config_id, @tenant, @url, @token, @auth_scheme, @auth_credentials, @format, @created_at)
    ON CONFLICT (task_id, config_id) DO UPDATE SET url = excluded.url, token = excluded.token,
      auth_scheme = excluded.auth_scheme, auth_credentials = excluded.auth_credentials, format = excluded.format`),
  // One outbox row per push config of the task, for one event; none (and no work) for a task without configs.
  enqueue:
    db.prepare(`INSERT INTO a2a_push_outbox (task_id, config_id, context_id, version, status, attempts, next_attempt_at, last_error, created_at, updated_at)
    SELECT task_id, config_id, ?, ?, 'pending', 0, ?, NULL, ?, ? FROM a2a_push_configs WHERE task_id = ? ORDER BY config_id`),
  anyConfig: db.prepare("SELECT 1 FROM a2a_push_configs WHERE task_id = ? LIMIT 1").pluck(),
  load: db.prepare("SELECT snapshot FROM a2a_tasks WHERE task_id = ?")
})

/**
 * `{ ...base, ...extra }` with one hidden class for all such objects (src/domain/extend.ts says why): a
 * spread of a received plan's row followed by a property gets a class of its own each time in Node 20.
 * @param {object} base
 * @param {object} extra
 */
const extend = (base, extra) => Object.assign(Object.assign({}, base), extra)

/**
 * One plan inside the batch's transaction: refused by its message key or its
 * expected version (then it writes nothing), or written whole.
 * @param {ReturnType<typeof prepare>} s
 * @param {any} plan
 */
const writePlan = (s, plan) => {
  const key = plan.messageKey
  // The key is looked up first: within this transaction nobody else can take it before the claim below.
  const taken = key === undefined ? undefined : /** @type {any} */ (s.findKey.get(key.tenant, key.owner, key.messageId, key.expiresBefore ?? 0))
  if (taken !== undefined && key.duplicates !== "accept") return { _tag: "Duplicate", taskId: taken.task_id, version: Number(taken.version) }
  const row = plan.row
  const moved = plan.expectedVersion === 0 ? s.insertTask.run(row) : s.updateTask.run(extend(row, { expected: plan.expectedVersion }))
  if (moved.changes !== 1) return { _tag: "Conflict" }
  const at = new Date(plan.now).toISOString()
  // Outbox rows only for a task with push configs: a new one has none but the one it is sent with, any
  // other is looked up once here rather than by every event's INSERT … SELECT.
  const pushes = plan.pushConfig !== undefined || (plan.expectedVersion > 0 && s.anyConfig.get(plan.taskId) !== undefined)
  let queued = 0
  for (let i = 0; i < plan.events.length; i++) {
    const e = plan.events[i]
    const version = plan.expectedVersion + i + 1
    s.insertEvent.run(plan.taskId, version, e.type, e.schema_version, e.payload, plan.metadata, e.created_at)
    if (i === 0 && plan.pushConfig !== undefined) s.saveConfig.run(extend(plan.pushConfig, { task_id: plan.taskId }))
    // The step journal's events (marked by the plan) get no outbox rows: no webhook is told of them
    // (test/eventlog/outbox.test.ts checks it on every store).
    if (pushes && e.journal !== true) queued += s.enqueue.run(row.context_id, version, plan.now, at, at, plan.taskId).changes
  }
  if (key !== undefined && taken === undefined) s.claimKey.run(key.tenant, key.owner, key.messageId, plan.taskId, plan.expectedVersion + 1, plan.now)
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
const walFile = () => {
  const now = identity(fs.statSync(wal))
  if (open?.id === now) return open.fd
  if (open !== undefined) fs.closeSync(open.fd)
  open = undefined
  const fd = fs.openSync(wal, "r")
  open = { fd, id: identity(fs.fstatSync(fd)) }
  return fd
}

/**
 * Who waits for the next sync of the WAL. It runs on this thread once the
 * requests queued so far are handled (see the message loop below): one sync
 * covers every commit written before it (group commit), and while the disk
 * syncs, the main thread goes on and the next requests queue up.
 * @type {Array<(error: Error | undefined) => void>}
 */
let waiters = []
/** @param {(error: Error | undefined) => void} answer */
const afterSync = (answer) => void waiters.push(answer)

/** One sync for everyone waiting: on this thread, once the requests queued so far are handled. */
const syncNow = () => {
  if (waiters.length === 0) return
  const due = waiters
  waiters = []
  let error
  try {
    fs.fdatasyncSync(walFile())
  } catch (cause) {
    error = syncError(cause)
  }
  for (const answer of due) answer(error)
}

/** A failed sync, with a code describeStoreFault reads like a driver's. @param {any} cause */
const syncError = (cause) => {
  const code = cause?.code === "ENOSPC" ? "SQLITE_FULL" : cause?.code === "ENOENT" ? "A2A_SQLITE_FILE_GONE" : "SQLITE_IOERR"
  return Object.assign(new Error(`cannot sync ${wal}: ${cause?.message ?? cause}`), { code })
}

/**
 * The file this connection has open is still the one at its path (device and inode): a connection keeps
 * writing to a file deleted or replaced under it (`rm -rf data/`, a restore copied over it), and every
 * commit would be acknowledged and lost at the next start. Checked before each batch (see StoreFile.ts).
 */
let database = ""
let opened = ""
const checkFile = () => {
  let now
  try {
    now = identity(fs.statSync(database))
  } catch {
    now = undefined
  }
  if (now !== opened) {
    const message = `the database file ${database} was removed or replaced while the server ran; put it back, or restart the server`
    throw Object.assign(new Error(message), { code: "A2A_SQLITE_FILE_GONE" })
  }
}

/** @param {any} plans */
const write = (plans) => {
  if (s === undefined || db === undefined) throw new Error("the writer's connection is not open")
  checkFile()
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
  return outcomes
}

/** @param {any} error */
const failure = (error) => ({ message: String(error?.message ?? error), code: typeof error?.code === "string" ? error.code : undefined })

const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort)

/**
 * Answer a request. A write is answered twice when commits are synced here:
 * once committed (its outcomes: the next batch can be decided on them), and
 * once on disk (`synced`, or `syncError`). A sync request is answered once,
 * when on disk.
 * @param {any} request
 */
const handle = (request) => {
  const { id } = request
  const reply = (/** @type {unknown} */ value) => port.postMessage({ id, value })
  if (openFailure !== undefined && request.op !== "close") throw openFailure
  switch (request.op) {
    case "open": {
      try {
        db = new Database(request.filename)
        // Synced here after each commit (sync "wal"), or never (the store's `normal`).
        db.pragma("synchronous = NORMAL")
        // A busy lock (a tool writing beside the server) fails at once, and the main thread tries again later.
        db.pragma("busy_timeout = 0")
        // better-sqlite3's default page cache is 16 MiB, and the writer's filled it within minutes under
        // load: most of the pages it touches are the newest (the log's tail, the rows of running tasks), and
        // the rest come from the OS's file cache. 2 MiB (SQLite's own default) wrote as fast and keeps 14 MiB
        // of resident memory free (docs/performance.md, step 33).
        db.pragma("cache_size = -2000")
        s = prepare(db)
        database = request.filename
        opened = identity(fs.statSync(database))
      } catch (cause) {
        openFailure = cause
        throw cause
      }
      syncs = request.sync === "wal"
      wal = `${request.filename}-wal`
      return reply(undefined)
    }
    case "write": {
      const outcomes = write(request.plans)
      port.postMessage({ id, value: outcomes, syncing: syncs })
      if (syncs) afterSync((error) => port.postMessage(error === undefined ? { id, synced: true } : { id, syncError: failure(error) }))
      return
    }
    case "load":
      return reply(/** @type {any} */ (s?.load.get(request.taskId))?.snapshot)
    case "sync":
      if (!syncs) return reply(undefined)
      return afterSync((error) => port.postMessage(error === undefined ? { id, value: undefined } : { id, error: failure(error) }))
    case "ping":
      return reply(undefined)
    case "pragma":
      return reply(db?.pragma(request.statement))
    case "close": {
      const close = () => {
        if (open !== undefined) fs.closeSync(open.fd)
        open = undefined
        db?.close()
        db = undefined
        s = undefined
        reply(undefined)
        port.close()
      }
      // Every sync asked for is finished first (they run on the thread pool).
      return syncs ? afterSync(close) : close()
    }
    default:
      throw new Error(`unknown request ${request.op}`)
  }
}

const handleOne = (/** @type {any} */ request) => {
  try {
    handle(request)
  } catch (cause) {
    port.postMessage({ id: request.id, error: failure(cause) })
  }
}
port.on("message", (request) => {
  handleOne(request)
  // Whatever arrived meanwhile is written before the sync, which then covers it too (group commit).
  for (let next = receiveMessageOnPort(port); next !== undefined; next = receiveMessageOnPort(port)) handleOne(next.message)
  syncNow()
})
