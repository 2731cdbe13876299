import { Clock, Duration, Effect, Layer } from "effect"
import { Pruner } from "../eventlog/Pruner.js"
import { retryTransient } from "../eventlog/Transient.js"

/** Tasks removed per transaction: small enough never to hold the writer up for long. */
const batch = 200

/**
 * Periodic retention: finished tasks whose last change is older than
 * `retentionMs` are removed, events and all, in small batches. It runs a
 * tenth of the retention period apart (between one second and one hour).
 */
export const run = (retentionMs: number) =>
  Effect.gen(function* () {
    const pruner = yield* Pruner
    const every = Math.min(3_600_000, Math.max(1_000, Math.floor(retentionMs / 10)))
    const sweep = Effect.gen(function* () {
      const before = new Date((yield* Clock.currentTimeMillis) - retentionMs).toISOString()
      let total = 0
      for (;;) {
        // The writer's thread holds the write lock now and then: a busy lock is tried again.
        const n = yield* retryTransient(pruner.prune(before, batch))
        total += n
        if (n < batch) break
        yield* Effect.yieldNow()
      }
      if (total > 0) yield* Effect.logInfo(`retention: removed ${total} finished task(s) last changed before ${before}`)
    }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("retention sweep failed; it will run again", cause)))
    yield* sweep.pipe(Effect.zipRight(Effect.sleep(Duration.millis(every))), Effect.forever, Effect.forkScoped)
  })

export const layer = (retentionMs: number | undefined) => (retentionMs === undefined ? Layer.empty : Layer.scopedDiscard(run(retentionMs)))

/** "30d", "12h", "90m", "45s" (or a bare number of milliseconds) as milliseconds. */
export const parseDuration = (text: string): number | undefined => {
  const m = /^\s*(\d+)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  if (m === null) return undefined
  const n = Number(m[1])
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "ms") as "ms"]
  const ms = n * unit
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined
}
