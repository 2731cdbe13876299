import { Effect, Queue } from "effect"

/**
 * A supervisor's free workers, counted rather than held in a semaphore: they are taken synchronously (a
 * hand-off takes one only when one is free, and never waits), and the one loop that takes them as they come
 * free (the dispatcher, the claim loop) waits on `whenFree`, which looks again after each release.
 */
export interface WorkerSlots {
  /** How many workers are free now. */
  readonly free: () => number
  /** Take `n` free workers (no more than `free()`). */
  readonly take: (n: number) => void
  /** Give back `n` workers (and wake `whenFree`). */
  readonly release: (n: number) => void
  /** Until at least one worker is free. */
  readonly whenFree: Effect.Effect<void>
}

export const make = (workers: number): Effect.Effect<WorkerSlots> =>
  Effect.map(Queue.sliding<void>(1), (freed) => {
    let free = workers
    const whenFree: Effect.Effect<void> = Effect.suspend(() => (free > 0 ? Effect.void : Effect.zipRight(Queue.take(freed), whenFree)))
    return {
      free: () => free,
      take: (n) => void (free -= n),
      release: (n) => {
        free += n
        // Refused when a wake-up is already queued: that one serves.
        Queue.unsafeOffer(freed, undefined)
      },
      whenFree
    }
  })
