import { SqlClient } from "@effect/sql"
import { SqliteCommits } from "../../src/eventlog/SqliteCommits"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { Agent } from "../../src/agent/Agent"
import { echo, slowWorker } from "../../src/agent/builtins"
import { eventually, rpc, type RpcResponse, userMessage } from "../support/rpc"
import { type RunningServer, startServer, tempDir } from "../support/server"
import { verifyStore } from "../support/verifyStore"
import { answered, holdWriteLock } from "../support/faults"
import { cli } from "../support/cli"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

/**
 * Store faults on SQLite (issue 10): a fault fails the commands it touched
 * with a clear answer, the writer keeps serving, and service comes back by
 * itself when the store does. Every request must be answered within a bound;
 * a request that hangs fails the test by its own deadline, not vitest's.
 */
const running: Array<RunningServer> = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.close()
})

const send = (url: string, text: string, configuration?: Record<string, unknown>) =>
  answered(
    `SendMessage "${text.slice(0, 20)}"`,
    rpc(url, "SendMessage", { message: userMessage(text), ...(configuration !== undefined ? { configuration } : {}) })
  )

/** The store's connections: `max_page_count` is a per-connection limit, so it must be set on each that writes. */
const setMaxPages = (server: RunningServer, pages: number | "current") =>
  server.run(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql.unsafe<{ page_count: number }>("PRAGMA page_count")
      const limit = pages === "current" ? row!.page_count : pages
      yield* sql.unsafe(`PRAGMA max_page_count = ${limit}`)
      // The writer commits on a connection of its own.
      yield* (yield* SqliteCommits).pragma(`max_page_count = ${limit}`)
    })
  )

/** A server on a new SQLite file, stopped after the test. */
const serverOn = async (file: string, agent: Agent) => {
  const server = await startServer({ agent, db: path.join(tempDir(), file) })
  running.push(server)
  return server
}

/** Stop the server, then check its store as `verify` would: the number of tasks, all consistent. */
const closeAndVerify = async (server: RunningServer) => {
  running.splice(running.indexOf(server), 1)
  await server.close()
  return verifyStore(server.db)
}

const readyz = async (url: string) => {
  const res = await answered("GET /readyz", fetch(`${url}/readyz`))
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string } }
}

const expectStoreError = (r: RpcResponse, fault: RegExp) => {
  expect(r.result).toBeUndefined()
  expect(r.error!.code).toBe(-32603)
  expect(r.error!.message).toMatch(/task store is unavailable/)
  expect(r.error!.message).toMatch(fault)
  expect(r.error!.message).not.toMatch(/\n\s+at /)
}

