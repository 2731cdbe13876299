/**
 * Reads at scale (issue 11): GetTask and ListTasks (filtered, paged, `totalSize` included) over a store of
 * BENCH_TASKS finished tasks (default 1,000,000). The store is made by the server (its schema), filled
 * here in large transactions straight into `a2a_tasks` (reads need nothing else; the count triggers run
 * as they would for the writer), then served by the build in its own process. Each read is sent one at a
 * time; printed: p50 and p99 per kind of read. Nothing is asserted.
 *
 *   npx tsx bench/reads-at-scale.ts
 *   BENCH_TASKS=100000 npx tsx bench/reads-at-scale.ts
 */
import Database from "better-sqlite3"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { buildServer, postRpc, serveBuilt } from "./process"

const count = Number(process.env.BENCH_TASKS ?? 1_000_000)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2a-ledger-reads-"))
const db = path.join(dir, "reads.db")

buildServer()
const serve = () => serveBuilt(["--agent", "echo", "--port", "0", "--host", "127.0.0.1", "--db", db])

// The schema, as the server makes it.
const first = await serve()
first.stop()
await new Promise((resolve) => first.child.once("exit", resolve))

// Finished echo tasks a second apart from 2026-01-01, over 1,000 contexts; one in five FAILED or CANCELED.
const fill = () => {
  const file = new Database(db)
  file.pragma("synchronous = OFF")
  const insert = file.prepare(`INSERT INTO a2a_tasks (task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot)
    VALUES (?, '', '', ?, ?, 4, ?, ?, ?)`)
  const states = ["TASK_STATE_COMPLETED", "TASK_STATE_COMPLETED", "TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"]
  const contexts = Array.from({ length: 1000 }, () => randomUUID())
  const start = Date.parse("2026-01-01T00:00:00Z")
  let i = 0
  const batch = file.transaction((n: number) => {
    for (let j = 0; j < n; j++, i++) {
      const id = randomUUID()
      const contextId = contexts[i % contexts.length]!
      const state = states[i % states.length]!
      const at = new Date(start + i * 1000).toISOString()
      const message = { messageId: `m-${i}`, role: "ROLE_USER", parts: [{ text: "hello" }], taskId: id, contextId }
      const snapshot = JSON.stringify({
        version: 4,
        state,
        machine: { artifacts: { echo: false } },
        tenant: "",
        owner: "",
        createdAt: at,
        turnInput: message,
        task: {
          id,
          contextId,
          status: { state, timestamp: at },
          artifacts: [{ artifactId: "echo", name: "echo", parts: [{ text: "hello" }] }],
          history: [message]
        }
      })
      insert.run(id, contextId, state, at, at, snapshot)
    }
  })
  while (i < count) batch(Math.min(10_000, count - i))
  file.pragma("wal_checkpoint(TRUNCATE)")
  file.close()
  return contexts
}
const filledAt = Date.now()
const contexts = fill()
console.log(`reads at scale: ${count.toLocaleString("en")} tasks written in ${((Date.now() - filledAt) / 1000).toFixed(1)} s`)

const server = await serve()
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
const call = async (method: string, params: unknown): Promise<{ result?: any; error?: unknown }> =>
  JSON.parse(await postRpc(server.url, JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }), agent))

const page = await call("ListTasks", { pageSize: 50 })
const ids: Array<string> = page.result.tasks.map((t: { id: string }) => t.id)
const dayBeforeLast = new Date(Date.parse("2026-01-01T00:00:00Z") + (count - 86_400) * 1000).toISOString()
const reads: ReadonlyArray<readonly [string, string, (i: number) => unknown, number]> = [
  ["GetTask", "GetTask", (i) => ({ id: ids[i % ids.length] }), 500],
  ["ListTasks, first page of 50", "ListTasks", () => ({ pageSize: 50 }), 100],
  ["ListTasks, next page", "ListTasks", () => ({ pageSize: 50, pageToken: page.result.nextPageToken }), 100],
  ["ListTasks, by state (FAILED)", "ListTasks", () => ({ pageSize: 50, status: "TASK_STATE_FAILED" }), 100],
  ["ListTasks, by context", "ListTasks", (i) => ({ pageSize: 50, contextId: contexts[i % contexts.length] }), 100],
  ["ListTasks, the last day", "ListTasks", () => ({ pageSize: 50, statusTimestampAfter: dayBeforeLast }), 100],
  ["ListTasks, a window holding every task", "ListTasks", () => ({ pageSize: 50, statusTimestampAfter: "2025-12-01T00:00:00Z" }), 100]
]
console.log(`| read (${count.toLocaleString("en")} tasks, totalSize ${page.result.totalSize}) | p50 | p99 |`)
console.log("|---|---:|---:|")
for (const [label, method, params, n] of reads) {
  const latencies: Array<number> = []
  for (let i = 0; i < n; i++) {
    const started = performance.now()
    const answer = await call(method, params(i))
    if (answer.error !== undefined) throw new Error(`${label}: ${JSON.stringify(answer.error)}`)
    latencies.push(performance.now() - started)
  }
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]!.toFixed(1)
  console.log(`| ${label} | ${at(0.5)} ms | ${at(0.99)} ms |`)
}
agent.destroy()
server.stop()
fs.rmSync(dir, { recursive: true, force: true })
