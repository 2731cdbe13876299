import { Effect, Option } from "effect"
import { fold } from "../../src/domain/Task"
import type { TaskEvent } from "../../src/domain/TaskEvent"
import { EventLog } from "../../src/eventlog/EventLog"
import * as Store from "../../src/eventlog/Store"
import { TaskReadModel } from "../../src/projections/TaskReadModel"

/**
 * Invariant 4, checked from the outside: refold every task's events (each
 * one legal under the machine, or `fold` throws) and compare the result with
 * the stored read-model row. Opens the store as a reader, so it can run
 * beside a live server. Returns the number of tasks checked.
 */
export const verifyStore = (db: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const log = yield* EventLog
        const readModel = yield* TaskReadModel
        const streams = new Map<string, Array<TaskEvent>>()
        let position = 0
        for (;;) {
          const page = yield* log.readAll(position, 1000)
          if (page.length === 0) break
          for (const e of page) {
            const events = streams.get(e.taskId) ?? []
            if (e.version !== events.length + 1) throw new Error(`task ${e.taskId}: version ${e.version} after ${events.length}`)
            events.push(e.event)
            streams.set(e.taskId, events)
          }
          position = page[page.length - 1]!.position
        }
        for (const [taskId, events] of streams) {
          const stored = yield* readModel.get(taskId)
          if (Option.isNone(stored)) throw new Error(`task ${taskId} has events but no read-model row`)
          const folded = JSON.parse(JSON.stringify(fold(events)))
          if (JSON.stringify(folded) !== JSON.stringify(stored.value)) {
            throw new Error(`task ${taskId}: read model differs from the fold of its log`)
          }
        }
        return streams.size
      }).pipe(Effect.provide(Store.layer(db, { exclusive: false })))
    )
  )
