/**
 * a2a-ledger beside the official SDK's server, in one run, with one load
 * generator (issue 11). Three servers, each in its own process:
 *   - sdk-memory:  @a2a-js/sdk behind express, InMemoryTaskStore (bench/reference-server.ts)
 *   - sdk-sqlite:  the same with the SDK's DatabaseTaskStore on a SQLite file (synchronous=FULL)
 *   - a2a-ledger:  `serve --agent echo` as `npm start` runs it (dist/main.js, built first), SQLite, default
 *                  durability (every acknowledged commit synced to disk)
 * All run the same echo work: WORKING, one artifact, COMPLETED.
 *
 * Scenarios, closed-loop over keep-alive connections:
 *   send c=N    blocking SendMessage; tasks/s and p99
 *   poll c=16   SendMessage with returnImmediately, then GetTask until COMPLETED; tasks/s
 *   stream c=16 SendStreamingMessage read to its end; SSE events/s
 *   grpc-send16, grpc-stream16: the same over gRPC (not run unless named in BENCH_SCENARIOS). The
 *               servers then serve gRPC too (a2a-ledger `--grpc-port 0`, the SDK its `grpcService` on
 *               @grpc/grpc-js), and one load generator, Connect's gRPC client on one HTTP/2
 *               connection per server, drives both.
 * Each scenario runs BENCH_RUNS times (default 3) for BENCH_SECONDS each (default 5), the servers taking
 * turns within each round, and the median is printed with the ratio of a2a-ledger to each SDK server.
 * These machines are noisy: compare only figures printed by the same run.
 *
 *   npm run bench
 *   BENCH_RUNS=5 BENCH_SECONDS=10 npm run bench
 *   BENCH_SCENARIOS=send16,stream16 npm run bench
 *   BENCH_SCENARIOS=send16,grpc-send16,grpc-stream16 npm run bench
 */
import { type Client, createClient } from "@connectrpc/connect"
import { createGrpcTransport } from "@connectrpc/connect-node"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { A2AService } from "../src/grpc/gen/a2a_pb.js"
import { postRpc, root, spawnServer } from "./process"

const runs = Number(process.env.BENCH_RUNS ?? 3)
const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2a-ledger-side-by-side-"))

interface Server {
  readonly name: string
  readonly url: string
  /** A gRPC client of it, when it serves gRPC (its card lists the interface). */
  readonly grpc: Client<typeof A2AService> | undefined
  readonly stop: () => void
}

/** A server process: `node <nodeArgs>`; its gRPC address, if any, from its card. */
const start = async (name: string, nodeArgs: ReadonlyArray<string>): Promise<Server> => {
  const server = await spawnServer(name, nodeArgs)
  const card = (await (await fetch(`${server.url}/.well-known/agent-card.json`)).json()) as {
    supportedInterfaces: Array<{ url: string; protocolBinding: string }>
  }
  const address = card.supportedInterfaces.find((i) => i.protocolBinding === "GRPC")?.url
  const grpc = address === undefined ? undefined : createClient(A2AService, createGrpcTransport({ baseUrl: `http://${address}` }))
  return { name, url: server.url, grpc, stop: server.stop }
}

let ids = 0
const rpc = (method: string, params: unknown) => JSON.stringify({ jsonrpc: "2.0", id: ++ids, method, params })
const message = () => ({ messageId: `bench-${process.pid}-${++ids}`, role: "ROLE_USER", parts: [{ text: "hello" }] })

const stateOf = (body: string): string | undefined => {
  const json = JSON.parse(body) as { result?: { task?: { status?: { state?: string } }; status?: { state?: string } }; error?: unknown }
  if (json.error !== undefined) throw new Error(`error answer: ${body.slice(0, 300)}`)
  return json.result?.task?.status?.state ?? json.result?.status?.state
}

/** One unit of work per scenario: how many things it counts (tasks or events). */
type Work = (agent: http.Agent, url: string, grpc: Client<typeof A2AService> | undefined) => Promise<number>

const grpcMessage = () => ({ messageId: `bench-${process.pid}-${++ids}`, role: 1, parts: [{ content: { case: "text" as const, value: "hello" } }] })
const completed = 3 // TASK_STATE_COMPLETED
// (Without it, a call is v0.3, which the SDK's gRPC service refuses.)
const v1 = { headers: { "a2a-version": "1.0" } }

const grpcSend: Work = async (_agent, _url, grpc) => {
  const sent = await grpc!.sendMessage({ message: grpcMessage() }, v1)
  const state = sent.payload.case === "task" ? sent.payload.value.status?.state : undefined
  if (state !== completed) throw new Error(`gRPC send ended ${state}`)
  return 1
}

const grpcStream: Work = async (_agent, _url, grpc) => {
  let events = 0
  let done = false
  for await (const event of grpc!.sendStreamingMessage({ message: grpcMessage() }, v1)) {
    events++
    if (event.payload.case === "statusUpdate" && event.payload.value.status?.state === completed) done = true
    if (event.payload.case === "task" && event.payload.value.status?.state === completed) done = true
  }
  if (!done) throw new Error("gRPC stream did not complete")
  return events
}

const send: Work = async (agent, url) => {
  const state = stateOf(await postRpc(url, rpc("SendMessage", { message: message() }), agent))
  if (state !== "TASK_STATE_COMPLETED") throw new Error(`send ended ${state}`)
  return 1
}

