import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import {
  createLedger,
  InvalidParamsError,
  type Ledger,
  LedgerClosedError,
  LedgerError,
  type PromiseAgent,
  type StreamResponse,
  TaskNotCancelableError,
  TaskNotFoundError,
  TurnAbortedError,
  UnsupportedOperationError
} from "../../src/index"
import { createTestLedger } from "../../src/testing"
import { call, eventually, userMessage } from "../support/rpc"
import { describePg, freshSchema } from "../support/pg"
import { tempDir } from "../support/server"

/**
 * The Promise API (issue 12): `createLedger` in this process, its agent written with Promises, on a
 * real SQLite store (in memory, or a file where durability is the point), and its `listen` spoken to
 * over real HTTP.
 */
const opened: Array<Ledger> = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()))
})

const open = async (agent: PromiseAgent, db?: string) => {
  const ledger = db === undefined ? await createTestLedger({ agent }) : await createLedger({ agent, db, logLevel: "none" })
  opened.push(ledger)
  return ledger
}

const card = { name: "Promise agent", description: "written with Promises", version: "1.0.0" }

/** Reports twice, adds an artifact, completes: what the example does. */
const reporter: PromiseAgent = {
  ...card,
  run: async (ctx) => {
    await ctx.progress("Working…")
    await ctx.artifact({ artifactId: "a", parts: [{ text: `echo: ${ctx.input.parts[0]?.text}` }] })
    return { state: "completed", message: "Done." }
  }
}

/** A gate the test opens: an agent waits on it, so the test sees its task while it works. */
const gate = () => {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { open, opened }
}

const collect = async (items: AsyncIterable<StreamResponse>) => {
  const out: Array<StreamResponse> = []
  for await (const item of items) out.push(item)
  return out
}

const stateOf = (item: StreamResponse) =>
  "task" in item ? item.task.status.state : "statusUpdate" in item ? item.statusUpdate.status.state : "artifact"

