import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"

const root = path.resolve(__dirname, "../..")

/** Every server this test process spawned: none may outlive it, whatever happened in the tests. */
const spawned = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
})

export interface ServerProcess {
  readonly url: string
  readonly child: ChildProcess
  readonly output: () => string
  /** SIGKILL: no finalizer runs, as in a crash. */
  readonly kill9: () => Promise<void>
}

/** `a2a-ledger serve` as a real child process on a free port. */
export const spawnServer = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Promise<ServerProcess> =>
  new Promise((resolve, reject) => {
    const host = args.includes("--host") ? [] : ["--host", "127.0.0.1"]
    const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "src/main.ts"), "serve", "--port", "0", ...host, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env }
    })
    spawned.add(child)
    child.once("exit", () => spawned.delete(child))
    let output = ""
    // A guard against a server that never starts, not a measure of start-up: tsx compiles the sources at
    // start, and with the chaos and cluster suites running beside it on two cores that once took over 20 s.
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`server did not start within 60 s:\n${output}`))
    }, 60_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const m = /Listening on http:\/\/[^:]+:(\d+)/.exec(output)
      if (m) {
        clearTimeout(timer)
        resolve({
          url: `http://127.0.0.1:${m[1]}`,
          child,
          output: () => output,
          kill9: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null || child.signalCode !== null) return done()
              child.once("exit", () => done())
              child.kill("SIGKILL")
            })
        })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${output}`))
    })
  })

/** One `a2a-ledger <args>` command run to its end: its exit code and output. */
export const runCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {}
): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "src/main.ts"), ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env }
    })
    spawned.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()))
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()))
    child.once("error", reject)
    child.once("exit", (code) => {
      spawned.delete(child)
      resolve({ code, stdout, stderr })
    })
  })
