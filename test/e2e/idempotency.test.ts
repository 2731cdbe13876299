import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance, slowWorker } from "../../src/agent/builtins"
import * as Store from "../../src/eventlog/Store"
import { call, eventually, rpc, stream, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { shownVersions, storedTypes } from "../support/storeEvents"
import { verifyStore } from "../support/verifyStore"

let slow: RunningServer
let tck: RunningServer
beforeAll(async () => {
  slow = await startServer({ agent: slowWorker({ stepDelayMs: 60 }) })
  tck = await startServer({ agent: conformance })
})
afterAll(async () => {
  expect(await verifyStore(slow.db)).toBeGreaterThan(0)
  expect(await verifyStore(tck.db)).toBeGreaterThan(0)
  await slow.close()
  await tck.close()
})

const results = (events: ReadonlyArray<any>) => events.map((e) => e.data.result)
const stateOf = (r: any) => r.task?.status.state ?? r.statusUpdate?.status.state
const count = (types: ReadonlyArray<string>, type: string) => types.filter((t) => t === type).length

describe("SendMessage with a messageId already accepted", () => {
  it("returns the original task and appends nothing", async () => {
    const message = userMessage("once", { messageId: "tck-complete-task-idem-1" })
    const first = await call(tck.url, "SendMessage", { message })
    const before = await storedTypes(tck.db, first.task.id)
    const again = await call(tck.url, "SendMessage", { message })
    expect(again.task.id).toBe(first.task.id)
    // The same task, and the answer says it is a replay (first answers never carry the flag).
    expect(first.task.metadata?.["a2a-ledger/replayed"]).toBeUndefined()
    expect(again.task.metadata["a2a-ledger/replayed"]).toBe(true)
    const { metadata: _flag, ...unflagged } = again.task
    expect(unflagged).toEqual(first.task)
    expect(await storedTypes(tck.db, first.task.id)).toEqual(before)
    // GetTask shows the task itself, unflagged.
    expect((await call(tck.url, "GetTask", { id: first.task.id })).metadata).toBeUndefined()
  })

  it("with returnImmediately, answers with the task as it is now", async () => {
    const message = userMessage("slow", { messageId: "idem-immediate" })
    const first = await call(slow.url, "SendMessage", { message, configuration: { returnImmediately: true } })
    await eventually(
      () => call(slow.url, "GetTask", { id: first.task.id }),
      (t) => t.status.state === "TASK_STATE_COMPLETED"
    )
    const again = await call(slow.url, "SendMessage", { message, configuration: { returnImmediately: true } })
    expect(again.task.id).toBe(first.task.id)
    expect(again.task.status.state).toBe("TASK_STATE_COMPLETED")
    expect(count(await storedTypes(slow.db, first.task.id), "TaskSubmitted")).toBe(1)
  })

  it("many concurrent sends of one message make one task", async () => {
    const message = userMessage("race", { messageId: "idem-race" })
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => call(slow.url, "SendMessage", { tenant: "idem-race", message, configuration: { returnImmediately: true } }))
    )
    const ids = new Set(answers.map((a) => a.task.id))
    expect(ids.size).toBe(1)
    const listed = await call(slow.url, "ListTasks", { tenant: "idem-race" })
    expect(listed.totalSize).toBe(1)
    expect(count(await storedTypes(slow.db, [...ids][0]!), "TaskSubmitted")).toBe(1)
  })

  it("the same messageId in another tenant is another message", async () => {
    const message = userMessage("t", { messageId: "tck-complete-task-idem-tenants" })
    const a = await call(tck.url, "SendMessage", { tenant: "idem-a", message })
    const b = await call(tck.url, "SendMessage", { tenant: "idem-b", message })
    expect(a.task.id).not.toBe(b.task.id)
  })

  it("a repeated answer to INPUT_REQUIRED returns the task and provides nothing twice", async () => {
    const asked = await call(tck.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-idem" }) })
    expect(asked.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    const answer = userMessage("a", { messageId: "tck-complete-task-idem-answer", taskId: asked.task.id })
    const done = await call(tck.url, "SendMessage", { message: answer })
    expect(done.task.status.state).toBe("TASK_STATE_COMPLETED")
    const before = await storedTypes(tck.db, asked.task.id)
    const again = await call(tck.url, "SendMessage", { message: answer })
    expect(again.task).toEqual({ ...done.task, metadata: { "a2a-ledger/replayed": true } })
    expect(await storedTypes(tck.db, asked.task.id)).toEqual(before)
    expect(count(before, "InputProvided")).toBe(1)
  })

  it("a messageId already used for one task, sent to another, is -32602 naming message.messageId", async () => {
    const a = await call(tck.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-idem-a" }) })
    const b = await call(tck.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-idem-b" }) })
    const res = await rpc(tck.url, "SendMessage", { message: userMessage("x", { messageId: "tck-input-required-idem-a", taskId: b.task.id }) })
    expect(res.error!.code).toBe(-32602)
    expect(res.error!.message).toContain("message.messageId")
    expect(res.error!.message).toContain(a.task.id)
  })

  it("the same messageId with other content is -32602 naming message.messageId, never the other task; the same content, in any key order, is a repeat", async () => {
    const first = await call(tck.url, "SendMessage", { message: userMessage("tck-artifact-text first", { messageId: "idem-content-1" }) })
    const other = await rpc(tck.url, "SendMessage", { message: userMessage("tck-artifact-text second", { messageId: "idem-content-1" }) })
    expect(other.error!.code).toBe(-32602)
    expect(other.error!.message).toContain("message.messageId")
    expect(other.error!.message).toContain("already used for another message")
    expect(other.result).toBeUndefined()
    // The same message again, its keys in another order: the original task, nothing new.
    const { parts, role, messageId } = userMessage("tck-artifact-text first", { messageId: "idem-content-1" })
    const repeat = await call(tck.url, "SendMessage", { message: { parts, messageId, role } })
    expect(repeat.task.id).toBe(first.task.id)
  })
})

describe("SendStreamingMessage with a messageId already accepted", () => {
  it("re-attaches to the task's stream: the same task from the same start, nothing written twice", async () => {
    const message = userMessage("stream", { messageId: "idem-stream" })
    const first = await stream(slow.url, "SendStreamingMessage", { message })
    const head = await first.next()
    const taskId = head!.data.result.task.id
    first.abort() // the client lost its connection and sends again
    const second = results(await (await stream(slow.url, "SendStreamingMessage", { message })).rest())
    expect(second[0].task.id).toBe(taskId)
    expect(second[0].task.status.state).toBe("TASK_STATE_SUBMITTED")
    expect(head!.data.result.task.metadata?.["a2a-ledger/replayed"]).toBeUndefined()
    expect(second[0].task.metadata["a2a-ledger/replayed"]).toBe(true)
    expect(stateOf(second[second.length - 1])).toBe("TASK_STATE_COMPLETED")
    const types = await storedTypes(slow.db, taskId)
    expect(count(types, "TaskSubmitted")).toBe(1)
    expect(count(types, "TaskStarted")).toBe(1)
    // Every fact after the submit a client is shown (not the step journal), once, in order: as the first stream would have shown them.
    expect(second.length).toBe((await shownVersions(slow.db, taskId)).length)
  })
})

describe("CancelTask from two clients at once", () => {
  it("both get CANCELED and the log holds one TaskCanceled", async () => {
    const { task } = await call(slow.url, "SendMessage", { message: userMessage("long"), configuration: { returnImmediately: true } })
    const answers = await Promise.all(Array.from({ length: 4 }, () => call(slow.url, "CancelTask", { id: task.id })))
    for (const a of answers) expect(a.status.state).toBe("TASK_STATE_CANCELED")
    expect(count(await storedTypes(slow.db, task.id), "TaskCanceled")).toBe(1)
  })
})

describe("serve --idempotency off (for clients that reuse messageIds, such as the official TCK)", () => {
  it("every message is new: the same messageId twice makes two tasks, and the store stays sound", async () => {
    const lenient = await startServer({ agent: conformance, idempotency: "off" })
    try {
      const message = userMessage("again", { messageId: "tck-input-required-reused" })
      const a = await call(lenient.url, "SendMessage", { message })
      const b = await call(lenient.url, "SendMessage", { message })
      expect(a.task.id).not.toBe(b.task.id)
      expect(b.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
      // The same answer messageId to both tasks: each takes it.
      const answer = (taskId: string) => userMessage("a", { messageId: "tck-complete-task-reused", taskId })
      expect((await call(lenient.url, "SendMessage", { message: answer(a.task.id) })).task.status.state).toBe("TASK_STATE_COMPLETED")
      expect((await call(lenient.url, "SendMessage", { message: answer(b.task.id) })).task.status.state).toBe("TASK_STATE_COMPLETED")
      expect(await verifyStore(lenient.db)).toBe(2)
    } finally {
      await lenient.close()
    }
  })
})

/** SQL on a running server's store, from a connection of its own (as the CLI tools open it). */
const onStore = <A>(db: string, statement: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(SqlClient.SqlClient, statement).pipe(Effect.provide(Store.layer(db, { exclusive: false })))))

const keysHeld = (db: string) =>
  onStore(db, (sql) => sql<{ task_id: string }>`SELECT task_id FROM a2a_message_ids ORDER BY task_id`).then((rows) => rows.map((r) => r.task_id))

describe("the idempotency window (--idempotency-window)", () => {
  it("a messageId repeated after its key expired is a new message; the new task holds the key, and a repeat within the window returns it", async () => {
    const message = userMessage("window", { messageId: "tck-complete-task-window" })
    const first = await call(tck.url, "SendMessage", { message })
    // A day and a minute pass for the key: its acceptance is moved back past the 24 h window.
    await onStore(tck.db, (sql) => sql`UPDATE a2a_message_ids SET accepted_at = accepted_at - ${86_460_000} WHERE task_id = ${first.task.id}`)
    const second = await call(tck.url, "SendMessage", { message })
    expect(second.task.id).not.toBe(first.task.id)
    expect(second.task.metadata?.["a2a-ledger/replayed"]).toBeUndefined()
    expect(count(await storedTypes(tck.db, second.task.id), "TaskSubmitted")).toBe(1)
    const third = await call(tck.url, "SendMessage", { message })
    expect(third.task.id).toBe(second.task.id)
    expect(third.task.metadata["a2a-ledger/replayed"]).toBe(true)
    // Other content under the taken-over id is refused as before, naming the new holder.
    const other = await rpc(tck.url, "SendMessage", { message: userMessage("something else", { messageId: message.messageId }) })
    expect(other.error?.code).toBe(-32602)
    expect(other.error?.message).toContain(second.task.id)
  })

  it("expired keys are deleted, and verify with the same window finds nothing missing", async () => {
    const short = await startServer({ agent: conformance, idempotencyWindowMs: 1_000 })
    try {
      const a = await call(short.url, "SendMessage", { message: userMessage("one", { messageId: "tck-complete-task-short-1" }) })
      const b = await call(short.url, "SendMessage", { message: userMessage("two", { messageId: "tck-complete-task-short-2" }) })
      expect((await keysHeld(short.db)).length).toBeGreaterThan(0)
      // The expiry loop runs every second here (a tenth of the window, at least a second).
      await eventually(
        () => keysHeld(short.db),
        (keys) => keys.length === 0
      )
      expect(await verifyStore(short.db, 1_000)).toBe(2)
      // A store checked against a longer window misses those keys: verify says so.
      await expect(verifyStore(short.db)).rejects.toThrow(/not in the message index/)
      // The ids are free again: each makes a new task.
      const again = await call(short.url, "SendMessage", { message: userMessage("one", { messageId: "tck-complete-task-short-1" }) })
      expect([a.task.id, b.task.id]).not.toContain(again.task.id)
    } finally {
      await short.close()
    }
  })
})