const poll: Work = async (agent, url) => {
  const sent = JSON.parse(await postRpc(url, rpc("SendMessage", { message: message(), configuration: { returnImmediately: true } }), agent))
  const id = sent.result?.task?.id as string
  for (;;) {
    if (stateOf(await postRpc(url, rpc("GetTask", { id, historyLength: 0 }), agent)) === "TASK_STATE_COMPLETED") return 1
  }
}

const stream: Work = async (agent, url) => {
  const body = await postRpc(url, rpc("SendStreamingMessage", { message: message() }), agent)
  const events = body.split("\n").filter((l) => l.startsWith("data:")).length
  if (!body.includes("TASK_STATE_COMPLETED")) throw new Error(`stream did not complete: ${body.slice(0, 300)}`)
  return events
}

interface Scenario {
  readonly key: string
  readonly label: string
  readonly unit: string
  readonly concurrency: number
  readonly work: Work
  readonly grpc?: boolean
}

const scenarios: ReadonlyArray<Scenario> = [
  { key: "send1", label: "blocking SendMessage, c=1", unit: "tasks/s", concurrency: 1, work: send },
  { key: "send16", label: "blocking SendMessage, c=16", unit: "tasks/s", concurrency: 16, work: send },
  { key: "send64", label: "blocking SendMessage, c=64", unit: "tasks/s", concurrency: 64, work: send },
  { key: "poll16", label: "returnImmediately + GetTask polling, c=16", unit: "tasks/s", concurrency: 16, work: poll },
  { key: "stream16", label: "SendStreamingMessage, c=16", unit: "events/s", concurrency: 16, work: stream },
  { key: "grpc-send16", label: "gRPC blocking SendMessage, c=16", unit: "tasks/s", concurrency: 16, work: grpcSend, grpc: true },
  { key: "grpc-stream16", label: "gRPC SendStreamingMessage, c=16", unit: "events/s", concurrency: 16, work: grpcStream, grpc: true }
].filter((s) => (process.env.BENCH_SCENARIOS === undefined ? s.grpc !== true : process.env.BENCH_SCENARIOS.split(",").includes(s.key)))
const withGrpc = scenarios.some((s) => s.grpc === true)

interface Measure {
  readonly rate: number
  readonly p99: number
}

const measure = async (scenario: Scenario, server: Server): Promise<Measure> => {
  const { url, grpc } = server
  if (scenario.grpc === true && grpc === undefined) throw new Error(`${server.name} serves no gRPC`)
  const agent = new http.Agent({ keepAlive: true, maxSockets: scenario.concurrency })
  try {
    // Warm-up: connections open, code paths hot.
    await Promise.all(Array.from({ length: scenario.concurrency }, () => scenario.work(agent, url, grpc)))
    const latencies: Array<number> = []
    let counted = 0
    const end = performance.now() + seconds * 1000
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: scenario.concurrency }, async () => {
        while (performance.now() < end) {
          const t = performance.now()
          // Not `counted += await …`: that reads `counted` before the await, and the workers would overwrite each other.
          const n = await scenario.work(agent, url, grpc)
          counted += n
          latencies.push(performance.now() - t)
        }
      })
    )
    const elapsed = (performance.now() - t0) / 1000
    latencies.sort((a, b) => a - b)
    return { rate: counted / elapsed, p99: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0 }
  } finally {
    agent.destroy()
  }
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const main = async () => {
  execFileSync(process.execPath, [path.join(root, "scripts/build.mjs"), "--cli"], { stdio: "inherit" })
  // (The reference server reads it: its gRPC service too.)
  if (withGrpc) process.env.BENCH_GRPC = "1"
  const servers = [
    await start("sdk-memory", ["--import", "tsx", "bench/reference-server.ts", "memory"]),
    await start("sdk-sqlite", ["--import", "tsx", "bench/reference-server.ts", "sqlite", path.join(dir, "sdk.db")]),
    // As `npm start` runs it: the build, not the sources through tsx.
    await start("a2a-ledger", [
      "dist/main.js",
      "serve",
      "--agent",
      "echo",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--db",
      path.join(dir, "ledger.db"),
      ...(withGrpc ? ["--grpc-port", "0"] : [])
    ])
  ]
  console.log(
    `side by side: ${runs} runs of ${seconds} s per scenario and server (median shown); ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ""}`
  )
  console.log(`| scenario | ${servers.map((s) => s.name).join(" | ")} | a2a-ledger ÷ sdk-memory | a2a-ledger ÷ sdk-sqlite |`)
  console.log(`|---|${servers.map(() => "---:").join("|")}|---:|---:|`)
  try {
    for (const scenario of scenarios) {
      const results = new Map<string, Array<Measure>>(servers.map((s) => [s.name, []]))
      for (let run = 0; run < runs; run++) {
        // The servers take turns within a round, so drift on the machine touches them alike.
        const order = run % 2 === 0 ? servers : [...servers].reverse()
        for (const server of order) results.get(server.name)!.push(await measure(scenario, server))
      }
      const rate = (name: string) => median(results.get(name)!.map((m) => m.rate))
      const p99 = (name: string) => median(results.get(name)!.map((m) => m.p99))
      const cells = servers.map((s) => `${rate(s.name).toFixed(0)} ${scenario.unit} (p99 ${p99(s.name).toFixed(1)} ms)`)
      const ours = rate("a2a-ledger")
      console.log(
        `| ${scenario.label} | ${cells.join(" | ")} | ${(ours / rate("sdk-memory")).toFixed(2)} | ${(ours / rate("sdk-sqlite")).toFixed(2)} |`
      )
    }
  } finally {
    for (const s of servers) s.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
