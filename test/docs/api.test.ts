import { execFile } from "node:child_process"
import { promisify } from "node:util"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { tempDir } from "../support/server"

/**
 * docs/api/ is the API reference `npm run docs` generates from the TSDoc of the package's entry points
 * (typedoc, typedoc.json). Generated again here, it must be what the repository holds: a change to the
 * public API without `npm run docs` fails. Every type the public API names must be documented too
 * (typedoc warns of one that is not exported, and warnings fail here).
 */
const root = path.resolve(__dirname, "../..")

const filesUnder = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name)
      if (entry.isDirectory()) walk(full)
      else out[path.relative(dir, full)] = fs.readFileSync(full, "utf8")
    }
  }
  walk(dir)
  return out
}

describe("the API reference (docs/api)", () => {
  it("is what npm run docs generates now, with no warning", async () => {
    const out = path.join(tempDir("a2a-ledger-api-"), "api")
    // In a child process, awaited: a worker blocked as long as typedoc runs under load could miss vitest's own RPC deadline.
    await promisify(execFile)(process.execPath, [path.join(root, "node_modules/typedoc/bin/typedoc"), "--out", out, "--treatWarningsAsErrors"], {
      cwd: root
    })
    const generated = filesUnder(out)
    const committed = filesUnder(path.join(root, "docs/api"))
    expect(Object.keys(committed).sort()).toEqual(Object.keys(generated).sort())
    for (const [file, text] of Object.entries(generated)) expect(committed[file], `docs/api/${file} is stale: run npm run docs`).toBe(text)
  }, 120_000)
})
