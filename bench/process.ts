/** What the bench scripts share: a server in a process of its own, what it costs, and how to call it. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"

export const root = path.resolve(import.meta.dirname, "..")

export interface ServerProcess {
  readonly url: string
  readonly port: number
  readonly child: ChildProcess
  readonly stop: () => void
}

/** `node <nodeArgs>` from the repository root, once it prints "Listening on http://…:<port>". */
export const spawnServer = (name: string, nodeArgs: ReadonlyArray<string>) =>
  new Promise<ServerProcess>((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs, { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    const onData = (b: Buffer) => {
      out += b.toString()
      const m = /Listening on http:\/\/[^:]+:(\d+)/.exec(out)
      if (m) resolve({ url: `http://127.0.0.1:${m[1]}`, port: Number(m[1]), child, stop: () => child.kill("SIGTERM") })
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}: ${out}`)))
  })

/** A process's resident memory, in MiB. */
export const rssMiB = (pid: number) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024)

/**
 * The server's entry: dist/main.js, or BENCH_MAIN (another build's, to compare two builds in alternating
 * runs; a build copied inside the repository finds its dependencies).
 */
export const serverMain = process.env.BENCH_MAIN === undefined ? path.join(root, "dist/main.js") : path.resolve(process.env.BENCH_MAIN)

/** Build dist/ as `npm start` does (scripts/build.mjs); nothing when BENCH_MAIN names another build. */
export const buildServer = () => {
  if (process.env.BENCH_MAIN === undefined)
    execFileSync(process.execPath, [path.join(root, "scripts/build.mjs"), "--cli"], { cwd: root, stdio: "inherit" })
}

/**
 * `a2a-ledger serve <args>` from the build (see buildServer, BENCH_MAIN), in its own process; node flags from
 * BENCH_SERVER_NODE_ARGS (a profile, say) and `nodeArgs`.
 */
export const serveBuilt = (serveArgs: ReadonlyArray<string>, nodeArgs: ReadonlyArray<string> = []) =>
  spawnServer("a2a-ledger", [
    ...(process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter((a) => a !== ""),
    ...nodeArgs,
    serverMain,
    "serve",
    ...serveArgs
  ])

/** POST a JSON-RPC body to `<url>/a2a`; the answer's body, as text. */
export const postRpc = (url: string, body: string, agent?: http.Agent) =>
  new Promise<string>((resolve, reject) => {
    const req = http.request(
      `${url}/a2a`,
      { method: "POST", agent, headers: { "content-type": "application/json", "a2a-version": "1.0", "content-length": Buffer.byteLength(body) } },
      (res) => {
        let data = ""
        res.setEncoding("utf8")
        res.on("data", (c: string) => (data += c))
        res.on("end", () => resolve(data))
      }
    )
    req.on("error", reject)
    req.end(body)
  })

/**
 * Node flags for a server that measures its own event loop (loop-delay.mjs, a preload), and how to ask it:
 * `read()` is the longest stall and the 99th percentile since the last read, in ms. The preload takes its
 * file's name from the environment, which the server inherits from this process.
 */
export const loopDelayProbe = (dir: string) => {
  const file = path.join(dir, "loop-delay")
  process.env.BENCH_LOOP_DELAY_FILE = file
  return {
    nodeArgs: ["--import", path.join(import.meta.dirname, "loop-delay.mjs")],
    read: async (pid: number) => {
      fs.rmSync(file, { force: true })
      process.kill(pid, "SIGUSR2")
      for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 10))
      const [max, p99] = fs.readFileSync(file, "utf8").split(" ").map(Number)
      return { max: max!, p99: p99! }
    }
  }
}
