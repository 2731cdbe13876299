import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Queue } from "effect"
import * as EventHub from "../../src/engine/EventHub"

const committed = (taskId: string, version: number): EventHub.Committed => ({
  taskId,
  contextId: "c",
  version,
  event: { type: "TaskStarted", at: "2026-01-01T00:00:00.000Z", instanceId: "i" }
})

describe("EventHub", () => {
  it.scoped("delivers a task's events only to that task's subscribers", () =>
    Effect.gen(function* () {
      const hub = yield* EventHub.make(16)
      const a = yield* hub.subscribe("a")
      const b = yield* hub.subscribe("b")
      yield* hub.publish([committed("a", 1), committed("b", 1), committed("a", 2)])
      expect(Chunk.toArray(yield* Queue.takeAll(a)).map((c) => c.version)).toEqual([1, 2])
      expect(Chunk.toArray(yield* Queue.takeAll(b)).map((c) => c.taskId)).toEqual(["b"])
    })
  )

  it.scoped("keeps at most `capacity` unread events per subscriber, dropping the oldest", () =>
    Effect.gen(function* () {
      const hub = yield* EventHub.make(2)
      const q = yield* hub.subscribe("a")
      yield* hub.publish([1, 2, 3, 4, 5].map((v) => committed("a", v)))
      expect(Chunk.toArray(yield* Queue.takeAll(q)).map((c) => c.version)).toEqual([4, 5])
    })
  )

  it.effect("a closed subscription is forgotten", () =>
    Effect.gen(function* () {
      const hub = yield* EventHub.make(2)
      yield* Effect.scoped(hub.subscribe("a"))
      expect(yield* hub.subscriptions).toBe(0)
      yield* hub.publish([committed("a", 1)]) // nobody listening: nothing to do, no error
    })
  )
})
