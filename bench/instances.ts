/**
 * Several instances on one PostgreSQL database (issue 11: two together at 1.6× one): BENCH_INSTANCES
 * `serve --agent echo` processes (the build; default 2) on BENCH_DB, each driven closed-loop at
 * BENCH_CONCURRENCY (default 16) blocking SendMessage calls for BENCH_SECONDS (default 12) by this
 * process at once. Prints the tasks a second they made together. Asserts nothing. Run it with 1 and
 * with 2, in turns, on an empty schema each time.
 *
 *   BENCH_DB=postgres://postgres@127.0.0.1:5432/test BENCH_INSTANCES=1 npx tsx bench/instances.ts
 *   BENCH_DB=postgres://postgres@127.0.0.1:5432/test BENCH_INSTANCES=2 npx tsx bench/instances.ts
 */
import * as http from "node:http"
import { buildServer, postRpc, serveBuilt } from "./process"

const db = process.env.BENCH_DB
if (db === undefined || !db.startsWith("postgres")) throw new Error("BENCH_DB must name a PostgreSQL database (an empty one or schema)")
const instances = Number(process.env.BENCH_INSTANCES ?? 2)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16)
const seconds = Number(process.env.BENCH_SECONDS ?? 12)

const sendBody = (messageId: string) =>
  JSON.stringify({ jsonrpc: "2.0", id: 1, method: "SendMessage", params: { message: { messageId, role: "ROLE_USER", parts: [{ text: "hi" }] } } })

buildServer()
const servers = []
// One after another: each runs the migrations' check on start.
for (let i = 0; i < instances; i++) servers.push(await serveBuilt(["--agent", "echo", "--port", "0", "--host", "127.0.0.1", "--db", db]))
let completed = 0
let sent = 0
const drive = async (url: string, end: number) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const answer = JSON.parse(await postRpc(url, sendBody(`instances-${sent++}-${Math.random()}`), agent)) as {
          result?: { task?: { status: { state: string } } }
        }
        if (answer.result?.task?.status.state === "TASK_STATE_COMPLETED") completed++
      }
    })
  )
}
try {
  await Promise.all(servers.map((s) => postRpc(s.url, sendBody(`warm-up-${s.port}`))))
  const t0 = Date.now()
  await Promise.all(servers.map((s) => drive(s.url, t0 + seconds * 1000)))
  const wall = (Date.now() - t0) / 1000
  console.log(
    `${instances} instance(s) on one PostgreSQL database, c=${concurrency} each: ${Math.round(completed / wall)} tasks/s together (${completed} of ${sent} sends completed)`
  )
} finally {
  for (const s of servers) s.stop()
}