describe("createLedger: send, get, list", () => {
  it("a send waits for the task to finish and answers it with its history and artifacts", async () => {
    const ledger = await open(reporter)
    const task = await ledger.send({ text: "hi" })
    expect(task.status.state).toBe("TASK_STATE_COMPLETED")
    expect(task.status.message?.parts).toEqual([{ text: "Done." }])
    expect(task.artifacts).toEqual([{ artifactId: "a", parts: [{ text: "echo: hi" }] }])
    expect(task.history.map((m) => m.parts[0]?.text)).toEqual(["hi", "Working…", "Done."])
    expect(await ledger.get(task.id)).toEqual(task)
  })

  it("takes plain text and whole A2A messages, and wait: false answers before the agent is done", async () => {
    const release = gate()
    const ledger = await open({ ...card, run: () => release.opened.then(() => ({ state: "completed" as const })) })
    const started = await ledger.send("plain text", { wait: false })
    expect(["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"]).toContain(started.status.state)
    release.open()
    const message = { messageId: "m-1", role: "ROLE_USER" as const, parts: [{ text: "a whole message" }] }
    const whole = await ledger.send(message)
    expect(whole.history[0]).toMatchObject(message)
    expect(whole.status.state).toBe("TASK_STATE_COMPLETED")
  })

  it("continues a task that asked for input, by its id", async () => {
    const ledger = await open({
      ...card,
      run: async (ctx) =>
        ctx.task.history.length === 1
          ? { state: "input-required", message: "Which colour?" }
          : { state: "completed", message: `You said ${ctx.input.parts[0]?.text}` }
    })
    const asked = await ledger.send({ text: "paint it" })
    expect(asked.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    expect(asked.status.message?.parts).toEqual([{ text: "Which colour?" }])
    const done = await ledger.send({ text: "blue", taskId: asked.id })
    expect(done.id).toBe(asked.id)
    expect(done.status.message?.parts).toEqual([{ text: "You said blue" }])
  })

  it("an agent that throws fails its task with the error's message; a rejected result rejects it", async () => {
    const ledger = await open({
      ...card,
      run: async (ctx) => {
        if (ctx.input.parts[0]?.text === "reject") return { state: "rejected", message: "not my job" }
        throw new Error("the model is down")
      }
    })
    const failed = await ledger.send("anything")
    expect(failed.status.state).toBe("TASK_STATE_FAILED")
    expect(failed.status.message?.parts).toEqual([{ text: "the model is down" }])
    const rejected = await ledger.send("reject")
    expect(rejected.status.state).toBe("TASK_STATE_REJECTED")
    expect(rejected.status.message?.parts).toEqual([{ text: "not my job" }])
  })

  it("lists tasks newest first, filtered by state, a page at a time, with the total", async () => {
    const ledger = await open({
      ...card,
      run: async (ctx) => (ctx.input.parts[0]?.text?.startsWith("fail") ? { state: "failed", message: "no" } : undefined)
    })
    const done = []
    for (let i = 0; i < 5; i++) done.push(await ledger.send(`task ${i}`))
    await ledger.send("fail once")
    const first = await ledger.list({ state: "TASK_STATE_COMPLETED", pageSize: 3 })
    expect(first.totalSize).toBe(5)
    expect(first.tasks.map((t) => t.id)).toEqual(
      done
        .slice(2)
        .reverse()
        .map((t) => t.id)
    )
    const second = await ledger.list({ state: "TASK_STATE_COMPLETED", pageSize: 3, pageToken: first.nextPageToken })
    expect(second.tasks.map((t) => t.id)).toEqual(
      done
        .slice(0, 2)
        .reverse()
        .map((t) => t.id)
    )
    expect(second.nextPageToken).toBe("")
    expect((await ledger.list()).totalSize).toBe(6)
    expect((await ledger.list({ state: "TASK_STATE_FAILED" })).tasks.map((t) => t.history[0]?.parts[0]?.text)).toEqual(["fail once"])
  })
})

describe("createLedger: subscribe and cancel", () => {
  it("subscribe gives the task, then each update as it is committed, and ends after the terminal one", async () => {
    const release = gate()
    const ledger = await open({
      ...card,
      run: async (ctx) => {
        await release.opened
        await ctx.progress("step 1")
        await ctx.artifact({ artifactId: "out", parts: [{ text: "result" }] })
        return { state: "completed" }
      }
    })
    const started = await ledger.send("go", { wait: false })
    const items = ledger.subscribe(started.id)[Symbol.asyncIterator]()
    // The stream is open once its first item (the task as it is now) is here: then the agent goes on.
    const first = await items.next()
    expect(first.done !== true && "task" in first.value && first.value.task.id).toBe(started.id)
    release.open()
    const seen: Array<StreamResponse> = []
    for (let next = await items.next(); next.done !== true; next = await items.next()) seen.push(next.value)
    // Its start may come as an update of its own, or with the first report.
    const updates = seen.map(stateOf).filter((s, i, all) => !(s === "TASK_STATE_WORKING" && i === 0 && all[1] === "TASK_STATE_WORKING"))
    expect(updates).toEqual(["TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"])
    expect(seen.some((i) => "statusUpdate" in i && i.statusUpdate.status.message?.parts[0]?.text === "step 1")).toBe(true)
    const artifact = seen.find((i) => "artifactUpdate" in i)
    expect(artifact).toEqual({
      artifactUpdate: { taskId: started.id, contextId: started.contextId, artifact: { artifactId: "out", parts: [{ text: "result" }] } }
    })
    // A finished task: the task alone.
    expect((await collect(ledger.subscribe(started.id))).map(stateOf)).toEqual(["TASK_STATE_COMPLETED"])
  })

  it("cancel aborts the turn's signal, and nothing the agent reports after it is recorded", async () => {
    const working = gate()
    const afterCancel: Array<unknown> = []
    const reported = gate()
    const ledger = await open({
      ...card,
      run: async (ctx) => {
        await ctx.progress("before cancel")
        working.open()
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()))
        // The agent ignores the cancel and goes on: both reports are refused.
        await ctx.progress("after cancel").catch((e) => afterCancel.push(e))
        await ctx.artifact({ artifactId: "late", parts: [{ text: "late" }] }).catch((e) => afterCancel.push(e))
        reported.open()
        return { state: "completed" }
      }
    })
    const started = await ledger.send("long job", { wait: false })
    await working.opened
    const canceled = await ledger.cancel(started.id)
    expect(canceled.status.state).toBe("TASK_STATE_CANCELED")
    await reported.opened
    expect(afterCancel).toHaveLength(2)
    expect(afterCancel.every((e) => e instanceof TurnAbortedError)).toBe(true)
    const task = await ledger.get(started.id)
    expect(task.status.state).toBe("TASK_STATE_CANCELED")
    expect(task.history.map((m) => m.parts[0]?.text)).toEqual(["long job", "before cancel"])
    expect(task.artifacts).toEqual([])
  })
})

