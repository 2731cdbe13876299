import { Duration, Effect } from "effect"
import { retryTransient } from "../eventlog/Transient.js"

/**
 * Periodic clean-ups of the store (retention, expired message keys): each removes rows in small batches,
 * a tenth of its period apart, for the life of the engine.
 */

/** Run `step`, which removes up to `batch` rows and says how many, until it removes fewer; the total. */
export const drain = <E extends { readonly cause?: unknown }, R>(step: Effect.Effect<number, E, R>, batch: number) =>
  Effect.gen(function* () {
    let total = 0
    for (;;) {
      // The writer's thread holds the write lock now and then: a busy lock is tried again.
      const n = yield* retryTransient(step)
      total += n
      if (n < batch) return total
      yield* Effect.yieldNow()
    }
  })

/** `sweep` now, then a tenth of `periodMs` apart (between one second and one hour); a failed one is logged and runs again. */
export const everyTenth = <E, R>(periodMs: number, what: string, sweep: Effect.Effect<void, E, R>) =>
  sweep.pipe(
    Effect.catchAllCause((cause) => Effect.logWarning(`${what} failed; it will run again`, cause)),
    Effect.zipRight(Effect.sleep(Duration.millis(Math.min(3_600_000, Math.max(1_000, Math.floor(periodMs / 10)))))),
    Effect.forever,
    Effect.forkScoped
  )
