import { Effect, type Exit } from "effect"

/**
 * A one-shot answer from one fiber to those that wait for it, as a Deferred
 * would carry it, made for the hot paths: completing it is a plain call, and
 * waiting registers no canceler. A waiter interrupted meanwhile (a shutdown, a
 * timeout) is resumed by its interruption as from any wait; the answer that
 * comes later goes nowhere. That saves the steps a Deferred's interruptible
 * wait costs, and making one: Effect 3's `Deferred.unsafeMake` spreads a
 * prototype into a new literal with a method of its own, about 5 µs each
 * (docs/performance.md, step 39), where this is a plain object.
 */
export class Answer<A, E> {
  private exit: Exit.Exit<A, E> | undefined
  private waiter: ((exit: Exit.Exit<A, E>) => void) | undefined
  // Waiters after the first (rare: most answers have one).
  private more: Array<(exit: Exit.Exit<A, E>) => void> | undefined

  /** Whether it has been answered. */
  get done(): boolean {
    return this.exit !== undefined
  }

  /** Answer; only the first answer counts. */
  complete(exit: Exit.Exit<A, E>): void {
    if (this.exit !== undefined) return
    this.exit = exit
    const waiter = this.waiter
    const more = this.more
    this.waiter = undefined
    this.more = undefined
    waiter?.(exit)
    if (more !== undefined) for (const w of more) w(exit)
  }

  /** The answer, once there is one (any number of waiters). */
  readonly await: Effect.Effect<A, E> = Effect.async<A, E>((resume) => {
    if (this.exit !== undefined) resume(this.exit)
    else if (this.waiter === undefined) this.waiter = resume
    else (this.more ??= []).push(resume)
  })
}
