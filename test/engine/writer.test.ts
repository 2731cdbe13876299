import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, Option } from "effect"
import * as path from "node:path"
import { Outcome } from "../../src/agent/Agent"
import { EventLog } from "../../src/eventlog/EventLog"
import { TaskWriter } from "../../src/engine/TaskWriter"
import { MessageIndex } from "../../src/projections/MessageIndex"
import * as Embedded from "../../src/layers/Embedded"
import { agentMessage, userMessage } from "../support/fixtures"
import { tempDir } from "../support/server"

const idle = { name: "idle", description: "", version: "1", skills: [], run: () => Effect.never.pipe(Effect.as(Outcome.complete())) }
const store = () =>
  Embedded.layerSqlite({ agent: idle, db: path.join(tempDir(), "writer.db"), maxWorkers: 0 }).pipe(
    Layer.provide(Logger.minimumLogLevel(LogLevel.None))
  )

describe("TaskWriter: group commit", () => {
  it.effect("many tasks committing at once each get gap-free versions; a refusal touches only its own command", () =>
    Effect.gen(function* () {
      const writer = yield* TaskWriter
      const log = yield* EventLog
      const ids = Array.from({ length: 40 }, (_, i) => `task-${i}`)
      yield* Effect.forEach(
        ids,
        (id) => writer.commit(id, { type: "Submit", taskId: id, contextId: "c", tenant: "", owner: "", message: userMessage(id) }),
        {
          concurrency: "unbounded"
        }
      )
      // Every other task gets an illegal command (progress before start) in the same wave as legal ones.
      const results = yield* Effect.forEach(
        ids,
        (id, i) =>
          Effect.either(
            i % 2 === 0
              ? writer.commit(id, { type: "Start", instanceId: "x" })
              : writer.commit(id, { type: "Progress", message: agentMessage("early") })
          ),
        { concurrency: "unbounded" }
      )
      for (const [i, r] of results.entries()) expect(r._tag).toBe(i % 2 === 0 ? "Right" : "Left")
      for (const [i, id] of ids.entries()) {
        const events = yield* log.read(id)
        expect(events.map((e) => e.version)).toEqual(i % 2 === 0 ? [1, 2] : [1])
      }
    }).pipe(Effect.provide(store()))
  )

  it.effect("a command for an unknown task is refused as not found and writes nothing", () =>
    Effect.gen(function* () {
      const writer = yield* TaskWriter
      const error = yield* Effect.flip(writer.commit("ghost", { type: "Cancel" }))
      expect(error).toMatchObject({ _tag: "TaskNotFound", taskId: "ghost" })
      expect(yield* (yield* EventLog).version("ghost")).toBe(0)
    }).pipe(Effect.provide(store()))
  )

  it.effect("a Submit for a task id already taken is refused and writes nothing, also once the writer no longer holds the task in memory", () =>
    Effect.gen(function* () {
      const writer = yield* TaskWriter
      const log = yield* EventLog
      const submit = (text: string) =>
        writer.commit("taken", { type: "Submit", taskId: "taken", contextId: "c", tenant: "", owner: "", message: userMessage(text) })
      yield* submit("first")
      // Held in memory (SUBMITTED): refused on it.
      expect(yield* Effect.flip(submit("second"))).toMatchObject({ _tag: "CommandRefused" })
      // Finished tasks leave the writer's memory: the new task's insert is refused by the store, then judged on the row.
      yield* writer.commit("taken", { type: "Cancel" })
      expect(yield* Effect.flip(submit("third"))).toMatchObject({ _tag: "CommandRefused", refusal: { _tag: "TaskIsTerminal" } })
      const events = yield* log.read("taken")
      expect(events.map((e) => e.event.type)).toEqual(["TaskSubmitted", "TaskCanceled"])
    }).pipe(Effect.provide(store()))
  )

  it.effect("two tasks submitted with one message key, in one batch: the first is written, the second is a DuplicateMessage and writes nothing", () =>
    Effect.gen(function* () {
      const writer = yield* TaskWriter
      const log = yield* EventLog
      const message = userMessage("same", "m-same")
      const submit = (id: string) => writer.commit(id, { type: "Submit", taskId: id, contextId: "c", tenant: "t", owner: "o", message })
      const [first, second] = yield* Effect.all([Effect.either(submit("first")), Effect.either(submit("second"))], { concurrency: "unbounded" })
      expect(first!._tag).toBe("Right")
      expect(second).toMatchObject({ _tag: "Left", left: { _tag: "DuplicateMessage", taskId: "first", version: 1 } })
      expect(yield* log.version("second")).toBe(0)
      // With duplicates accepted (idempotency off), the same key goes through; the key stays the first task's.
      const third = yield* writer.commit(
        "third",
        { type: "Submit", taskId: "third", contextId: "c", tenant: "t", owner: "o", message },
        { duplicates: "accept" }
      )
      expect(third.snapshot.version).toBe(1)
      const index = yield* MessageIndex
      expect(yield* index.find({ tenant: "t", owner: "o", messageId: "m-same" })).toEqual(Option.some({ taskId: "first", version: 1 }))
    }).pipe(Effect.provide(store()))
  )
})
