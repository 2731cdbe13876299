// What Node's own HTTP server costs when many event-stream connections close at once, with no a2a-ledger in
// it: a bare `node:http` server holds N streams (default 8,000) opened by a child process; the child destroys
// them all while the server's loop is blocked for 300 ms, so the closes land together (as 8,000 dropped at
// once do at a2a-ledger in bench/hostile-streams.ts); then the server times the loop turn that handles them.
// docs/performance.md ("Streams that cannot hurt the server") compares it with a2a-ledger's stall.
//
//   node bench/bare-sse-drop.mjs [N]
import { fork } from "node:child_process"
import http from "node:http"
import net from "node:net"

if (process.argv[2] === "client") {
  const [port, n] = [Number(process.argv[3]), Number(process.argv[4])]
  const sockets = []
  // In waves, as bench/hostile-streams.ts opens them: the listen backlog is finite.
  for (let i = 0; i < n; i += 200) {
    await Promise.all(
      Array.from(
        { length: Math.min(200, n - i) },
        () =>
          new Promise((opened) => {
            const socket = net.connect(port, "127.0.0.1", () => {
              socket.write("GET /sse HTTP/1.1\r\nhost: x\r\n\r\n")
              socket.once("data", opened)
            })
            socket.on("data", () => {})
            sockets.push(socket)
          })
      )
    )
  }
  process.send("open")
  process.on("message", () => {
    for (const socket of sockets) socket.destroy()
    process.send("dropped")
  })
} else {
  const n = Number(process.argv[2] ?? 8000)
  let open = 0
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" })
    res.write("data: hi\n\n")
    open++
    req.on("close", () => open--)
  })
  await new Promise((listening) => server.listen(0, "127.0.0.1", listening))
  const child = fork(new URL(import.meta.url).pathname, ["client", String(server.address().port), String(n)])
  await new Promise((opened) => child.once("message", opened))
  await new Promise((settled) => setTimeout(settled, 1000))
  const cpu = process.cpuUsage()
  child.send("drop")
  await new Promise((dropped) => child.once("message", dropped))
  const until = performance.now() + 300
  while (performance.now() < until) {
    // blocked: the closes land meanwhile
  }
  const unblocked = performance.now()
  await new Promise((next) => setTimeout(next, 0))
  const turn = performance.now() - unblocked
  while (open > 0) await new Promise((later) => setTimeout(later, 5))
  const used = process.cpuUsage(cpu)
  console.log(
    `${n} streams closed at once: the loop turn that handled them took ${turn.toFixed(0)} ms; CPU for the drop user ${(used.user / 1000).toFixed(0)} ms, system ${(used.system / 1000).toFixed(0)} ms (300 ms of it the blocked wait)`
  )
  child.kill()
  process.exit(0)
}