describe("createLedger: errors carry the A2A code", () => {
  it("an unknown task, a finished task canceled, a bad message, a bad page size", async () => {
    const ledger = await open(reporter)
    const missing = await ledger.get("no-such-task").catch((e: unknown) => e)
    expect(missing).toBeInstanceOf(TaskNotFoundError)
    expect(missing).toBeInstanceOf(LedgerError)
    expect(missing).toMatchObject({ code: -32001, reason: "TASK_NOT_FOUND", details: { taskId: "no-such-task" } })
    await expect(collect(ledger.subscribe("no-such-task"))).rejects.toBeInstanceOf(TaskNotFoundError)

    const done = await ledger.send("finish")
    await expect(ledger.cancel(done.id)).rejects.toMatchObject({ name: "TaskNotCancelableError", code: -32002 })
    await expect(ledger.cancel(done.id)).rejects.toBeInstanceOf(TaskNotCancelableError)
    await expect(ledger.send({ text: "more", taskId: done.id })).rejects.toBeInstanceOf(UnsupportedOperationError)

    const bad = await ledger.send({ messageId: "x", role: "ROLE_ROBOT", parts: [{ text: "hi" }] } as never).catch((e: unknown) => e)
    expect(bad).toBeInstanceOf(InvalidParamsError)
    expect((bad as InvalidParamsError).code).toBe(-32602)
    expect((bad as InvalidParamsError).fieldViolations.map((v) => v.field)).toEqual(["message.role"])
    const page = await ledger.list({ pageSize: 0 }).catch((e: unknown) => e)
    expect(page).toMatchObject({ name: "InvalidParamsError", code: -32602, fieldViolations: [{ field: "pageSize" }] })
  })

  it("a store that cannot be opened is an error from createLedger, not later", async () => {
    const file = path.join(tempDir(), "not-a-dir")
    await import("node:fs").then((fs) => fs.writeFileSync(file, "a file"))
    await expect(createLedger({ agent: reporter, db: path.join(file, "tasks.db"), logLevel: "none" })).rejects.toThrow(/could not open .*tasks\.db/)
  })
})

