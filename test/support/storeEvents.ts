import { Effect } from "effect"
import { isJournalEvent } from "../../src/domain/TaskEvent"
import { EventLog, type LoggedEvent } from "../../src/eventlog/EventLog"
import * as Store from "../../src/eventlog/Store"

/** A task's events as the store holds them, read beside the running server. */
export const storedEvents = (db: string, taskId: string) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(EventLog, (log) => log.read(taskId)).pipe(Effect.provide(Store.layer(db, { exclusive: false })))))

export const storedTypes = async (db: string, taskId: string) => (await storedEvents(db, taskId)).map((e) => e.event.type)

/**
 * The versions of a task's events a client is shown (all but the step journal's), after `after`: what a
 * stream's event ids must be, once each and in order.
 */
export const shownVersions = async (db: string, taskId: string, after = 0) =>
  (await storedEvents(db, taskId)).filter((e) => e.version > after && !isJournalEvent(e.event)).map((e) => e.version)

/** The whole log in position order (for a store nobody writes to any more). */
export const allEvents = (db: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const log = yield* EventLog
        const out: Array<LoggedEvent> = []
        for (let after = 0; ; ) {
          const page = yield* log.readAll(after, 1000)
          if (page.length === 0) return out
          out.push(...page)
          after = page[page.length - 1]!.position
        }
      }).pipe(Effect.provide(Store.layer(db, { exclusive: false })))
    )
  )
