import { Effect } from "effect"

/**
 * One mutex per key, created on demand and dropped when nobody holds or
 * waits for it. This is the "one writer per task" of the architecture:
 * every decision about a task happens under its lock.
 */
export interface KeyedLock {
  readonly withLock: (key: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Keys currently held or awaited (for diagnostics). */
  readonly size: () => number
}

export const make = Effect.sync((): KeyedLock => {
  const locks = new Map<string, { readonly semaphore: Effect.Semaphore; refs: number }>()
  const withLock = (key: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        let entry = locks.get(key)
        if (entry === undefined) {
          entry = { semaphore: Effect.unsafeMakeSemaphore(1), refs: 0 }
          locks.set(key, entry)
        }
        entry.refs++
        return entry
      }),
      (entry) => entry.semaphore.withPermits(1)(effect),
      (entry) =>
        Effect.sync(() => {
          if (--entry.refs === 0) locks.delete(key)
        })
    )
  return { withLock, size: () => locks.size }
})