describe("createLedger: listen and close", () => {
  it("listen serves the agent over A2A on a port, next to the Promise API, until closed", async () => {
    const ledger = await open(reporter)
    const server = await ledger.listen({ port: 0 })
    const url = `http://127.0.0.1:${server.port}`
    const agentCard = (await (await fetch(`${url}/.well-known/agent-card.json`)).json()) as { name: string }
    expect(agentCard.name).toBe("Promise agent")
    const sent = (await call(url, "SendMessage", { message: userMessage("over http") })) as { task: { id: string; status: { state: string } } }
    expect(sent.task.status.state).toBe("TASK_STATE_COMPLETED")
    expect((await ledger.get(sent.task.id)).artifacts[0]?.parts).toEqual([{ text: "echo: over http" }])
    await server.close()
    await expect(fetch(`${url}/.well-known/agent-card.json`)).rejects.toThrow()
    // The ledger itself stays open.
    expect((await ledger.send("still here")).status.state).toBe("TASK_STATE_COMPLETED")
  })

  it("close ends a subscription that waits for its next update, instead of leaving its loop hanging", async () => {
    const working = gate()
    const ledger = await createTestLedger({
      agent: {
        ...card,
        run: async (ctx) => {
          await ctx.progress("started")
          working.open()
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()))
          return { state: "completed" }
        }
      }
    })
    const started = await ledger.send("wait forever", { wait: false })
    await working.opened
    const seen: Array<string> = []
    const loop = (async () => {
      for await (const item of ledger.subscribe(started.id)) seen.push(stateOf(item))
      return "ended"
    })()
    // The loop has the task (WORKING, "started") and waits for more.
    await eventually(
      async () => seen.length,
      (n) => n >= 1
    )
    await ledger.close()
    expect(await loop).toBe("ended")
    expect(seen[0]).toBe("TASK_STATE_WORKING")
  })

  it("a Promise agent's steps survive the close: the turn runs again and resolves recorded steps without calling them", async () => {
    const db = path.join(tempDir(), "steps.db")
    const calls: Array<string> = []
    let release: () => void = () => {}
    const stepper = (hold: boolean): PromiseAgent => ({
      ...card,
      run: async (ctx) => {
        const rows = await ctx.step("load", async () => {
          calls.push("load")
          return [1, 2, 3]
        })
        const sum = await ctx.step("sum", async () => {
          calls.push("sum")
          if (hold) await new Promise<void>((resolve) => (release = resolve))
          return rows.reduce((a, b) => a + b, 0)
        })
        return { state: "completed", message: `sum ${sum}` }
      }
    })
    const first = await createLedger({ agent: stepper(true), db, logLevel: "none" })
    const started = await first.send("go", { wait: false })
    await eventually(
      async () => calls,
      (c) => c.includes("sum")
    )
    await first.close()
    release()
    const second = await open(stepper(false), db)
    const done = await eventually(
      () => second.get(started.id),
      (t) => t.status.state === "TASK_STATE_COMPLETED"
    )
    expect(done.status.message?.parts[0]?.text).toBe("sum 6")
    // "load" ran once (recorded before the close); "sum" had no record, so it ran again.
    expect(calls).toEqual(["load", "sum", "sum"])
  })

  it("a Promise agent's long sleep parks its turn: the turn runs again when due, recorded steps resolving at once", async () => {
    const db = path.join(tempDir(), "sleep.db")
    const calls: Array<string> = []
    let afterSleep = 0
    const agent: PromiseAgent = {
      ...card,
      run: async (ctx) => {
        const n = await ctx.step("load", async () => {
          calls.push("load")
          return 21
        })
        await ctx.sleep("400 millis")
        afterSleep++
        return { state: "completed", message: `doubled ${n * 2}` }
      }
    }
    const ledger = await createLedger({ agent, db, logLevel: "none", parkSleepsFromMs: 0 })
    opened.push(ledger)
    const done = await ledger.send("go")
    expect(done.status.message?.parts[0]?.text).toBe("doubled 42")
    expect(calls).toEqual(["load"])
    // The code after the sleep ran once: in the turn run again when the timer was due.
    expect(afterSleep).toBe(1)
  })

  it("a Promise agent delegates to another A2A agent and gets its result", async () => {
    const remote = await open({ ...card, run: async (ctx) => ({ state: "completed", message: `remote says ${ctx.input.parts[0]?.text}` }) })
    const served = await remote.listen({ port: 0 })
    try {
      const ledger = await open({
        ...card,
        run: async (ctx) => {
          const result = await ctx.delegate(`http://127.0.0.1:${served.port}`, "hi", { name: "ask the remote" })
          return { state: "completed", message: `${result.state}: ${result.text}` }
        }
      })
      const done = await ledger.send("go")
      expect(done.status.message?.parts[0]?.text).toBe("TASK_STATE_COMPLETED: remote says hi")
    } finally {
      await served.close()
    }
  })

  it("a Promise agent with onStepMismatch: rerun runs its steps again when their order changed under the task", async () => {
    const db = path.join(tempDir(), "rerun.db")
    const calls: Array<string> = []
    let release: () => void = () => {}
    const first = await createLedger({
      ...{ logLevel: "none" as const, db },
      agent: {
        ...card,
        run: async (ctx) => {
          await ctx.step("load", async () => void calls.push("load"))
          await ctx.step("sum", async () => void calls.push("sum"))
          await ctx.step("report", () => new Promise<void>((resolve) => (release = resolve)))
          return { state: "completed" }
        }
      }
    })
    const started = await first.send("go", { wait: false })
    await eventually(
      async () => calls,
      (c) => c.includes("sum")
    )
    await first.close()
    release()
    // The new code's second step has another name: its records are set aside and every step runs again.
    const second = await open(
      {
        ...card,
        onStepMismatch: "rerun",
        run: async (ctx) => {
          await ctx.step("load", async () => void calls.push("load"))
          const total = await ctx.step("total", async () => {
            calls.push("total")
            return 6
          })
          return { state: "completed", message: `total ${total}` }
        }
      },
      db
    )
    const done = await eventually(
      () => second.get(started.id),
      (t) => t.status.state === "TASK_STATE_COMPLETED"
    )
    expect(done.status.message?.parts[0]?.text).toBe("total 6")
    expect(calls).toEqual(["load", "sum", "load", "total"])
  })

  it("close interrupts running turns; the tasks are on disk and resume when the file is opened again", async () => {
    const db = path.join(tempDir(), "ledger.db")
    const firstRun = gate()
    let runs = 0
    const agent: PromiseAgent = {
      ...card,
      run: async (ctx) => {
        runs++
        if (runs === 1) {
          firstRun.open()
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()))
          return { state: "failed", message: "should not count" }
        }
        return { state: "completed", message: "finished after the restart" }
      }
    }
    const first = await createLedger({ agent, db, logLevel: "none" })
    const started = await first.send("survive a restart", { wait: false })
    await firstRun.opened
    await first.close()
    await expect(first.get(started.id)).rejects.toBeInstanceOf(LedgerClosedError)

    const second = await open(agent, db)
    const resumed = await collect(second.subscribe(started.id))
    expect(stateOf(resumed[resumed.length - 1]!)).toBe("TASK_STATE_COMPLETED")
    const task = await second.get(started.id)
    expect(task.status.message?.parts).toEqual([{ text: "finished after the restart" }])
    expect(runs).toBe(2)
  })
})

