/**
 * Fan-out and long-running work (issue 11): many tasks working at once, each
 * reporting progress every second, with several SSE subscribers on each. The
 * server (`serve --agent mixed`, the build) runs in its own process; this
 * process starts the tasks, opens the streams over keep-alive-free sockets and
 * reads them.
 *
 * Each task is the mixed agent's `slow` work: `BENCH_STEPS` progress updates
 * (default 4) `BENCH_STEP_MS` apart (default 5,000), then an artifact and COMPLETED. A
 * delivery's latency is the time it reached its subscriber minus the status
 * timestamp the server gave the event when it decided it (same clock).
 * Printed: deliveries (and how many were expected), p50/p99/max latency, the
 * server's CPU use and RSS. Nothing is asserted.
 *
 *   npx tsx bench/fan-out.ts                                   # 1,000 tasks × 10 subscribers
 *   BENCH_TASKS=10000 BENCH_SUBSCRIBERS=1 BENCH_STEP_MS=1000 npx tsx bench/fan-out.ts   # 10,000 tasks at once
 *   BENCH_TASKS=10000 BENCH_SUBSCRIBERS=1 BENCH_STEP_MS=1000 BENCH_STEPS=60 npx tsx bench/fan-out.ts   # …each for 60 s
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { buildServer, loopDelayProbe, postRpc, rssMiB, serveBuilt } from "./process"

const tasks = Number(process.env.BENCH_TASKS ?? 1000)
const subscribers = Number(process.env.BENCH_SUBSCRIBERS ?? 10)
// Long enough that all the streams are open before most of the work is done (opening 10,000 takes seconds).
const stepDelayMs = Number(process.env.BENCH_STEP_MS ?? 5000)
const steps = Number(process.env.BENCH_STEPS ?? 4)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2a-ledger-fan-out-"))

buildServer()
const loopDelay = loopDelayProbe(dir)
const server = await serveBuilt(
  [
    "--agent",
    "mixed",
    "--step-delay-ms",
    String(stepDelayMs),
    "--max-workers",
    String(tasks),
    "--max-streams-per-principal",
    String(tasks * subscribers + 100),
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--db",
    path.join(dir, "fan-out.db")
  ],
  loopDelay.nodeArgs
)
const port = server.port
const pid = server.child.pid!

const cpuSeconds = () => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime, in clock ticks (100 a second)
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 })
const post = (body: string) => postRpc(`http://127.0.0.1:${port}`, body, agent)

const latencies: Array<number> = []
let deliveries = 0
let ended = 0
let refused = 0

/** SubscribeToTask over its own socket; each event's latency is recorded as it arrives. */
const subscribe = (taskId: string) =>
  new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "SubscribeToTask", params: { id: taskId } })
    let buffer = ""
    socket.setEncoding("utf8")
    socket.once("connect", () => {
      socket.write(
        `POST /a2a HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      )
      resolve()
    })
    socket.on("data", (text: string) => {
      const now = Date.now()
      buffer += text
      for (const m of buffer.matchAll(/"statusUpdate":\{[\s\S]*?"timestamp":"([^"]+)"/g)) {
        deliveries++
        latencies.push(now - Date.parse(m[1]!))
      }
      const cut = buffer.lastIndexOf("\n\n")
      if (cut >= 0) buffer = buffer.slice(cut + 2)
      if (text.includes("TASK_STATE_COMPLETED")) {
        ended++
        socket.destroy()
      } else if (text.includes('"error"')) {
        // Opened after the task had finished (the server was busy opening the others): nothing to stream.
        refused++
        socket.destroy()
      }
    })
    socket.once("error", reject)
  })

// A delivery's latency counts this process's own delays too (it reads every stream on one event loop):
// both loops' stalls are reported beside it.
const benchLoop = monitorEventLoopDelay({ resolution: 10 })
benchLoop.enable()
await loopDelay.read(pid)
const idleRss = rssMiB(pid)
const cpu0 = cpuSeconds()
const t0 = Date.now()
// Start every task (returnImmediately) and subscribe to each at once; the first progress comes a step later.
const startOne = async (i: number) => {
  const answer = JSON.parse(
    await post(
      JSON.stringify({
        jsonrpc: "2.0",
        id: i,
        method: "SendMessage",
        params: {
          message: { messageId: `fan-${i}`, role: "ROLE_USER", parts: [{ text: `slow ${steps}` }] },
          configuration: { returnImmediately: true }
        }
      })
    )
  ) as { result: { task: { id: string } } }
  await Promise.all(Array.from({ length: subscribers }, () => subscribe(answer.result.task.id)))
}
for (let i = 0; i < tasks; i += 200) await Promise.all(Array.from({ length: Math.min(200, tasks - i) }, (_, j) => startOne(i + j)))
const startedIn = Date.now() - t0
let peakRss = rssMiB(pid)
while (ended + refused < tasks * subscribers && Date.now() - t0 < 10 * stepDelayMs * (steps + 1) + 60_000) {
  await new Promise((r) => setTimeout(r, 250))
  peakRss = Math.max(peakRss, rssMiB(pid))
}
const wall = (Date.now() - t0) / 1000
const cpu = cpuSeconds() - cpu0
const serverLoop = await loopDelay.read(pid)
latencies.sort((a, b) => a - b)
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN
console.log(
  `fan-out: ${tasks} tasks × ${subscribers} subscribers, ${steps} steps each, a step every ${stepDelayMs} ms; all started and subscribed in ${startedIn} ms`
)
console.log(
  `  live status updates delivered ${deliveries} (${(deliveries / (tasks * subscribers)).toFixed(1)} a stream, ${Math.round(deliveries / wall)} a second) · streams that reached COMPLETED ${ended}/${tasks * subscribers}, opened too late ${refused}`
)
console.log(`  delivery latency p50 ${pct(0.5)} ms · p99 ${pct(0.99)} ms · max ${latencies.at(-1)} ms`)
const ms = (ns: number) => Math.round(ns / 1e6)
console.log(
  `  event-loop delay, p99 / max: the server's ${serverLoop.p99} / ${serverLoop.max} ms, this bench's (the readers') ${ms(benchLoop.percentile(99))} / ${ms(benchLoop.max)} ms`
)
console.log(`  server: ${((cpu / wall) * 100).toFixed(0)}% of one core over ${wall.toFixed(1)} s · RSS idle ${idleRss} MiB, peak ${peakRss} MiB`)
server.stop()
process.exit(0)
