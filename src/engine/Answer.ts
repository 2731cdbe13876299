import { Effect, type Exit } from "effect"

/**
 * A one-shot answer from one fiber to the one that waits for it, as a
 * Deferred would carry it, made for the send's hot path: completing it is a
 * plain call, and waiting registers no canceler. A waiter interrupted
 * meanwhile (a shutdown) is resumed by its interruption as from any wait;
 * the answer that comes later goes nowhere. That saves the steps a Deferred's
 * interruptible wait costs on every send.
 */
export class Answer<A, E> {
  private exit: Exit.Exit<A, E> | undefined
  private waiter: ((exit: Exit.Exit<A, E>) => void) | undefined

  /** Whether it has been answered. */
  get done(): boolean {
    return this.exit !== undefined
  }

  /** Answer; only the first answer counts. */
  complete(exit: Exit.Exit<A, E>): void {
    if (this.exit !== undefined) return
    this.exit = exit
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.(exit)
  }

  /** The answer, once there is one. One waiter at a time. */
  readonly await: Effect.Effect<A, E> = Effect.async<A, E>((resume) => {
    if (this.exit !== undefined) resume(this.exit)
    else this.waiter = resume
  })
}
