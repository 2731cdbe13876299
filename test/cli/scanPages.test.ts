import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Outcome, type Agent } from "../../src/agent/Agent"
import { conformance } from "../../src/agent/builtins"
import * as Store from "../../src/eventlog/Store"
import { countsProblem, pageSize } from "../../src/projections/Refold"
import { inlineVersions } from "../../src/projections/TaskReadModel"
import { cli as runCli } from "../support/cli"
import { describePg, freshSchema } from "../support/pg"
import { call, userMessage } from "../support/rpc"
import { startServer, tempDir } from "../support/server"

/**
 * verify and rebuild read the store a page of tasks at a time (one query for
 * the page's events, one for its rows, one for its message keys): a fault is
 * found and mended wherever it sits, at the first task of a page, the last,
 * or past the first page. One task is big: its row holds only its head, which
 * verify completes from the task's events before it compares. On SQLite the
 * pages are judged in this thread or by scan threads, with the same findings
 * in the same order.
 */
const chatty: Agent = {
  name: "chatty",
  description: "",
  version: "1",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      for (let i = 1; i <= 2 * inlineVersions; i++) yield* ctx.progress(`step ${i}`)
      return Outcome.complete("all done")
    })
}

const onStore = <A>(db: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.provide(Store.layer(db, { exclusive: false })))))

