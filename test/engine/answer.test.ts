import { describe, expect, it } from "vitest"
import { Effect, Exit, Fiber } from "effect"
import { Answer } from "../../src/engine/Answer"

describe("Answer (the hot paths' one-shot answer)", () => {
  it("reaches every waiter, and one that comes after the answer at once; only the first answer counts", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const answer = new Answer<number, string>()
        const waiters = yield* Effect.all([Effect.fork(answer.await), Effect.fork(answer.await), Effect.fork(answer.await)])
        yield* Effect.yieldNow()
        expect(answer.done).toBe(false)
        answer.complete(Exit.succeed(7))
        answer.complete(Exit.fail("too late"))
        expect(answer.done).toBe(true)
        for (const w of waiters) expect(yield* Fiber.join(w)).toBe(7)
        expect(yield* answer.await).toBe(7)
      })
    ))

  it("a waiter interrupted meanwhile stops waiting; the others still get the answer, a failure as a failure", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const answer = new Answer<number, string>()
        const gone = yield* Effect.fork(answer.await)
        const kept = yield* Effect.fork(Effect.either(answer.await))
        yield* Effect.yieldNow()
        expect(Exit.isInterrupted(yield* Fiber.interrupt(gone))).toBe(true)
        answer.complete(Exit.fail("no"))
        const either = yield* Fiber.join(kept)
        expect(either._tag === "Left" && either.left).toBe("no")
      })
    ))
})
