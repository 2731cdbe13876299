/**
 * Blocking SendMessage throughput and latency against the real server
 * (echo agent; a SQLite file, or BENCH_DB), at concurrency 1, 16 and 64. Prints figures;
 * asserts nothing. The server runs from the build (dist/main.js, built first, as `npm start`
 * runs it; BENCH_MAIN for another build) in its own process, so the load generator does not
 * share its event loop.
 *
 *   npm run bench:ledger     # default: 2,000 requests per level (at most 30 s each)
 *   BENCH_REQUESTS=500 npm run bench:ledger
 *   BENCH_DB=postgres://postgres@127.0.0.1:5432/bench npm run bench:ledger   # on PostgreSQL (an empty database or schema)
 *   BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench:ledger   # profile the server (one file per thread)
 */
import * as http from "node:http"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { buildServer, postRpc, serveBuilt } from "./process"

const requestsPerLevel = Number(process.env.BENCH_REQUESTS ?? 2000)
const levels = (process.env.BENCH_LEVELS ?? "1,16,64").split(",").map(Number)
const maxSecondsPerLevel = 30

const startServer = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2a-ledger-bench-"))
  const server = await serveBuilt([
    "--agent",
    "echo",
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--db",
    process.env.BENCH_DB ?? path.join(dir, "bench.db")
  ])
  return { url: server.url, dir, stop: server.stop }
}

// node:http with a keep-alive agent: much lighter than fetch, so the load generator
// (which shares the machine) does not become the bottleneck it measures.
let agent = new http.Agent({ keepAlive: true, maxSockets: 1 })

const post = (url: string, body: string) => postRpc(url, body, agent)

const send = async (url: string, i: number) => {
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: i,
    method: "SendMessage",
    params: { message: { messageId: `bench-${i}-${Math.random()}`, role: "ROLE_USER", parts: [{ text: `hello ${i}` }] } }
  })
  const t0 = performance.now()
  const json = JSON.parse(await post(url, body)) as { result?: { task?: { status: { state: string } } } }
  if (json.result?.task?.status.state !== "TASK_STATE_COMPLETED") throw new Error(`unexpected answer: ${JSON.stringify(json)}`)
  return performance.now() - t0
}

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const main = async () => {
  buildServer()
  const server = await startServer()
  console.log(
    `a2a-ledger bench: blocking SendMessage, echo agent, ${process.env.BENCH_DB !== undefined ? "PostgreSQL" : "SQLite"}; ${requestsPerLevel} requests per level; ${os.cpus().length} cores`
  )
  console.log("concurrency  tasks/s   p50 ms   p99 ms   requests")
  try {
    await Promise.all(Array.from({ length: 20 }, (_, i) => send(server.url, -i))) // warm-up
    let baseline = 0
    for (const concurrency of levels) {
      agent.destroy()
      agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
      const cpu0 = process.cpuUsage()
      const latencies: Array<number> = []
      let next = 0
      const deadline = Date.now() + maxSecondsPerLevel * 1000
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < requestsPerLevel && Date.now() < deadline) latencies.push(await send(server.url, next++))
        })
      )
      const seconds = (performance.now() - t0) / 1000
      const cpu = process.cpuUsage(cpu0)
      const clientCpu = ((cpu.user + cpu.system) / 1e6 / seconds) * 100
      const sorted = [...latencies].sort((a, b) => a - b)
      const rate = latencies.length / seconds
      if (concurrency === 1) baseline = rate
      console.log(
        `${String(concurrency).padStart(11)}  ${rate.toFixed(0).padStart(7)}  ${percentile(sorted, 50).toFixed(1).padStart(7)}  ${percentile(
          sorted,
          99
        )
          .toFixed(1)
          .padStart(
            7
          )}   ${latencies.length}   client CPU ${clientCpu.toFixed(0)}%${concurrency > 1 ? `  (x${(rate / baseline).toFixed(2)} of concurrency 1)` : ""}`
      )
    }
  } finally {
    server.stop()
    if (process.env.BENCH_KEEP) console.log(`kept ${server.dir}`)
    else fs.rmSync(server.dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
