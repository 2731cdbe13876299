import { Clock, Effect, Layer } from "effect"
import { MessageIndex } from "../projections/MessageIndex.js"
import { EngineConfig } from "./EngineConfig.js"
import { drain, everyTenth } from "./Sweeper.js"

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
  const sweep = Effect.gen(function* () {
    const before = (yield* Clock.currentTimeMillis) - idempotencyWindowMs
    const total = yield* drain(index.expire(before, batch), batch)
    if (total > 0) yield* Effect.logDebug(`idempotency: deleted ${total} message key(s) accepted before ${new Date(before).toISOString()}`)
  })
  yield* everyTenth(idempotencyWindowMs, "expiring message keys", sweep)
})

export const layer = Layer.scopedDiscard(run)
