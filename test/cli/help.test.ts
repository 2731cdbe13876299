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
})
