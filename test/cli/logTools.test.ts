import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { conformance, slowWorker } from "../../src/agent/builtins"
import * as Store from "../../src/eventlog/Store"
import { describePg, freshSchema } from "../support/pg"
import { cli as runCli, cliRunning } from "../support/cli"
import { call, eventually, rpc, userMessage } from "../support/rpc"
import { type RunningServer, startServer, tempDir } from "../support/server"
import { storedEvents } from "../support/storeEvents"

/** Run SQL on a store beside the server: how these tests damage a store on purpose. */
const onStore = <A>(db: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(SqlClient.SqlClient, f).pipe(Effect.provide(Store.layer(db, { exclusive: false })))))

const toolSuite = (store: () => Promise<{ db: string; drop: () => Promise<unknown> }>) => () => {
  let db: string
  let drop: () => Promise<unknown>
  let server: RunningServer
  const tasks: Record<string, any> = {}
  const cli = (...args: Array<string>) => runCli([...args, "--db", db])

  beforeAll(async () => {
    ;({ db, drop } = await store())
    server = await startServer({ agent: conformance, db })
    tasks.completed = (await call(server.url, "SendMessage", { message: userMessage("a", { messageId: "tck-artifact-text-tools" }) })).task
    tasks.waiting = (await call(server.url, "SendMessage", { message: userMessage("b", { messageId: "tck-input-required-tools" }) })).task
    tasks.canceled = (await call(server.url, "SendMessage", { message: userMessage("c", { messageId: "tck-input-required-tools-c" }) })).task
    await call(server.url, "CancelTask", { id: tasks.canceled.id })
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await drop?.()
  })

  it("verify: a sound store passes, and --json counts every task and event", async () => {
    const text = await cli("verify")
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/verified 3 task\(s\), \d+ event\(s\): no problems/)
    const json = JSON.parse((await cli("verify", "--json")).stdout)
    const events = (await Promise.all(Object.values(tasks).map((t) => storedEvents(db, t.id)))).flat().length
    expect(json).toEqual({ tasks: 3, events, problems: [] })
  })

  it("replay --to-version: each event with its state and the legal next events, then the task as it was", async () => {
    const r = await cli("replay", tasks.completed.id, "--to-version", "2", "--json")
    expect(r.code).toBe(0)
    const replay = JSON.parse(r.stdout)
    expect(replay.steps.map((s: any) => [s.version, s.type, s.state])).toEqual([
      [1, "TaskSubmitted", "TASK_STATE_SUBMITTED"],
      [2, "TaskStarted", "TASK_STATE_WORKING"]
    ])
    expect(replay.steps[0].next).toEqual(["TaskStarted", "TaskFailed", "TaskCanceled", "TaskRejected"])
    expect(replay.steps[1].next).toContain("TaskCompleted")
    expect(replay.task.status.state).toBe("TASK_STATE_WORKING")
    expect(replay.task.artifacts).toBeUndefined()
    expect(replay.latestVersion).toBe(4)
    const whole = await cli("replay", tasks.completed.id)
    expect(whole.stdout).toContain("→ completed; next: nothing (final)")
    expect(whole.stdout).toContain('"state": "TASK_STATE_COMPLETED"')
    const missing = await cli("replay", "no-such-task")
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain("no task no-such-task")
  })

  it("tail: the latest events of the log, or one task's, as text or NDJSON", async () => {
    const all = (await Promise.all(Object.values(tasks).map((t) => storedEvents(db, t.id)))).flat().sort((a, b) => a.position - b.position)
    const last3 = await cli("tail", "-n", "3", "--json")
    expect(last3.code).toBe(0)
    const lines = last3.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => [l.taskId, l.version])).toEqual(all.slice(-3).map((e) => [e.taskId, e.version]))
    const one = await cli("tail", "--task", tasks.waiting.id, "--from-start")
    expect(
      one.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(/\s+/)[3])
    ).toEqual(["TaskSubmitted", "TaskStarted", "InputRequested"])
  })

  it("tail --task with an unknown id stops at once, with or without --follow, instead of waiting forever", async () => {
    for (const follow of [[], ["--follow"]]) {
      const r = await cli("tail", "--task", "no-such-task", ...follow)
      expect(r.code, follow.join(" ")).toBe(1)
      expect(r.stderr).toContain("no task no-such-task in this store")
    }
  })

  it("tail --follow prints events as they commit; following a task ends when it finishes", async () => {
    const whole = cliRunning(["tail", "--follow", "-n", "0", "--poll-ms", "50", "--db", db])
    const ofTask = cliRunning(["tail", "--task", tasks.waiting.id, "--follow", "--poll-ms", "50", "--db", db])
    try {
      await ofTask.waitFor(/InputRequested/)
      // Give the whole-log tail time to reach its first poll before anything new commits.
      await new Promise((r) => setTimeout(r, 1500))
      await call(server.url, "SendMessage", { message: userMessage("answer", { messageId: "tck-complete-task-tools", taskId: tasks.waiting.id }) })
      expect(await ofTask.exited).toBe(0)
      expect(ofTask.output()).toMatch(/InputProvided[\s\S]*TaskStarted[\s\S]*TaskCompleted/)
      await whole.waitFor(/TaskCompleted/)
      expect(whole.output()).toContain(`${tasks.waiting.id}  v4  InputProvided`)
      // -n 0: nothing from before it started.
      expect(whole.output()).not.toContain("TaskSubmitted")
    } finally {
      await whole.stop()
      await ofTask.stop()
    }
  }, 60_000)

  it("doctor explains a task: waiting for input, or finished", async () => {
    const asked = (await call(server.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-doctor" }) })).task
    const d = await cli("doctor", asked.id)
    expect(d.code).toBe(0)
    expect(d.stdout).toContain("input-required at version 3")
    expect(d.stdout).toContain("verdict    waiting for the client")
    expect(d.stdout).toContain("Please provide more input.")
    const done = JSON.parse((await cli("doctor", tasks.completed.id, "--json")).stdout)
    expect(done).toMatchObject({ state: "TASK_STATE_COMPLETED", version: 4, lastEvent: { type: "TaskCompleted" }, turns: 1 })
    expect(done.verdict).toMatch(/^finished: completed/)
  })

  it("doctor on a running task names its worker, and on PostgreSQL its live lease", async () => {
    const other = await store()
    const busy = await startServer({ agent: slowWorker({ stepDelayMs: 3000 }), db: other.db, instanceId: "busy-instance" })
    try {
      const { task } = await call(busy.url, "SendMessage", { message: userMessage("long"), configuration: { returnImmediately: true } })
      await eventually(
        () => call(busy.url, "GetTask", { id: task.id }),
        (t) => t.status.state === "TASK_STATE_WORKING"
      )
      const d = JSON.parse((await runCli(["doctor", task.id, "--db", other.db, "--json"])).stdout)
      expect(d).toMatchObject({ state: "TASK_STATE_WORKING", lastStart: { instanceId: "busy-instance" }, turns: 1 })
      // The slow worker's stages are durable steps: the first is recorded by now (it announces the first stage).
      expect(d.steps.recorded).toBeGreaterThanOrEqual(1)
      const stepping = `; ${d.steps.recorded} step\\(s\\) recorded in this turn, the last "${d.steps.last}"$`
      if (other.db.startsWith("postgres")) {
        expect(d.lease).toMatchObject({ holder: "busy-instance" })
        expect(d.lease.expiresInMs).toBeGreaterThan(0)
        expect(d.verdict).toMatch(new RegExp(`^running on busy-instance since .*; its lease \\(epoch 1\\) is renewed.*${stepping}`))
      } else {
        expect(d.server).toEqual({ running: true })
        expect(d.verdict).toMatch(new RegExp(`^running in the server that holds this store since .*, by busy-instance${stepping}`))
      }
    } finally {
      await busy.close()
      await other.drop()
    }
  })

  it("doctor names a step that failed and when its next attempt runs", async () => {
    const other = await store()
    const retrying: Agent = {
      name: "retrying",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) =>
        Effect.zipRight(
          ctx.step("fetch quotes", Effect.fail(new Error("upstream 503")), { retry: { attempts: 5, initialDelayMs: 20_000, jitter: false } }),
          Effect.succeed(Outcome.complete())
        )
    }
    const busy = await startServer({ agent: retrying, db: other.db })
    try {
      const { task } = await call(busy.url, "SendMessage", { message: userMessage("quotes"), configuration: { returnImmediately: true } })
      const d = await eventually(
        async () => JSON.parse((await runCli(["doctor", task.id, "--db", other.db, "--json"])).stdout),
        (d) => d.steps?.retrying !== undefined
      )
      expect(d.steps).toMatchObject({ recorded: 0, retrying: { name: "fetch quotes", failedAttempts: 1 } })
      // The wait before the second attempt: twenty seconds after the first failed (no jitter). The runner
      // reads the clock when the attempt fails; the event is stamped at its commit, a moment later.
      const wait = Date.parse(d.steps.retrying.nextAttemptAt) - Date.parse(d.lastEvent.at)
      expect(wait).toBeLessThanOrEqual(20_000)
      expect(wait).toBeGreaterThan(18_000)
      expect(d.verdict).toMatch(/; step "fetch quotes" failed 1 time\(s\), next attempt at \d{4}-\d\d-\d\dT/)
      const text = (await runCli(["doctor", task.id, "--db", other.db])).stdout
      expect(text).toContain(`steps      0 recorded in this turn; "fetch quotes" failed 1 time(s), next attempt at ${d.steps.retrying.nextAttemptAt}`)
    } finally {
      await busy.close()
      await other.drop()
    }
  })

  it("doctor says a sleeping task waits on its durable timer, until when, and that no worker holds it", async () => {
    const other = await store()
    const napper: Agent = {
      name: "napper",
      description: "",
      version: "1",
      skills: [],
      run: (ctx) => Effect.zipRight(ctx.sleep("1 hour"), Effect.succeed(Outcome.complete()))
    }
    const busy = await startServer({ agent: napper, db: other.db, parkSleepsFromMs: 0 })
    try {
      const { task } = await call(busy.url, "SendMessage", { message: userMessage("later"), configuration: { returnImmediately: true } })
      const d = await eventually(
        async () => JSON.parse((await runCli(["doctor", task.id, "--db", other.db, "--json"])).stdout),
        (d) => d.sleeping !== undefined
      )
      expect(d.state).toBe("TASK_STATE_WORKING")
      expect(d.sleeping.dueInMs).toBeGreaterThan(50 * 60_000)
      expect(d.verdict).toMatch(
        new RegExp(`^waiting on a durable timer until ${d.sleeping.until.replace(/[.]/g, "\\.")} \\(in \\d+ min\\); no worker holds it meanwhile`)
      )
      expect(d.verdict).toContain(other.db.startsWith("postgres") ? "the first instance to claim it then wakes it" : "the server wakes it then")
      const text = (await runCli(["doctor", task.id, "--db", other.db])).stdout
      expect(text).toContain(`timer      sleeping until ${d.sleeping.until} (due in `)
      // replay shows the timer among the task's events.
      const replayed = (await runCli(["replay", task.id, "--db", other.db])).stdout
      expect(replayed).toContain(`step 1: sleep until ${d.sleeping.until}`)
    } finally {
      await busy.close()
      await other.drop()
    }
  })

  it("verify finds a damaged read model and an illegal event; rebuild mends the first and reports the second", async () => {
    const row = tasks.completed.id
    await onStore(
      db,
      (sql) => sql`UPDATE a2a_tasks SET snapshot = REPLACE(snapshot, 'TASK_STATE_COMPLETED', 'TASK_STATE_WORKING') WHERE task_id = ${row}`
    )
    // A column no build writes: the row is decoded with its schema, and cannot be.
    const waiting = tasks.waiting.id
    await onStore(db, (sql) => sql`UPDATE a2a_tasks SET state = 'TASK_STATE_ASLEEP' WHERE task_id = ${waiting}`)
    const damaged = await cli("verify")
    expect(damaged.code).toBe(1)
    expect(damaged.stdout).toContain(`${row}\tread model differs from the fold of the log`)
    expect(damaged.stdout).toContain(
      `${waiting}\tits read-model row cannot be read (state: Expected "TASK_STATE_SUBMITTED", actual "TASK_STATE_ASLEEP")`
    )
    expect(damaged.stderr).toContain("2 problem(s) found")
    // While a server runs on the store, rebuild is refused: on SQLite it owns the file, on PostgreSQL it shares the maintenance lock.
    const whileRunning = await cli("rebuild")
    expect(whileRunning.code).toBe(1)
    expect(whileRunning.stderr).toContain(
      db.startsWith("postgres")
        ? "a2a-ledger servers are running on this database (they hold its maintenance lock); stop them first"
        : "another a2a-ledger process is running"
    )
    await server.close()
    const rebuilt = await cli("rebuild")
    expect(rebuilt.code).toBe(0)
    expect((await cli("verify")).code).toBe(0)
    const canceled = tasks.canceled.id
    const next = (await storedEvents(db, canceled)).length + 1
    await onStore(
      db,
      (sql) =>
        sql`INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
        VALUES (${canceled}, ${next}, 'TaskCompleted', 1, '{"at":"2026-01-01T00:00:00.000Z"}', '{"instanceId":"x"}', '2026-01-01T00:00:00.000Z')`
    )
    const illegal = JSON.parse((await cli("verify", "--json")).stdout)
    expect(illegal.problems).toEqual([{ taskId: canceled, problem: `version ${next}: TaskCompleted is not legal in TASK_STATE_CANCELED` }])
    const damagedReplay = await cli("replay", canceled)
    expect(damagedReplay.code).toBe(1)
    expect(damagedReplay.stderr).toContain(`version ${next}: TaskCompleted is not legal in TASK_STATE_CANCELED; the log is damaged`)
    const refused = await cli("rebuild")
    expect(refused.code).toBe(1)
    expect(refused.stdout).toContain("TaskCompleted is not legal")
    await onStore(db, (sql) => sql`DELETE FROM a2a_events WHERE task_id = ${canceled} AND version = ${next}`)
    server = await startServer({ agent: conformance, db })
  }, 60_000)

  it("prune removes whole finished tasks of the states named, beside a running server", async () => {
    const dry = await cli("prune", "--older-than", "0", "--states", "canceled", "--dry-run")
    expect(dry.stdout).toContain("would remove 1 task(s) (canceled)")
    const bad = await cli("prune", "--states", "working")
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain("working is not a final state")
    const pruned = await cli("prune", "--older-than", "0", "--states", "canceled", "--json")
    expect(JSON.parse(pruned.stdout)).toMatchObject({ removed: 1, dryRun: false, states: ["TASK_STATE_CANCELED"] })
    expect((await rpc(server.url, "GetTask", { id: tasks.canceled.id })).error?.code).toBe(-32001)
    expect((await call(server.url, "GetTask", { id: tasks.completed.id })).status.state).toBe("TASK_STATE_COMPLETED")
    // Nothing younger than the cutoff goes.
    expect((await cli("prune", "--older-than", "1d")).stdout).toContain("removed 0 task(s)")
  })
}

describe(
  "event-log tools on SQLite",
  toolSuite(async () => ({ db: path.join(tempDir(), "tools.db"), drop: async () => {} }))
)
await describePg(
  "event-log tools on PostgreSQL",
  toolSuite(async () => {
    const schema = await freshSchema()
    return { db: schema.url, drop: schema.drop }
  })
)