const pagedSuite = (store: () => Promise<{ db: string; drop: () => Promise<unknown> }>, threadCounts: ReadonlyArray<number>) => () => {
  let db: string
  let drop: () => Promise<unknown>
  let ids: Array<string>
  let bigTask: string
  const cli = (...args: Array<string>) => runCli([...args, "--db", db])

  beforeAll(async () => {
    ;({ db, drop } = await store())
    const server = await startServer({ agent: conformance, db })
    const count = 2 * pageSize + 10
    for (let i = 0; i < count; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, count - i) }, (_, j) =>
          call(server.url, "SendMessage", { message: userMessage("go", { messageId: `tck-complete-task-page-${i + j}` }) })
        )
      )
    }
    await server.close()
    const big = await startServer({ agent: chatty, db })
    bigTask = (await call(big.url, "SendMessage", { message: userMessage("go", { messageId: "big" }) })).task.id
    await big.close()
    // The tasks in the order the scan visits them.
    ids = await onStore(db, (sql) =>
      sql<{ task_id: string }>`SELECT task_id FROM a2a_tasks ORDER BY task_id`.pipe(Effect.map((rows) => rows.map((r) => r.task_id)))
    )
    expect(ids).toHaveLength(count + 1)
  }, 120_000)
  afterAll(async () => {
    await drop?.()
  })

  const findsAndMends = (threads: number) => async () => {
    const scan = (command: string, ...args: Array<string>) => cli(command, "--threads", String(threads), ...args)
    const firstOfSecond = ids[pageSize]!
    const lastOfSecond = ids[2 * pageSize - 1]!
    const inThird = ids[2 * pageSize + 5]!
    // A column edited under an intact snapshot: ListTasks would order or filter the task wrongly.
    const columnOnly = ids.find((id) => id !== bigTask && ids.indexOf(id) > 2 && ids.indexOf(id) < pageSize - 2)!
    // The big task's row is its head, and it passes verify as it is.
    const bigRow = () => onStore(db, (sql) => sql<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE task_id = ${bigTask}`)
    expect((await bigRow())[0]!.snapshot).toContain('"detached":true')
    expect((await bigRow())[0]!.snapshot).not.toContain("step 1")
    expect(JSON.parse((await scan("verify", "--json")).stdout).problems).toEqual([])
    await onStore(db, (sql) =>
      Effect.all([
        sql`UPDATE a2a_tasks SET snapshot = REPLACE(snapshot, 'TASK_STATE_COMPLETED', 'TASK_STATE_WORKING') WHERE task_id = ${firstOfSecond}`,
        sql`UPDATE a2a_tasks SET snapshot = REPLACE(snapshot, 'all done', 'all wrong') WHERE task_id = ${bigTask}`,
        sql`UPDATE a2a_tasks SET status_timestamp = '2000-01-01T00:00:00.000Z' WHERE task_id = ${columnOnly}`,
        sql`DELETE FROM a2a_message_ids WHERE task_id = ${lastOfSecond}`,
        sql`DELETE FROM a2a_tasks WHERE task_id = ${inThird}`
      ])
    )
    const found = JSON.parse((await scan("verify", "--json")).stdout)
    expect(found.tasks).toBe(ids.length)
    const expected = [
      { taskId: firstOfSecond, problem: expect.stringContaining("read model differs from the fold of the log") },
      { taskId: lastOfSecond, problem: expect.stringMatching(/^message tck-complete-task-page-\d+ \(version 1\) is not in the message index$/) },
      { taskId: inThird, problem: "has events but no read-model row" },
      { taskId: bigTask, problem: expect.stringContaining("read model differs from the fold of the log") },
      { taskId: columnOnly, problem: expect.stringContaining("read model differs from the fold of the log") }
    ]
    expect(found.problems).toEqual(expected.sort((a, b) => ids.indexOf(a.taskId) - ids.indexOf(b.taskId)))
    const rebuilt = await scan("rebuild")
    expect(rebuilt.code).toBe(0)
    const clean = JSON.parse((await scan("verify", "--json")).stdout)
    expect(clean.problems).toEqual([])
    expect(clean.events).toBe(found.events)
    // Rebuilt, the big task's row is a head again.
    expect((await bigRow())[0]!.snapshot).toContain('"detached":true')
  }

  for (const threads of threadCounts) {
    it(
      `verify finds faults at page edges and past the first page; rebuild mends them all (${threads === 0 ? "in this thread" : `${threads} scan threads`})`,
      findsAndMends(threads),
      120_000
    )
  }
}

describe(
  "verify and rebuild by pages on SQLite",
  pagedSuite(async () => ({ db: path.join(tempDir(), "pages.db"), drop: async () => {} }), [0, 2])
)
await describePg(
  "verify and rebuild by pages on PostgreSQL",
  pagedSuite(async () => {
    const schema = await freshSchema()
    return { db: schema.url, drop: schema.drop }
  }, [0])
)

describe("verify and rebuild: ListTasks' task counts (SQLite)", () => {
  it("verify reports counts that drifted from the rows (someone edited the file); rebuild counts again", async () => {
    const db = path.join(tempDir(), "counts.db")
    const server = await startServer({ agent: conformance, db })
    for (const i of [1, 2, 3]) await call(server.url, "SendMessage", { message: userMessage("go", { messageId: `tck-complete-task-count-${i}` }) })
    await server.close()
    const cli = (...args: Array<string>) => runCli([...args, "--db", db])
    expect(JSON.parse((await cli("verify", "--json")).stdout).problems).toEqual([])
    await onStore(db, (sql) => sql`UPDATE a2a_task_counts SET n = n + 5 WHERE state = 'TASK_STATE_COMPLETED'`)
    const found = JSON.parse((await cli("verify", "--json")).stdout)
    expect(found.problems).toEqual([{ taskId: countsProblem, problem: 'tenant "", owner "", TASK_STATE_COMPLETED: counted 8, 3 task(s)' }])
    expect((await cli("rebuild")).code).toBe(0)
    expect(JSON.parse((await cli("verify", "--json")).stdout).problems).toEqual([])
  }, 60_000)
})

describe("verify and rebuild: --threads", () => {
  it("must be 0 or more", async () => {
    const db = path.join(tempDir(), "threads.db")
    const server = await startServer({ agent: conformance, db })
    await server.close()
    const run = await runCli(["verify", "--threads", "-1", "--db", db])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("--threads must be 0 or more")
  }, 60_000)
})

await describePg("verify and rebuild: --threads on PostgreSQL", () => {
  it("is refused: a PostgreSQL store is scanned in this thread", async () => {
    const schema = await freshSchema()
    try {
      const run = await runCli(["verify", "--threads", "2", "--db", schema.url])
      expect(run.code).toBe(1)
      expect(run.stderr).toContain("a PostgreSQL store is scanned in this thread only")
      expect((await runCli(["verify", "--threads", "0", "--db", schema.url])).code).toBe(0)
    } finally {
      await schema.drop()
    }
  }, 60_000)
})
