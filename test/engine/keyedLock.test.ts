import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import * as KeyedLock from "../../src/engine/KeyedLock"

describe("KeyedLock", () => {
  it.effect("runs holders of one key one at a time, in arrival order", () =>
    Effect.gen(function* () {
      const lock = yield* KeyedLock.make
      const order: Array<number> = []
      const gate = yield* Deferred.make<void>()
      const first = yield* Effect.fork(lock.withLock("k")(Deferred.await(gate).pipe(Effect.zipRight(Effect.sync(() => order.push(0))))))
      yield* Effect.yieldNow()
      const rest = yield* Effect.forEach([1, 2, 3, 4], (i) => Effect.fork(lock.withLock("k")(Effect.sync(() => order.push(i)))))
      yield* Effect.yieldNow()
      expect(order).toEqual([])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* Effect.forEach(rest, Fiber.join)
      expect(order).toEqual([0, 1, 2, 3, 4])
      expect(lock.size()).toBe(0)
    })
  )

  it.effect("different keys do not wait for each other", () =>
    Effect.gen(function* () {
      const lock = yield* KeyedLock.make
      const gate = yield* Deferred.make<void>()
      yield* Effect.fork(lock.withLock("a")(Deferred.await(gate)))
      yield* Effect.yieldNow()
      expect(yield* lock.withLock("b")(Effect.succeed("b ran"))).toBe("b ran")
      yield* Deferred.succeed(gate, undefined)
    })
  )

  it.effect("an interrupted waiter leaves the line; a failed holder releases the lock", () =>
    Effect.gen(function* () {
      const lock = yield* KeyedLock.make
      const gate = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(lock.withLock("k")(Deferred.await(gate).pipe(Effect.zipRight(Effect.fail("boom")))))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(lock.withLock("k")(Effect.succeed("never")))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiter)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Effect.flip(Fiber.join(holder))).toBe("boom")
      expect(yield* lock.withLock("k")(Effect.succeed("free again"))).toBe("free again")
      expect(lock.size()).toBe(0)
    })
  )
})
