import { Effect } from "effect"
import type { TaskEvent } from "../domain/TaskEvent.js"
import type { Committed } from "./EventHub.js"

/** What a blocking send's wait found: the commit that settled the task, or versions it did not hear. */
export type Settling =
  | { readonly _tag: "Settled"; readonly committed: Committed }
  /** Versions `from`…`to` were not heard before `next`: the log must say whether they settled the task. */
  | { readonly _tag: "Gap"; readonly from: number; readonly to: number; readonly next: Committed }

/**
 * A blocking send's wait for its task to settle (terminal or interrupted),
 * by callback on the hub: no queue and no fiber per send. It listens before
 * the send commits; `after` tells it the version the send committed, and
 * only later commits count, in version order.
 */
export class Settler {
  private last: number | undefined
  private heard: Array<Committed> = []
  private found: Settling | undefined
  private wake: ((found: Settling) => void) | undefined

  constructor(private readonly settles: (event: TaskEvent) => boolean) {}

  /** The hub's listener. */
  readonly hear = (c: Committed) => {
    if (this.last === undefined || this.found !== undefined) this.heard.push(c)
    else this.check(c)
  }

  /** Count the commits after `version` (again, after a gap: from just before `next`). */
  after(version: number) {
    this.last = version
    const heard = this.heard
    this.heard = []
    for (const c of heard) {
      if (this.found !== undefined) this.heard.push(c)
      else this.check(c)
    }
  }

  /**
   * The next finding; after a gap, call `after` before waiting again. No canceler: a waiter interrupted
   * meanwhile is resumed by its interruption, and a wake-up after that goes nowhere (a canceler would
   * cost steps on every blocking send).
   */
  readonly wait: Effect.Effect<Settling> = Effect.async<Settling>((resume) => {
    const found = this.take()
    if (found !== undefined) return resume(Effect.succeed(found))
    this.wake = (f) => {
      this.wake = undefined
      resume(Effect.succeed(this.take() ?? f))
    }
  })

  private take() {
    const found = this.found
    // A gap is handed over once: the commits heard after it wait in `heard` for `after`.
    if (found?._tag === "Gap") {
      this.found = undefined
      this.last = undefined
    }
    return found
  }

  private check(c: Committed) {
    const last = this.last!
    if (c.version <= last) return
    if (c.version !== last + 1) {
      this.heard.unshift(c)
      return this.finish({ _tag: "Gap", from: last + 1, to: c.version - 1, next: c })
    }
    this.last = c.version
    if (this.settles(c.event)) this.finish({ _tag: "Settled", committed: c })
  }

  private finish(found: Settling) {
    this.found = found
    this.wake?.(found)
  }
}
