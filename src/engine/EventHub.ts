import { Context, Effect, Layer, Queue, type Scope } from "effect"
import type { TaskSnapshot } from "../domain/Task.js"
import type { TaskEvent } from "../domain/TaskEvent.js"

/** A fact that has committed, as announced to live streams. */
export interface Committed {
  readonly taskId: string
  readonly contextId: string
  readonly version: number
  readonly event: TaskEvent
  /** On the last event of a commit: the task as the commit left it (so a waiter need not read it). */
  readonly snapshot?: TaskSnapshot
}

/** A commit as `listenAll` tells it: the event's type when this process has it. */
export interface Noticed {
  readonly taskId: string
  readonly version: number
  readonly type?: string
}

/**
 * In-process fan-out of committed events, per task: a subscriber receives
 * only its task's events, so the cost of a publish is the number of
 * streams open on that task. Writers publish after commit, in version
 * order (they publish under the task's lock). It is only a wake-up with a
 * payload: streams fill any gap from the log by version, so the log stays
 * the source of truth.
 *
 * Each subscription keeps at most `capacity` unread events and drops the
 * oldest beyond that: a client that stops reading costs bounded memory, and
 * when it reads again the version gap is filled from the log.
 */
export class EventHub extends Context.Tag("a2a-ledger/EventHub")<
  EventHub,
  {
    readonly publish: (events: ReadonlyArray<Committed>) => Effect.Effect<void>
    /** This task's events from now on, until the scope closes. */
    readonly subscribe: (taskId: string) => Effect.Effect<Queue.Dequeue<Committed>, never, Scope.Scope>
    /**
     * Call `listener` with each of this task's events from now on, synchronously as they are
     * published, until the returned function is called. No queue: the listener keeps what it needs.
     */
    readonly listen: (taskId: string, listener: (event: Committed) => void) => () => void
    /**
     * Call `listener` with every commit published here, of any task, and every commit another process
     * announced (`noticed`: its event type unknown here), until the returned function is called (the
     * operator's board: its live list). Synchronous, as `listen`.
     */
    readonly listenAll: (listener: (commit: Noticed) => void) => () => void
    /** Another process committed this version of a task (a shared store's notice), read or not. */
    readonly noticed: (taskId: string, version: number) => void
    /** Open subscriptions (for diagnostics and tests). */
    readonly subscriptions: Effect.Effect<number>
    /** The tasks someone listens to right now. */
    readonly watched: Effect.Effect<ReadonlyArray<string>>
  }
>() {}

export const defaultCapacity = 1024

export const make = (capacity: number = defaultCapacity) =>
  Effect.sync(() => {
    const topics = new Map<string, Set<Queue.Queue<Committed>>>()
    const listeners = new Map<string, Set<(event: Committed) => void>>()
    let count = 0

    const everything = new Set<(commit: Noticed) => void>()
    const tellEverything = (commit: Noticed) => {
      for (const l of everything) {
        try {
          l(commit)
        } catch {}
      }
    }
    const tell = (e: Committed) => {
      if (everything.size > 0) tellEverything({ taskId: e.taskId, version: e.version, type: e.event.type })
      const ls = listeners.get(e.taskId)
      if (ls === undefined) return
      for (const l of ls) {
        try {
          l(e)
        } catch {
          // a listener's fault is its own: the writer's publish goes on
        }
      }
    }

    // Queue.offer, not unsafeOffer: only offer applies the sliding strategy (drop the oldest).
    // Dropping the newest instead would lose the terminal event and hang the stream.
    // Listeners are told at once; only a task with subscribers costs any runtime steps (most have none).
    const publish = (events: ReadonlyArray<Committed>) =>
      Effect.suspend(() => {
        let offers: Array<Effect.Effect<boolean>> | undefined
        for (const e of events) {
          tell(e)
          const queues = topics.get(e.taskId)
          if (queues !== undefined) for (const q of queues) (offers ??= []).push(Queue.offer(q, e))
        }
        return offers === undefined ? Effect.void : Effect.all(offers, { discard: true })
      })

    const subscribe = (taskId: string) =>
      Effect.acquireRelease(
        Effect.map(Queue.sliding<Committed>(capacity), (q) => {
          let queues = topics.get(taskId)
          if (queues === undefined) topics.set(taskId, (queues = new Set()))
          queues.add(q)
          count++
          return q
        }),
        (q) =>
          Effect.zipRight(
            Effect.sync(() => {
              const queues = topics.get(taskId)
              queues?.delete(q)
              if (queues?.size === 0) topics.delete(taskId)
              count--
            }),
            Queue.shutdown(q)
          )
      )

    const listen = (taskId: string, listener: (event: Committed) => void) => {
      let ls = listeners.get(taskId)
      if (ls === undefined) listeners.set(taskId, (ls = new Set()))
      ls.add(listener)
      count++
      let done = false
      return () => {
        if (done) return
        done = true
        const now = listeners.get(taskId)
        now?.delete(listener)
        if (now?.size === 0) listeners.delete(taskId)
        count--
      }
    }

    const listenAll = (listener: (commit: Noticed) => void) => {
      everything.add(listener)
      return () => void everything.delete(listener)
    }
    const noticed = (taskId: string, version: number) => {
      if (everything.size > 0) tellEverything({ taskId, version })
    }

    return EventHub.of({
      publish,
      subscribe,
      listen,
      listenAll,
      noticed,
      subscriptions: Effect.sync(() => count),
      watched: Effect.sync(() => [...new Set([...topics.keys(), ...listeners.keys()])])
    })
  })

export const layer = (capacity: number = defaultCapacity) => Layer.effect(EventHub, make(capacity))
