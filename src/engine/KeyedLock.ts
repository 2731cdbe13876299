import { Effect } from "effect"

/**
 * One mutex per key, created on demand and dropped when nobody holds or
 * waits for it. This is the "one writer per task" of the architecture:
 * every decision about a task happens under its lock.
 *
 * Ownership passes to waiters in arrival order: a worker emitting in a
 * tight loop cannot starve a CancelTask waiting for the same task. Waiting
 * is interruptible (cancel interrupts a worker that waits here); holding is
 * released however the holder ends.
 */
export interface KeyedLock {
  readonly withLock: (key: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Keys currently held or awaited (for diagnostics and tests). */
  readonly size: () => number
}

interface Entry {
  held: boolean
  readonly waiters: Array<() => void>
}

export const make = Effect.sync((): KeyedLock => {
  const locks = new Map<string, Entry>()

  const release = (key: string, entry: Entry) => {
    const next = entry.waiters.shift()
    if (next !== undefined)
      next() // hand over: the lock stays held
    else {
      entry.held = false
      locks.delete(key)
    }
  }

  const acquire = (key: string) =>
    Effect.async<Entry>((resume) => {
      let entry = locks.get(key)
      if (entry === undefined) locks.set(key, (entry = { held: false, waiters: [] }))
      if (!entry.held) {
        entry.held = true
        resume(Effect.succeed(entry))
        return
      }
      const e = entry
      let handedOver = false
      const waiter = () => {
        handedOver = true
        resume(Effect.succeed(e))
      }
      e.waiters.push(waiter)
      // Interrupted while waiting: leave the line, or pass on a lock handed over meanwhile.
      return Effect.sync(() => {
        if (handedOver) return release(key, e)
        const i = e.waiters.indexOf(waiter)
        if (i >= 0) e.waiters.splice(i, 1)
      })
    })

  // Held until the effect ends, however it ends (the effect itself stays interruptible).
  const holding = <A, E, R>(key: string, entry: Entry, effect: Effect.Effect<A, E, R>) =>
    Effect.matchCauseEffect(effect, {
      onFailure: (cause) => {
        release(key, entry)
        return Effect.failCause(cause)
      },
      onSuccess: (a) => {
        release(key, entry)
        return Effect.succeed(a)
      }
    })

  const withLock =
    (key: string) =>
    <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.uninterruptibleMask((restore) => {
        // Free, the usual case: taken at once, with no wait to set up.
        if (!locks.has(key)) {
          const entry: Entry = { held: true, waiters: [] }
          locks.set(key, entry)
          return holding(key, entry, restore(effect))
        }
        return Effect.flatMap(restore(acquire(key)), (entry) => holding(key, entry, restore(effect)))
      })

  return { withLock, size: () => locks.size }
})
