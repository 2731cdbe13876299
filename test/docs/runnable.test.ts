import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { type ServerProcess, spawnServer } from "../support/process"
import { tempDir } from "../support/server"

/**
 * The documentation's shell blocks run as written (issue 10, "First
 * impressions"). A block fenced ```sh runnable [serve flags] runs in bash
 * (-euo pipefail) against a fresh server started with those flags, its
 * `localhost:9292` pointed at that server; it must exit 0, and print no
 * JSON-RPC error. A block fenced ```sh runnable server starts a server itself:
 * it must come up (print "Listening on"), in a directory holding the files of
 * the blocks fenced ```yaml file=NAME before it. `a2a-ledger` is on the PATH.
 */
const root = path.resolve(__dirname, "../..")
const files = [
  "README.md",
  ...fs
    .readdirSync(path.join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`)
]

interface Block {
  readonly file: string
  readonly line: number
  readonly info: string
  readonly body: string
}

const blocksOf = (file: string): ReadonlyArray<Block> => {
  const text = fs.readFileSync(path.join(root, file), "utf8")
  const blocks: Array<Block> = []
  const fence = /^```([^\n]*)\n([\s\S]*?)^```$/gm
  for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
    blocks.push({ file, line: text.slice(0, m.index).split("\n").length, info: m[1]!.trim(), body: m[2]! })
  }
  return blocks
}

const all = files.flatMap(blocksOf)
const runnable = all.filter((b) => /^sh runnable\b/.test(b.info))

/** A directory whose `a2a-ledger` runs this checkout's CLI. */
const binDir = (() => {
  const dir = tempDir("a2a-ledger-docs-bin-")
  const shim = path.join(dir, "a2a-ledger")
  // The sources through tsx (named by path: the blocks run in directories of their own), as the other
  // suites run the server: no build of dist/ that could race another suite's.
  const tsx = path.join(root, "node_modules/tsx/dist/loader.mjs")
  fs.writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" --import "${tsx}" "${path.join(root, "src/main.ts")}" "$@"\n`)
  fs.chmodSync(shim, 0o755)
  return dir
})()

const bash = (script: string, cwd: string, env: Record<string, string>) =>
  spawn("bash", ["-euo", "pipefail", "-c", script], { cwd, env: { ...process.env, ...env, PATH: `${binDir}:${process.env.PATH}` } })

const run = (script: string, cwd: string, env: Record<string, string>) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = bash(script, cwd, env)
    let out = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.stderr.on("data", (c: Buffer) => (out += c.toString()))
    child.once("exit", (code) => resolve({ code, out }))
  })

const running: Array<ServerProcess> = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.kill9()
})

describe("documentation blocks marked runnable", () => {
  it("there are some: the README session, the CLI session, the auth sample", () => {
    expect(runnable.map((b) => b.file)).toEqual(expect.arrayContaining(["README.md", "docs/cli.md", "docs/auth.md"]))
  })

  for (const block of runnable) {
    const flags = block.info.replace(/^sh runnable\s*/, "")
    if (flags === "server") {
      it(`${block.file}:${block.line} starts a server as written`, async () => {
        const dir = tempDir("a2a-ledger-docs-")
        for (const b of all.filter((x) => x.file === block.file && x.line < block.line)) {
          const name = /^yaml file=(\S+)$/.exec(b.info)?.[1]
          if (name !== undefined) fs.writeFileSync(path.join(dir, name), b.body)
        }
        const child = bash(block.body, dir, { PORT: "0", HOST: "127.0.0.1", A2A_DB: path.join(dir, "docs.db") })
        let out = ""
        const up = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 20_000)
          const seen = (c: Buffer) => {
            out += c.toString()
            if (/Listening on/.test(out)) {
              clearTimeout(timer)
              resolve(true)
            }
          }
          child.stdout.on("data", seen)
          child.stderr.on("data", seen)
          child.once("exit", () => {
            clearTimeout(timer)
            resolve(false)
          })
        })
        child.kill("SIGKILL")
        expect(up, out).toBe(true)
      }, 30_000)
      continue
    }
    it(`${block.file}:${block.line} runs as written${flags !== "" ? ` against serve ${flags}` : ""}`, async () => {
      const dir = tempDir("a2a-ledger-docs-")
      const server = await spawnServer(["--db", path.join(dir, "docs.db"), ...flags.split(/\s+/).filter((f) => f !== "")])
      running.push(server)
      const port = new URL(server.url).port
      const script = block.body.replace(/localhost:9292/g, `localhost:${port}`).replace(/127\.0\.0\.1:9292/g, `127.0.0.1:${port}`)
      const { code, out } = await run(script, dir, { A2A_URL: server.url })
      expect(code, out).toBe(0)
      expect(out, out).not.toMatch(/"error":\s*\{/)
      expect(out).not.toMatch(/a2a-ledger: /)
      // The reference session does what its comments say.
      if (block.file === "README.md") {
        for (const seen of ["Step 4/4: Compiling report...", "analysis-report", '"state":"TASK_STATE_COMPLETED"', '"state":"TASK_STATE_CANCELED"']) {
          expect(out).toContain(seen)
        }
      }
    }, 60_000)
  }
})
