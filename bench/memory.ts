/**
 * Resident memory, idle and while many tasks complete (issue 11: idle under 100 MiB; under 200 MiB and flat
 * while 1,000,000 tasks complete; the SDK's figure beside it). Two servers, each in its own process, one at
 * a time under load:
 *   - sdk-memory:  @a2a-js/sdk behind express, InMemoryTaskStore (bench/reference-server.ts)
 *   - a2a-ledger:  `serve --agent echo` from the build, SQLite, default durability
 * Idle: RSS 15 s after each server listens (V8 and glibc give memory back after start-up in that time).
 * Load: blocking SendMessage, closed-loop at c=16, until BENCH_TASKS (default 1,000,000) have completed;
 * RSS sampled every second. Printed per server: RSS at each tenth of the tasks, the peak, and the drift
 * (the last tenth's mean minus the second tenth's: the first tenth is warm-up).
 *
 *   npm run bench:memory
 *   BENCH_TASKS=200000 npm run bench:memory
 *   BENCH_SERVERS=a2a-ledger npm run bench:memory   (one of the two)
 *   BENCH_SERVER_NODE_ARGS="--max-semi-space-size=8" npm run bench:memory   (node flags for a2a-ledger)
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { buildServer, postRpc, rssMiB, serveBuilt, spawnServer, type ServerProcess } from "./process"

const tasks = Number(process.env.BENCH_TASKS ?? 1_000_000)
const concurrency = 16
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2a-ledger-memory-"))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

let ids = 0
const send = async (agent: http.Agent, url: string) => {
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: ++ids,
    method: "SendMessage",
    params: { message: { messageId: `memory-${process.pid}-${ids}`, role: "ROLE_USER", parts: [{ text: "hello" }] } }
  })
  const answer = await postRpc(url, body, agent)
  if (!answer.includes("TASK_STATE_COMPLETED")) throw new Error(`send did not complete: ${answer.slice(0, 300)}`)
}

interface Run {
  readonly idle: number
  readonly samples: ReadonlyArray<{ readonly done: number; readonly rss: number }>
  readonly seconds: number
}

const run = async (server: ServerProcess): Promise<Run> => {
  const pid = server.child.pid!
  await sleep(15_000)
  const idle = rssMiB(pid)
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const samples: Array<{ done: number; rss: number }> = []
  let done = 0
  let started = 0
  const sampler = setInterval(() => samples.push({ done, rss: rssMiB(pid) }), 1000)
  const t0 = performance.now()
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (started < tasks) {
          started++
          await send(agent, server.url)
          done++
        }
      })
    )
  } finally {
    clearInterval(sampler)
    agent.destroy()
  }
  samples.push({ done, rss: rssMiB(pid) })
  return { idle, samples, seconds: (performance.now() - t0) / 1000 }
}

const mean = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)

const report = (name: string, r: Run) => {
  const tenth = (k: number) => r.samples.filter((s) => s.done > (tasks * (k - 1)) / 10 && s.done <= (tasks * k) / 10).map((s) => s.rss)
  const at = Array.from({ length: 10 }, (_, k) => r.samples.find((s) => s.done >= (tasks * (k + 1)) / 10)?.rss ?? 0)
  const peak = Math.max(...r.samples.map((s) => s.rss))
  const drift = mean(tenth(10)) - mean(tenth(2))
  console.log(
    `| ${name} | ${r.idle} | ${at.join(" / ")} | ${peak} | ${drift >= 0 ? "+" : ""}${drift.toFixed(0)} | ${(tasks / r.seconds).toFixed(0)} |`
  )
}

const main = async () => {
  buildServer()
  console.log(`memory: ${tasks} blocking sends at c=${concurrency} per server, one server at a time; RSS in MiB; ${os.cpus().length} cores`)
  console.log("| server | idle | at each tenth of the tasks | peak | drift (last tenth − second) | tasks/s |")
  console.log("|---|---:|---|---:|---:|---:|")
  const all: ReadonlyArray<readonly [string, () => Promise<ServerProcess>]> = [
    ["sdk-memory", () => spawnServer("sdk-memory", ["--import", "tsx", "bench/reference-server.ts", "memory"])],
    ["a2a-ledger", () => serveBuilt(["--agent", "echo", "--port", "0", "--host", "127.0.0.1", "--db", path.join(dir, "ledger.db")])]
  ]
  const servers = all.filter(([name]) => process.env.BENCH_SERVERS === undefined || process.env.BENCH_SERVERS.split(",").includes(name))
  try {
    for (const [name, start] of servers) {
      const server = await start()
      try {
        report(name, await run(server))
      } finally {
        server.stop()
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