describe("SQLite store faults", () => {
  it("disk full (SQLITE_FULL): every send is answered, -32603 names the store, acknowledged tasks stay intact, and sends work again once space is freed", async () => {
    const server = await serverOn("full.db", echo)

    const acknowledged: Array<string> = []
    for (let i = 0; i < 3; i++) {
      const r = await send(server.url, `before ${i}`)
      expect(r.result.task.status.state).toBe("TASK_STATE_COMPLETED")
      acknowledged.push(r.result.task.id)
    }

    // "The disk fills up": the file may not grow by a single page from now on.
    await setMaxPages(server, "current")
    const failures: Array<RpcResponse> = []
    for (let i = 0; i < 200 && failures.length < 5; i++) {
      const r = await send(server.url, `during ${i} ${"x".repeat(2_000)}`)
      if (r.error !== undefined) failures.push(r)
      else acknowledged.push(r.result.task.id)
    }
    expect(failures.length).toBe(5)
    for (const f of failures) expectStoreError(f, /SQLite: the disk is full/)
    // Reads still answer while writes fail.
    const read = await answered("GetTask", rpc(server.url, "GetTask", { id: acknowledged[0] }))
    expect(read.result.status.state).toBe("TASK_STATE_COMPLETED")

    // "Space is freed": no restart, the next sends simply work.
    await setMaxPages(server, 1_000_000)
    const after = await send(server.url, "after")
    expect(after.result.task.status.state).toBe("TASK_STATE_COMPLETED")
    acknowledged.push(after.result.task.id)

    // Every acknowledged task is there and finished (none left stranded by the fault).
    for (const id of acknowledged) {
      const t = await eventually(
        () => rpc(server.url, "GetTask", { id }),
        (r) => r.result !== undefined && ["TASK_STATE_COMPLETED", "TASK_STATE_FAILED"].includes(r.result.status.state)
      )
      expect(t.result.id).toBe(id)
    }
    expect(await closeAndVerify(server)).toBeGreaterThanOrEqual(acknowledged.length)
  }, 90_000)

  it("a turn the disk filled up under is not failed: it runs again, to the end, once space is freed", async () => {
    const server = await serverOn("stranded.db", slowWorker({ stepDelayMs: 150 }))
    const ids: Array<string> = []
    for (let i = 0; i < 4; i++) {
      const r = await send(server.url, "x", { returnImmediately: true })
      ids.push(r.result.task.id)
    }
    // The workers are between steps: their next commits meet a full disk.
    await setMaxPages(server, "current")
    await new Promise((r) => setTimeout(r, 1_500))
    const during = await Promise.all(ids.map((id) => answered("GetTask", rpc(server.url, "GetTask", { id }))))
    for (const t of during) expect(t.result.status.state).not.toBe("TASK_STATE_FAILED")
    await setMaxPages(server, 1_000_000)
    for (const id of ids) {
      const t = await eventually(
        () => rpc(server.url, "GetTask", { id }),
        (r) => r.result?.status.state === "TASK_STATE_COMPLETED",
        20_000
      )
      expect(t.result.artifacts[0].artifactId).toBe("analysis-report")
    }
    await closeAndVerify(server)
  }, 90_000)

  it("a database file locked by another process: sends answer -32603 (HTTP 503 on REST) and /readyz says why; both recover when the lock goes", async () => {
    const server = await serverOn("locked.db", echo)
    const db = server.db
    const before = await send(server.url, "before")
    expect((await readyz(server.url)).status).toBe(200)

    const lock = await holdWriteLock(db)
    const refused = await send(server.url, "while locked")
    expectStoreError(refused, /SQLite: the database file is locked by another process/)
    const rest = await answered(
      "POST /message:send",
      fetch(`${server.url}/message:send`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ message: userMessage("rest") })
      })
    )
    expect(rest.status).toBe(503)
    const status = (await rest.json()) as { error: { code: number; status: string; message: string } }
    expect(status.error).toMatchObject({ code: 503, status: "UNAVAILABLE" })
    const notReady = await readyz(server.url)
    expect(notReady.status).toBe(503)
    expect(notReady.body.reason).toMatch(/locked by another process/)
    // Reads do not need the lock.
    expect((await rpc(server.url, "GetTask", { id: before.result.task.id })).result.status.state).toBe("TASK_STATE_COMPLETED")

    await lock.release()
    await eventually(
      () => readyz(server.url),
      (r) => r.status === 200,
      15_000
    )
    const after = await send(server.url, "after")
    expect(after.result.task.status.state).toBe("TASK_STATE_COMPLETED")
    await closeAndVerify(server)
  }, 90_000)

  it("a push config saved while the write lock is held a moment (by the writer's thread, or a tool) is tried again, not refused", async () => {
    const server = await serverOn("config-lock.db", echo)
    const task = (await send(server.url, "configured later")).result.task
    const lock = await holdWriteLock(server.db)
    const created = answered(
      "CreateTaskPushNotificationConfig",
      rpc(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, id: "later", url: "https://example.com/hook" })
    )
    await new Promise((resolve) => setTimeout(resolve, 150))
    await lock.release()
    const r = await created
    expect(r.error).toBeUndefined()
    expect(r.result).toMatchObject({ taskId: task.id, id: "later", url: "https://example.com/hook" })
    expect((await rpc(server.url, "GetTaskPushNotificationConfig", { taskId: task.id, id: "later" })).result.url).toBe("https://example.com/hook")
  }, 30_000)

  it("a database file removed from under the server: commits are refused (never acknowledged into a deleted file), /readyz says why, and all is well once it is back", async () => {
    const server = await serverOn("moved.db", echo)
    const db = server.db
    const before = await send(server.url, "before")
    expect(before.result.task.status.state).toBe("TASK_STATE_COMPLETED")

    fs.renameSync(db, `${db}.elsewhere`)
    const refused = await send(server.url, "while gone")
    expectStoreError(refused, /SQLite: the database file was removed or replaced while the server ran/)
    const notReady = await readyz(server.url)
    expect(notReady.status).toBe(503)
    expect(notReady.body.reason).toMatch(/removed or replaced/)

    fs.renameSync(`${db}.elsewhere`, db)
    await eventually(
      () => readyz(server.url),
      (r) => r.status === 200,
      15_000
    )
    const after = await send(server.url, "after")
    expect(after.error).toBeUndefined()
    expect(after.result.task.status.state).toBe("TASK_STATE_COMPLETED")
    // Everything acknowledged is in the file at its path.
    expect(await closeAndVerify(server)).toBe(2)
  }, 60_000)

  it("a tool that writes beside the server (prune) waits for a lock held a moment, instead of failing at once as the server's writer does", async () => {
    const db = path.join(tempDir(), "tool.db")
    // The store exists (opening it creates it); then another process holds its write lock for 1.5 s.
    expect(await verifyStore(db)).toBe(0)
    const holder = spawn(process.execPath, [
      "-e",
      `
      const Database = require(${JSON.stringify(require.resolve("better-sqlite3"))})
      const db = new Database(${JSON.stringify(db)})
      db.exec("BEGIN IMMEDIATE")
      console.log("locked")
      setTimeout(() => { db.exec("ROLLBACK"); process.exit(0) }, 1500)
    `
    ])
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()))
    const r = await cli(["prune", "--older-than", "0", "--db", db])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
  }, 30_000)
})
