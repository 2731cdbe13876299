import { describe, expect, it } from "vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { rpc } from "../support/rpc"
import { userMessage } from "../support/fixtures"
import { tempDir } from "../support/server"

const root = path.resolve(__dirname, "../..")

describe("npm start", () => {
  it("builds the server to JavaScript and runs that: it listens, and a blocking send completes", async () => {
    const db = path.join(tempDir(), "start.db")
    // No build before: the one npm start serves from is its own.
    fs.rmSync(path.join(root, "dist"), { recursive: true, force: true })
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
      expect(fs.existsSync(path.join(root, "dist/main.js"))).toBe(true)
      const r = await rpc(url, "SendMessage", { message: userMessage("from the build") })
      expect(r.result?.task?.status.state).toBe("TASK_STATE_COMPLETED")
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM")
      await new Promise((done) => (child.exitCode !== null ? done(undefined) : child.once("exit", done)))
    }
  }, 90_000)
})
