/**
 * The event-log tools over a big log (issue 11): `verify` and `rebuild` over a SQLite store of
 * BENCH_TASKS echo tasks (default 250,000: 1,000,000 events). The server (the build) makes the schema and
 * one echo task; the store is filled by copying that task's rows (events, read-model row, message key)
 * with fresh ids, in large transactions. Then `verify --json` and `rebuild --json` run from the build in
 * processes of their own, each timed whole (start-up included): verify, rebuild of the sound store, then
 * rebuild once the read model and the message keys are wiped (every row and key written again), and
 * verify once more. Printed: seconds and events a second for each, and the problems found. Nothing is
 * asserted. The copies' task and context ids are UUIDv7, as the server makes them (time-ordered: a new
 * task's row lands at the end of the table); BENCH_IDS=v4 makes them random, as in stores written before
 * the server made v7 ids. BENCH_THREADS passes `--threads` to both tools.
 *
 *   npm run bench:tools
 *   BENCH_TASKS=50000 npm run bench:tools
 *   BENCH_IDS=v4 BENCH_THREADS=0 npm run bench:tools
 *   BENCH_KEEP=1 npm run bench:tools      # keep the store (its path is printed), e.g. to profile a tool on it
 */
import Database from "better-sqlite3"
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { v7 } from "uuid"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { buildServer, postRpc, root, serveBuilt, serverMain } from "./process"

const count = Number(process.env.BENCH_TASKS ?? 250_000)
const newId = process.env.BENCH_IDS === "v4" ? randomUUID : () => v7()
const threads = process.env.BENCH_THREADS === undefined ? [] : ["--threads", process.env.BENCH_THREADS]
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2a-ledger-tools-"))
const db = path.join(dir, "tools.db")

buildServer()
const server = await serveBuilt(["--agent", "echo", "--port", "0", "--host", "127.0.0.1", "--db", db])
await postRpc(
  server.url,
  JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "SendMessage",
    params: { message: { messageId: "template", role: "ROLE_USER", parts: [{ text: "hello" }] } }
  })
)
server.stop()
await new Promise((resolve) => server.child.once("exit", resolve))

const fill = () => {
  const file = new Database(db)
  file.pragma("synchronous = OFF")
  const template = file.prepare("SELECT * FROM a2a_tasks").get() as Record<string, string | number>
  const events = file.prepare("SELECT * FROM a2a_events WHERE task_id = ? ORDER BY version").all(template.task_id) as Array<
    Record<string, string | number>
  >
  const taskId = String(template.task_id)
  const contextId = String(template.context_id)
  const insertTask = file.prepare(`INSERT INTO a2a_tasks (task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const insertEvent = file.prepare(`INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)`)
  const insertKey = file.prepare("INSERT INTO a2a_message_ids (tenant, owner, message_id, task_id, version) VALUES ('', '', ?, ?, 1)")
  const fresh = (text: string, id: string, ctx: string, messageId: string) =>
    text.replaceAll(taskId, id).replaceAll(contextId, ctx).replaceAll('"template"', JSON.stringify(messageId))
  const batch = file.transaction((from: number, n: number) => {
    for (let i = from; i < from + n; i++) {
      const id = newId()
      const ctx = newId()
      const messageId = `m-${i}`
      for (const e of events)
        insertEvent.run(id, e.version, e.type, e.schema_version, fresh(String(e.payload), id, ctx, messageId), e.metadata, e.created_at)
      insertTask.run(
        id,
        template.tenant,
        template.owner,
        ctx,
        template.state,
        template.version,
        template.status_timestamp,
        template.created_at,
        fresh(String(template.snapshot), id, ctx, messageId)
      )
      insertKey.run(messageId, id)
    }
  })
  for (let i = 1; i < count; i += 10_000) batch(i, Math.min(10_000, count - i))
  file.pragma("wal_checkpoint(TRUNCATE)")
  file.close()
  return events.length
}

const t0 = performance.now()
const perTask = fill()
const totalEvents = perTask * count
console.log(
  `store: ${count} echo tasks, ${totalEvents} events (${perTask} a task), ids ${process.env.BENCH_IDS === "v4" ? "v4" : "v7"}, filled in ${((performance.now() - t0) / 1000).toFixed(1)} s`
)

const timed = (command: string, label = command) => {
  const t = performance.now()
  const out = execFileSync(process.execPath, [serverMain, command, "--db", db, "--json", ...threads], { cwd: root, maxBuffer: 1 << 28 }).toString()
  const seconds = (performance.now() - t) / 1000
  const report = JSON.parse(out) as { tasks: number; events: number; problems: ReadonlyArray<unknown> }
  console.log(
    `${label}: ${seconds.toFixed(1)} s, ${Math.round(totalEvents / seconds)} events/s (${report.tasks} tasks, ${report.events} events, ${report.problems.length} problems)`
  )
}
timed("verify")
timed("rebuild", "rebuild (sound store)")
const wipe = new Database(db)
wipe.exec("DELETE FROM a2a_tasks; DELETE FROM a2a_message_ids;")
wipe.close()
timed("rebuild", "rebuild (read model and keys wiped)")
timed("verify")
if (process.env.BENCH_KEEP === "1") console.log(`store kept: ${db}`)
else fs.rmSync(dir, { recursive: true, force: true })
