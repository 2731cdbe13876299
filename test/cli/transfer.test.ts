import * as fs from "node:fs"
import * as path from "node:path"
import { expect, it } from "vitest"
import { conformance } from "../../src/agent/builtins"
import { describePg, freshSchema } from "../support/pg"
import { runCli } from "../support/process"
import { call, userMessage } from "../support/rpc"
import { startServer, tempDir } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/** export / import: moving a store, here from SQLite to PostgreSQL. */
await describePg("export and import", () => {
  it("moves every task from SQLite to PostgreSQL: same tasks, read model refolded, duplicates and broken histories refused", async () => {
    const dir = tempDir()
    const source = path.join(dir, "source.db")
    const server = await startServer({ agent: conformance, db: source })
    const sent = [
      await call(server.url, "SendMessage", { message: userMessage("a", { messageId: "tck-artifact-text-x" }) }),
      await call(server.url, "SendMessage", { message: userMessage("b", { messageId: "tck-input-required-x" }), tenant: "acme" }),
      await call(server.url, "SendMessage", { message: userMessage("c", { messageId: "tck-complete-task-x" }) })
    ].map((r) => r.task)
    await server.close()

    const file = path.join(dir, "log.ndjson")
    const exported = await runCli(["export", "--db", source, "--out", file])
    expect(exported.code).toBe(0)
    expect(exported.stderr).toContain("exported 3 task(s)")
    const lines = fs
      .readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
    expect(lines[0]).toMatchObject({ taskId: sent[0].id, version: 1, event: { type: "TaskSubmitted" } })

    const one = await runCli(["export", "--db", source, "--task", sent[2].id])
    expect(
      one.stdout
        .trim()
        .split("\n")
        .every((l) => JSON.parse(l).taskId === sent[2].id)
    ).toBe(true)

    const target = await freshSchema()
    try {
      const imported = await runCli(["import", file, "--db", target.url])
      expect(imported.code).toBe(0)
      expect(imported.stdout).toContain(`imported 3 task(s), ${lines.length} event(s)`)
      expect(await verifyStore(target.url)).toBe(3)
      const moved = await startServer({ agent: conformance, db: target.url })
      try {
        expect(await call(moved.url, "GetTask", { id: sent[0].id })).toEqual(sent[0])
        expect(await call(moved.url, "GetTask", { id: sent[1].id, tenant: "acme" })).toEqual(sent[1])
      } finally {
        await moved.close()
      }

      const again = await runCli(["import", file, "--db", target.url])
      expect(again.code).toBe(1)
      expect(again.stderr).toContain("refused 3 task(s) the store already has")

      // A history the machine would not allow (submitted twice) is refused, not stored; so is a gap in versions.
      const submittedLine = { ...lines[0], taskId: "t-broken" }
      const broken = path.join(dir, "broken.ndjson")
      fs.writeFileSync(broken, [submittedLine, { ...submittedLine, version: 2 }].map((l) => JSON.stringify(l)).join("\n"))
      const illegal = await runCli(["import", broken, "--db", target.url])
      expect(illegal.code).toBe(1)
      expect(illegal.stderr).toMatch(/t-broken .*TaskSubmitted is not legal in TASK_STATE_SUBMITTED/)
      fs.writeFileSync(broken, JSON.stringify({ ...submittedLine, version: 2 }))
      const gap = await runCli(["import", broken, "--db", target.url])
      expect(gap.code).toBe(1)
      expect(gap.stderr).toMatch(/t-broken .*version 2 where 1 was expected/)
      expect(await verifyStore(target.url)).toBe(3)
    } finally {
      await target.drop()
    }
  }, 90_000)
})

it("import into a SQLite file that does not exist yet creates it; tools on a missing file name the path they looked for", async () => {
  const dir = tempDir()
  const source = path.join(dir, "source.db")
  const server = await startServer({ agent: conformance, db: source })
  const { task } = await call(server.url, "SendMessage", { message: userMessage("a", { messageId: "tck-complete-task-new-file" }) })
  await server.close()
  const file = path.join(dir, "log.ndjson")
  expect((await runCli(["export", "--db", source, "--out", file])).code).toBe(0)

  const target = path.join(dir, "new", "target.db")
  const imported = await runCli(["import", file, "--db", target])
  expect(imported.stderr).toBe("")
  expect(imported.code).toBe(0)
  expect(imported.stdout).toContain("imported 1 task(s)")
  expect(await verifyStore(target)).toBe(1)
  expect((await runCli(["tail", "--task", task.id, "--db", target])).stdout).toContain("TaskCompleted")

  // Each line is checked against the event's schema before anything is stored: a part that is not a list is refused.
  const [first] = fs.readFileSync(file, "utf8").split("\n")
  const line = JSON.parse(first!)
  const malformed = path.join(dir, "malformed.ndjson")
  fs.writeFileSync(
    malformed,
    JSON.stringify({ ...line, taskId: "t-malformed", event: { ...line.event, message: { ...line.event.message, parts: "hi" } } })
  )
  const refused = await runCli(["import", malformed, "--db", target])
  expect(refused.code).toBe(1)
  expect(refused.stderr).toContain(
    'line 1 is not an exported event (taskId, version, event, metadata): event.message.parts: Expected ReadonlyArray<Part>, actual "hi"'
  )
  expect(await verifyStore(target)).toBe(1)

  const missing = path.join(dir, "nowhere.db")
  const verify = await runCli(["verify", "--db", missing])
  expect(verify.code).toBe(1)
  expect(verify.stderr).toContain(`no SQLite file at ${missing}; check the path`)
  expect(verify.stderr).not.toContain("set --db")
}, 60_000)
