import { describe, expect, it } from "vitest"
import { cli } from "../support/cli"

/** Every command explains itself. */
const commands = [
  ["serve"],
  ["verify"],
  ["rebuild"],
  ["replay"],
  ["tail"],
  ["prune"],
  ["doctor"],
  ["export"],
  ["import"],
  ["dead-letters", "list"],
  ["dead-letters", "redeliver"],
  ["tasks", "get"],
  ["tasks", "list"],
  ["tasks", "cancel"],
  ["tasks", "send"],
  ["tasks", "subscribe"]
]

describe("--help", () => {
  it.each(commands.map((c) => [c.join(" "), c] as const))("a2a-ledger %s --help prints its usage", async (_, command) => {
    const r = await cli([...command, "--help"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("USAGE")
    expect(r.stdout).toContain(`$ ${command[command.length - 1]}`)
  })

  it("the top level lists every command", async () => {
    const r = await cli(["--help"])
    for (const name of ["serve", "tasks", "verify", "rebuild", "replay", "tail", "prune", "doctor", "export", "import", "dead-letters"]) {
      expect(r.stdout).toContain(name)
    }
  })

  it("is plain text when not printed to a terminal, wrapped to 80 columns, with optional flags in brackets", async () => {
    for (const args of [["--help"], ["serve", "--help"], ["tasks", "send", "--help"]]) {
      const r = await cli(args)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts an ANSI escape sequence
      expect(r.stdout, args.join(" ")).not.toMatch(/\x1b\[/)
      const widest = Math.max(...r.stdout.split("\n").map((l) => l.length))
      expect(widest, args.join(" ")).toBeLessThanOrEqual(80)
    }
    const serve = (await cli(["serve", "--help"])).stdout
    const usage = serve.slice(serve.indexOf("USAGE"), serve.indexOf("DESCRIPTION"))
    expect(usage).toContain("[--allow-webhook-host text...]")
    expect(usage.match(/--allow-webhook-host/g)).toHaveLength(1)
    // The command list: each usage, then its description on the next line.
    const top = (await cli(["--help"])).stdout
    expect(top).toMatch(/- import \[--db text\] <file>\n\s+Load NDJSON/)
  })

  it("a usage error is plain text too", async () => {
    const r = await cli(["serve", "--port", "nope"])
    expect(r.code).toBe(1)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts an ANSI escape sequence
    expect(r.stderr + r.stdout).not.toMatch(/\x1b\[/)
  })
})
