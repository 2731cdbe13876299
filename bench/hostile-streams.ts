/**
 * Streams as a hostile client opens them (issue 11, "streams that cannot hurt
 * the server"). The server (`serve --agent mixed`, as `npm start` runs it:
 * dist/main.js, built first) runs in its own process; this process opens the
 * streams over raw sockets; a third process asks for the agent card every 10 ms
 * throughout and reports the slowest answer in each phase. That wait also counts
 * what this process, the probe and the kernel did on the same cores (8,000
 * sockets destroyed at once take them a while), so the server also reports its
 * own event loop's longest stall in each phase (bench/loop-delay.mjs,
 * perf_hooks' event-loop delay): "loop" below.
 *
 * Phases:
 *   never-read  N subscribers (default 1,500) on one task whose message is 0.9 MB; none of them reads a
 *               byte. Then the task gets a second 0.9 MB message, then all sockets are destroyed at once.
 *   churn       M streams (default 2,000, then 8,000) on a small task, opened and read, then dropped at once.
 * Printed for each: the server's RSS before, while open, right after the drop, 5 s and 20 s later; the
 * longest agent-card wait while the streams opened (never-read: and while the 2nd message went out), and
 * from the drop until 5 s after it. Nothing is asserted.
 *
 *   npx tsx bench/hostile-streams.ts
 *   BENCH_NEVER_READ=1500 BENCH_CHURN=2000,8000 npx tsx bench/hostile-streams.ts
 *   BENCH_SERVER_ARGS="--keep-alive-ms 1000" npx tsx bench/hostile-streams.ts   (replaces the default
 *   "--max-streams-per-principal 100000")
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { buildServer, loopDelayProbe, postRpc, rssMiB, serveBuilt } from "./process"

const neverRead = Number(process.env.BENCH_NEVER_READ ?? 1500)
const churn = (process.env.BENCH_CHURN ?? "2000,8000")
  .split(",")
  .filter((s) => s !== "")
  .map(Number)
// One client address opens them all: the per-caller stream limit (default 1,000) would refuse most.
const extraArgs = (process.env.BENCH_SERVER_ARGS ?? "--max-streams-per-principal 100000").split(" ").filter((a) => a !== "")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2a-ledger-hostile-"))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

buildServer()
const loopDelay = loopDelayProbe(dir)
const server = await serveBuilt(
  ["--agent", "mixed", "--port", "0", "--host", "127.0.0.1", "--db", path.join(dir, "hostile.db"), ...extraArgs],
  loopDelay.nodeArgs
)
const port = server.port
const url = `http://127.0.0.1:${port}`

const serverRss = () => rssMiB(server.child.pid!)

// The probe: its own process, so this one's work (opening thousands of sockets) does not delay it.
const probeSource = `
const http = require("node:http")
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
let worst = 0
let started = performance.now()
const once = () => { started = performance.now(); http.get(process.argv[1] + "/.well-known/agent-card.json", { agent }, (res) => { res.resume(); res.on("end", () => { worst = Math.max(worst, performance.now() - started); started = undefined; setTimeout(once, 10) }) }).on("error", () => setTimeout(once, 10)) }
once()
// A request still waiting counts with its wait so far.
process.on("message", () => { process.send(Math.round(Math.max(worst, started === undefined ? 0 : performance.now() - started))); worst = 0 })
`
const probe = spawn(process.execPath, ["-e", probeSource, url], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
const probeWait = () =>
  new Promise<number>((resolve) => {
    probe.once("message", (m) => resolve(Number(m)))
    probe.send("report")
  })
/** The server's own longest event-loop stall since it was last asked. */
const loopStall = async () => (await loopDelay.read(server.child.pid!)).max
/** The longest agent-card wait and the server's longest loop stall since the last call: "card … ms, loop … ms". */
const worstWait = async () => `card ${await probeWait()} ms, loop ${await loopStall()} ms`

const post = (body: string) => postRpc(url, body)

