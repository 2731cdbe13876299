import { Clock, Effect, Layer } from "effect"
import { Pruner } from "../eventlog/Pruner.js"
import { drain, everyTenth } from "./Sweeper.js"

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
    const sweep = Effect.gen(function* () {
      const before = new Date((yield* Clock.currentTimeMillis) - retentionMs).toISOString()
      const total = yield* drain(pruner.prune(before, batch), batch)
      if (total > 0) yield* Effect.logInfo(`retention: removed ${total} finished task(s) last changed before ${before}`)
    })
    yield* everyTenth(retentionMs, "retention sweep", sweep)
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