await describePg("createLedger on PostgreSQL", () => {
  it("the same Promise API on a postgres:// store: send, list, cancel, and a second ledger on the database sees the tasks", async () => {
    const schema = await freshSchema()
    try {
      const working = gate()
      const agent: PromiseAgent = {
        ...card,
        run: async (ctx) => {
          if (ctx.input.parts[0]?.text !== "long") return { state: "completed", message: `done: ${ctx.input.parts[0]?.text}` }
          working.open()
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()))
          return { state: "completed" }
        }
      }
      const first = await createLedger({ agent, db: schema.url, logLevel: "none" })
      opened.push(first)
      const done = await first.send("short")
      expect(done.status.message?.parts).toEqual([{ text: "done: short" }])
      const long = await first.send("long", { wait: false })
      await working.opened
      expect((await first.cancel(long.id)).status.state).toBe("TASK_STATE_CANCELED")

      // Another process's ledger on the same database (leases, not a file lock, share the store).
      const second = await createLedger({ agent, db: schema.url, logLevel: "none" })
      opened.push(second)
      expect((await second.get(done.id)).history.map((m) => m.parts[0]?.text)).toEqual(["short", "done: short"])
      expect((await second.list()).totalSize).toBe(2)
      expect((await second.list({ state: "TASK_STATE_CANCELED" })).tasks.map((t) => t.id)).toEqual([long.id])
    } finally {
      await Promise.all(opened.splice(0).map((l) => l.close()))
      await schema.drop()
    }
  }, 60_000)
})
