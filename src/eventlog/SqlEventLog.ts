import { Effect, Either, Layer, Option } from "effect"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { TaskEvent, VersionedEvent } from "../domain/TaskEvent.js"
import { EventSchemaVersions } from "../domain/TaskEvent.js"
import { decodeEvent, decodeMetadata, encodePayload } from "./codec.js"
import { EventLog, type EventMetadata, type LoggedEvent, type TailCursor, tailStart, type UnreadableEvent, VersionConflict } from "./EventLog.js"
import { SqlReader } from "./SqlReader.js"
import { storeService } from "./StoreFailure.js"

interface EventRow {
  readonly position: number | string
  readonly task_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  readonly payload: string
  readonly metadata: string
  readonly created_at: string
}

/** Versions are INTEGER columns (32-bit on PostgreSQL): a bound beyond that would not even parse there. */
const maxVersion = 2_147_483_647

const isUniqueViolation = (error: SqlError): boolean => {
  const cause = error.cause as { code?: string; message?: string } | undefined
  return cause?.code === "23505" || cause?.code === "SQLITE_CONSTRAINT_UNIQUE" || /UNIQUE constraint/i.test(cause?.message ?? "")
}

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const reader = Option.getOrElse(yield* Effect.serviceOption(SqlReader), () => sql)

  const toLogged = (row: EventRow) =>
    Either.flatMap(decodeEvent(row), (event) =>
      Either.map(
        decodeMetadata(row),
        (metadata): LoggedEvent => ({
          position: Number(row.position),
          taskId: row.task_id,
          version: Number(row.version),
          event,
          schemaVersion: Number(row.schema_version),
          metadata,
          createdAt: row.created_at
        })
      )
    )
  /** Rows decoded in one loop (no effect per row: a page of a scan holds tens of thousands); the first unreadable one fails. */
  const allLogged = (rows: ReadonlyArray<EventRow>): Either.Either<ReadonlyArray<LoggedEvent>, UnreadableEvent> => {
    const events: Array<LoggedEvent> = new Array(rows.length)
    for (let i = 0; i < rows.length; i++) {
      const logged = toLogged(rows[i]!)
      if (Either.isLeft(logged)) return Either.left(logged.left)
      events[i] = logged.right
    }
    return Either.right(events)
  }

  const version = (taskId: string) =>
    sql<{ v: number | string | null }>`SELECT MAX(version) AS v FROM a2a_events WHERE task_id = ${taskId}`.pipe(
      Effect.map((rows) => Number(rows[0]?.v ?? 0))
    )

  const append = (taskId: string, expectedVersion: number, events: ReadonlyArray<TaskEvent>, metadata: EventMetadata) =>
    sql
      .withTransaction(
        Effect.gen(function* () {
          const actual = yield* version(taskId)
          if (actual !== expectedVersion) {
            return yield* new VersionConflict({ taskId, expectedVersion, actualVersion: actual })
          }
          const rows = events.map((event, i) => ({
            task_id: taskId,
            version: expectedVersion + i + 1,
            type: event.type,
            schema_version: EventSchemaVersions[event.type],
            payload: encodePayload(event),
            metadata: JSON.stringify(metadata),
            created_at: event.at
          }))
          if (rows.length > 0) yield* sql`INSERT INTO a2a_events ${sql.insert(rows)}`
          return events.map((event, i): VersionedEvent => ({ taskId, version: expectedVersion + i + 1, event }))
        })
      )
      .pipe(
        Effect.catchTag("SqlError", (error) =>
          isUniqueViolation(error)
            ? Effect.flatMap(version(taskId), (actualVersion) => new VersionConflict({ taskId, expectedVersion, actualVersion }))
            : Effect.fail(error)
        )
      )

  const read = (taskId: string, options?: { readonly fromVersion?: number; readonly toVersion?: number }) =>
    reader<EventRow>`SELECT * FROM a2a_events WHERE task_id = ${taskId}
      AND version >= ${options?.fromVersion ?? 1} AND version <= ${Math.min(options?.toVersion ?? maxVersion, maxVersion)}
      ORDER BY version`.pipe(Effect.flatMap(allLogged))

  const readAll = (afterPosition: number, limit: number) =>
    reader<EventRow>`SELECT * FROM a2a_events WHERE position > ${afterPosition} ORDER BY position LIMIT ${limit}`.pipe(Effect.flatMap(allLogged))

  const tail = (cursor: TailCursor, limit: number) =>
    reader
      .onDialectOrElse({
        pg: () =>
          reader<EventRow & { readonly tx: string }>`SELECT position, task_id, version, type, schema_version, payload, metadata,
            created_at, tx::text AS tx FROM a2a_events
          WHERE (tx, position) > (${cursor.tx}::xid8, ${cursor.position})
            AND tx < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY tx, position LIMIT ${limit}`,
        orElse: () =>
          reader<EventRow & { readonly tx: string }>`SELECT *, '0' AS tx FROM a2a_events WHERE position > ${cursor.position}
          ORDER BY position LIMIT ${limit}`
      })
      .pipe(
        Effect.flatMap((rows) =>
          Effect.map(allLogged(rows), (events) => {
            const last = rows[rows.length - 1]
            return { events, cursor: last === undefined ? cursor : { tx: String(last.tx), position: Number(last.position) } }
          })
        )
      )

  const readTasks = (afterTaskId: string, lastTaskId: string) =>
    reader<Pick<EventRow, "task_id" | "version" | "type" | "schema_version" | "payload">>`SELECT task_id, version, type, schema_version,
        payload FROM a2a_events WHERE task_id > ${afterTaskId} AND task_id <= ${lastTaskId} ORDER BY task_id, version`.pipe(
      Effect.map((rows) => {
        const read = new Map<string, Either.Either<ReadonlyArray<VersionedEvent>, UnreadableEvent>>()
        let events: Array<VersionedEvent> = []
        // Rows come by task, in version order: a task's events end where the next task's begin.
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i]!
          const known = read.get(row.task_id)
          if (known !== undefined && Either.isLeft(known)) continue
          if (known === undefined) read.set(row.task_id, Either.right((events = [])))
          const decoded = decodeEvent(row)
          if (Either.isLeft(decoded)) read.set(row.task_id, Either.left(decoded.left))
          else events.push({ taskId: row.task_id, version: Number(row.version), event: decoded.right })
        }
        return read
      })
    )

  const taskIds = (afterTaskId: string, limit: number) =>
    reader<{ task_id: string }>`SELECT DISTINCT task_id FROM a2a_events WHERE task_id > ${afterTaskId}
      ORDER BY task_id LIMIT ${limit}`.pipe(Effect.map((rows) => rows.map((r) => r.task_id)))

  // The `count`-th newest committed event is the first the tail returns, so start just before it.
  const tailFromLast = (count: number) =>
    reader
      .onDialectOrElse({
        pg: () =>
          reader<{ tx: string; position: number | string }>`SELECT tx::text AS tx, position FROM a2a_events
          WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY tx DESC, position DESC LIMIT 1 OFFSET ${count}`,
        orElse: () =>
          reader<{ tx: string; position: number | string }>`SELECT '0' AS tx, position FROM a2a_events
          ORDER BY position DESC LIMIT 1 OFFSET ${count}`
      })
      .pipe(Effect.map((rows): TailCursor => (rows[0] === undefined ? tailStart : { tx: String(rows[0].tx), position: Number(rows[0].position) })))

  return EventLog.of(storeService({ append, read, readAll, readTasks, tail, taskIds, tailFromLast, version: (taskId: string) => version(taskId) }))
})

/** The SQL event log; needs a SqlClient on which the migrations already ran (see `Store`). */
export const layer = Layer.effect(EventLog, make)
