import { Effect } from "effect"
import { EventLog } from "../../src/eventlog/EventLog"
import * as Store from "../../src/eventlog/Store"

/** A task's events as the store holds them, read beside the running server. */
export const storedEvents = (db: string, taskId: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(EventLog, (log) => log.read(taskId)).pipe(Effect.provide(Store.layer(db, { exclusive: false })))
    )
  )

export const storedTypes = async (db: string, taskId: string) => (await storedEvents(db, taskId)).map((e) => e.event.type)
