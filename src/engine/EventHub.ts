import { Context, Effect, Layer, PubSub, type Queue, type Scope } from "effect"
import type { TaskEvent } from "../domain/TaskEvent"

/** A fact that has committed, as announced to live streams. */
export interface Committed {
  readonly taskId: string
  readonly contextId: string
  readonly version: number
  readonly event: TaskEvent
}

/**
 * In-process fan-out of committed events. Writers publish after commit, in
 * version order per task (they publish under the task's lock). It is only a
 * wake-up with a payload: streams fill any gap from the log by version, so
 * the log stays the source of truth.
 */
export class EventHub extends Context.Tag("a2a-ledger/EventHub")<
  EventHub,
  {
    readonly publish: (events: ReadonlyArray<Committed>) => Effect.Effect<void>
    readonly subscribe: Effect.Effect<Queue.Dequeue<Committed>, never, Scope.Scope>
  }
>() {}

export const layer = Layer.scoped(
  EventHub,
  Effect.gen(function* () {
    const hub = yield* Effect.acquireRelease(PubSub.unbounded<Committed>(), PubSub.shutdown)
    return EventHub.of({
      publish: (events) => PubSub.publishAll(hub, events).pipe(Effect.asVoid),
      subscribe: PubSub.subscribe(hub)
    })
  })
)
