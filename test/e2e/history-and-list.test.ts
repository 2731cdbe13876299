import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance } from "../../src/agent/builtins"
import { call, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { verifyStore } from "../support/verifyStore"

let server: RunningServer
/** Tasks created in order; context "ctx-a" holds the even ones. */
const created: Array<any> = []

beforeAll(async () => {
  server = await startServer({ agent: conformance })
  for (let i = 0; i < 7; i++) {
    const messageId = i === 6 ? `tck-input-required-${i}` : `tck-artifact-text-${i}`
    const { task } = await call(server.url, "SendMessage", {
      message: userMessage(`task ${i}`, { messageId, contextId: i % 2 === 0 ? "ctx-a" : "ctx-b" })
    })
    created.push(task)
    await new Promise((r) => setTimeout(r, 5)) // distinct status timestamps
  }
})
afterAll(async () => {
  // Invariant 4: every stored task equals the fold of its events.
  expect(await verifyStore(server.db)).toBeGreaterThan(0)
  await server.close()
})

describe("historyLength (spec §3.3)", () => {
  it("unset returns all history, 0 none (the key is omitted), N the last N", async () => {
    const { task } = await call(server.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-h" }) })
    await call(server.url, "SendMessage", { message: userMessage("a", { messageId: "tck-complete-task-h", taskId: task.id }) })
    const all = await call(server.url, "GetTask", { id: task.id })
    expect(all.history.map((m: any) => m.parts[0].text)).toEqual(["q", "Please provide more input.", "a", "Hello from TCK"])
    expect(await call(server.url, "GetTask", { id: task.id, historyLength: 0 })).not.toHaveProperty("history")
    const last2 = await call(server.url, "GetTask", { id: task.id, historyLength: 2 })
    expect(last2.history.map((m: any) => m.parts[0].text)).toEqual(["a", "Hello from TCK"])
    const more = await call(server.url, "GetTask", { id: task.id, historyLength: 50 })
    expect(more.history).toHaveLength(4)
  })

  it("SendMessage applies configuration.historyLength to the returned task", async () => {
    const r = await call(server.url, "SendMessage", {
      message: userMessage("x", { messageId: "tck-complete-task-hl" }),
      configuration: { historyLength: 1 }
    })
    expect(r.task.history.map((m: any) => m.parts[0].text)).toEqual(["Hello from TCK"])
  })
})

describe("ListTasks (spec §3.7)", () => {
  const ids = (page: any) => page.tasks.map((t: any) => t.id)

  it("pages newest first with an opaque cursor; nextPageToken is '' on the last page; totalSize counts all matches", async () => {
    const filter = { contextId: "ctx-a" }
    const expected = created
      .filter((_, i) => i % 2 === 0)
      .reverse()
      .map((t) => t.id)
    const seen: Array<string> = []
    let token: string | undefined
    let pages = 0
    do {
      const page = await call(server.url, "ListTasks", { ...filter, pageSize: 2, ...(token ? { pageToken: token } : {}) })
      expect(page.totalSize).toBe(4)
      expect(page.pageSize).toBe(2)
      expect(page).toHaveProperty("nextPageToken")
      seen.push(...ids(page))
      token = page.nextPageToken
      pages++
    } while (token !== "")
    expect(pages).toBe(2)
    expect(seen).toEqual(expected)
  })

  it("sorts by status timestamp, newest first, across contexts", async () => {
    const page = await call(server.url, "ListTasks", { pageSize: 100 })
    const stamps = page.tasks.map((t: any) => t.status.timestamp)
    expect([...stamps].sort().reverse()).toEqual(stamps)
    expect(page.nextPageToken).toBe("")
  })

  it("filters by status and by statusTimestampAfter", async () => {
    const waiting = await call(server.url, "ListTasks", { status: "TASK_STATE_INPUT_REQUIRED", contextId: "ctx-a" })
    expect(ids(waiting)).toEqual([created[6].id])
    const cutoff = created[4].status.timestamp
    const recent = await call(server.url, "ListTasks", { statusTimestampAfter: cutoff, contextId: "ctx-a" })
    expect(ids(recent)).toEqual([created[6].id, created[4].id])
  })

  it("omits the artifacts key unless includeArtifacts is true", async () => {
    const without = await call(server.url, "ListTasks", { contextId: "ctx-b" })
    for (const t of without.tasks) expect(t).not.toHaveProperty("artifacts")
    const withArtifacts = await call(server.url, "ListTasks", { contextId: "ctx-b", includeArtifacts: true })
    for (const t of withArtifacts.tasks) expect(t.artifacts[0].parts[0].text).toBe("Generated text content")
  })

  it("applies historyLength per task", async () => {
    const page = await call(server.url, "ListTasks", { contextId: "ctx-b", historyLength: 0 })
    for (const t of page.tasks) expect(t).not.toHaveProperty("history")
  })

  it("defaults pageSize to 50 and answers an empty match with tasks: [] and nextPageToken ''", async () => {
    const page = await call(server.url, "ListTasks", { contextId: "no-such-context" })
    expect(page).toEqual({ tasks: [], nextPageToken: "", pageSize: 50, totalSize: 0 })
  })

  it("only lists the caller's tenant", async () => {
    const page = await call(server.url, "ListTasks", { tenant: "other-tenant" })
    expect(page.totalSize).toBe(0)
  })
})
