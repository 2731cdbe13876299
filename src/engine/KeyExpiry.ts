import { Clock, Duration, Effect, Layer } from "effect"
import { retryTransient } from "../eventlog/Transient.js"
import { MessageIndex } from "../projections/MessageIndex.js"
import { EngineConfig } from "./EngineConfig.js"

/** Keys deleted per statement: small enough never to hold the writer up for long. */
const batch = 1_000

/**
 * The idempotency window's end: message keys older than the window answer for nothing any more (the
 * engine and the writer pass them over), and this loop deletes them, oldest first, in small batches. It
 * runs a tenth of the window apart (between one second and one hour), on every instance of a shared
 * store (a key deleted twice is deleted once).
 */
export const run = Effect.gen(function* () {
  const index = yield* MessageIndex
  const { idempotencyWindowMs } = yield* EngineConfig
  const every = Math.min(3_600_000, Math.max(1_000, Math.floor(idempotencyWindowMs / 10)))
  const sweep = Effect.gen(function* () {
    const before = (yield* Clock.currentTimeMillis) - idempotencyWindowMs
    let total = 0
    for (;;) {
      // The writer's thread holds the write lock now and then: a busy lock is tried again.
      const n = yield* retryTransient(index.expire(before, batch))
      total += n
      if (n < batch) break
      yield* Effect.yieldNow()
    }
    if (total > 0) yield* Effect.logDebug(`idempotency: deleted ${total} message key(s) accepted before ${new Date(before).toISOString()}`)
  }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("expiring message keys failed; it will run again", cause)))
  yield* sweep.pipe(Effect.zipRight(Effect.sleep(Duration.millis(every))), Effect.forever, Effect.forkScoped)
})

export const layer = Layer.scopedDiscard(run)