let ids = 0
const send = async (text: string, taskId?: string) => {
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: ++ids,
    method: "SendMessage",
    params: { message: { messageId: `hostile-${++ids}`, role: "ROLE_USER", parts: [{ text }], ...(taskId ? { taskId } : {}) } }
  })
  const answer = JSON.parse(await post(body)) as { result?: { task?: { id: string; status: { state: string } } }; error?: unknown }
  if (answer.result?.task === undefined) throw new Error(`SendMessage failed: ${JSON.stringify(answer.error)}`)
  return answer.result.task
}

/**
 * A raw SubscribeToTask over its own socket. `read: false` never reads a byte of the answer (it resolves
 * once sent); `read: true` reads everything, and resolves once the answer shows it is an event stream.
 */
const subscribe = (taskId: string, read: boolean) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    const body = JSON.stringify({ jsonrpc: "2.0", id: ++ids, method: "SubscribeToTask", params: { id: taskId } })
    socket.once("connect", () => {
      socket.write(
        `POST /a2a HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
      )
      if (!read) {
        socket.pause()
        return resolve(socket)
      }
      socket.once("data", (b: Buffer) =>
        b.toString().includes("text/event-stream") ? resolve(socket) : reject(new Error(`not a stream: ${b.toString().slice(0, 200)}`))
      )
      socket.on("data", () => {})
    })
    socket.once("error", reject)
  })

let refused = 0
const openAll = async (n: number, taskId: string, read: boolean) => {
  const sockets: Array<net.Socket> = []
  // In waves, as many clients connecting at once would: the listen backlog is finite.
  for (let i = 0; i < n; i += 200) {
    const wave = await Promise.allSettled(Array.from({ length: Math.min(200, n - i) }, () => subscribe(taskId, read)))
    for (const s of wave)
      if (s.status === "fulfilled") sockets.push(s.value)
      else refused++
  }
  return sockets
}

const report = (name: string, figures: Record<string, string | number>) =>
  console.log(
    `${name.padEnd(22)} ${Object.entries(figures)
      .map(([k, v]) => `${k} ${v}`)
      .join(" · ")}`
  )

await sleep(1000)
await worstWait()

if (neverRead > 0) {
  const big = `ask ${"x".repeat(900 * 1024)}`
  const task = await send(big)
  const before = serverRss()
  const sockets = await openAll(neverRead, task.id, false)
  await sleep(3000)
  const open = serverRss()
  const stallOpen = await worstWait()
  // A second 0.9 MB message: every stream gets the task's next events.
  await send("y".repeat(900 * 1024), task.id).catch(() => undefined)
  await sleep(3000)
  const afterMessage = serverRss()
  const stallMessage = await worstWait()
  for (const s of sockets) s.destroy()
  await sleep(200)
  const dropped = serverRss()
  await sleep(5000)
  const later = serverRss()
  const stallDrop = await worstWait()
  await sleep(15000)
  report(`never-read ×${sockets.length}`, {
    "RSS before": `${before} MiB`,
    open: `${open} MiB`,
    "after 2nd message": `${afterMessage} MiB`,
    "after drop": `${dropped} MiB`,
    "5 s later": `${later} MiB`,
    "20 s later": `${serverRss()} MiB`,
    "longest wait opening": stallOpen,
    "at the 2nd message": stallMessage,
    "at drop": stallDrop
  })
}

for (const n of churn) {
  refused = 0
  const task = await send("ask a small task")
  const before = serverRss()
  const sockets = await openAll(n, task.id, true)
  await sleep(2000)
  const open = serverRss()
  const stallOpen = await worstWait()
  for (const s of sockets) s.destroy()
  await sleep(200)
  const dropped = serverRss()
  await sleep(5000)
  const later = serverRss()
  const stallDrop = await worstWait()
  await sleep(15000)
  report(`churn ×${sockets.length}${refused > 0 ? ` (${refused} refused)` : ""}`, {
    "RSS before": `${before} MiB`,
    open: `${open} MiB`,
    "after drop": `${dropped} MiB`,
    "5 s later": `${later} MiB`,
    "20 s later": `${serverRss()} MiB`,
    "longest wait open": stallOpen,
    "at drop": stallDrop
  })
}

probe.kill()
server.stop()
