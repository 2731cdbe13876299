import { describe, expect, it } from "vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { rpc } from "../support/rpc"
import { userMessage } from "../support/fixtures"
import { tempDir } from "../support/server"

const root = path.resolve(__dirname, "../..")
const built = path.join(root, "dist/main.js")

/** `npm start` until it listens; `use` gets its URL; then it is stopped. */
const withNpmStart = async (db: string, use: (url: string) => Promise<void>) => {
  // Its own process group, so the server npm starts goes down with it.
  const child = spawn("npm", ["start", "--", "--agent", "echo", "--port", "0", "--host", "127.0.0.1", "--db", db], {
    cwd: root,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"]
  })
  try {
    let output = ""
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npm start did not listen:\n${output}`)), 60_000)
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        const m = /Listening on http:\/\/[^:]+:(\d+)/.exec(output)
        if (m) {
          clearTimeout(timer)
          resolve(`http://127.0.0.1:${m[1]}`)
        }
      }
      child.stdout!.on("data", onData)
      child.stderr!.on("data", onData)
      child.once("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)))
    })
    await use(url)
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM")
    await new Promise((done) => (child.exitCode !== null ? done(undefined) : child.once("exit", done)))
  }
}

describe("npm start", () => {
  it("builds the server to JavaScript and runs that: it listens, and a blocking send completes; it builds again only when a source changed", async () => {
    const db = path.join(tempDir(), "start.db")
    // No build before: the one npm start serves from is its own.
    fs.rmSync(path.join(root, "dist"), { recursive: true, force: true })
    await withNpmStart(db, async (url) => {
      expect(fs.existsSync(built)).toBe(true)
      const r = await rpc(url, "SendMessage", { message: userMessage("from the build") })
      expect(r.result?.task?.status.state).toBe("TASK_STATE_COMPLETED")
    })
    // Nothing changed: the build is used as it is.
    const first = fs.statSync(built).mtimeMs
    await withNpmStart(db, async (url) => expect((await rpc(url, "ListTasks", {})).result.tasks.length).toBe(1))
    expect(fs.statSync(built).mtimeMs).toBe(first)
    // A source newer than the build: built again before it starts.
    const later = new Date(Math.ceil(first) + 2_000)
    fs.utimesSync(path.join(root, "src/main.ts"), later, later)
    await withNpmStart(db, async (url) => expect((await rpc(url, "ListTasks", {})).result.tasks.length).toBe(1))
    expect(fs.statSync(built).mtimeMs).toBeGreaterThan(first)
  }, 180_000)
})
