import { Effect } from "effect"
import { EventSchemaVersions, type TaskEvent, type TaskEventType } from "../domain/TaskEvent"
import { UnreadableEvent } from "./EventLog"

/**
 * Payload (de)serialisation. The payload is the event without its `type`,
 * which has its own column. Reading checks the schema version: every event
 * is at version 1 today; when a payload changes, its old versions are
 * upcast here so the domain only ever sees the current shape.
 */
export const encodePayload = (event: TaskEvent): string => {
  const { type: _type, ...payload } = event
  return JSON.stringify(payload)
}

export const decodeEvent = (row: {
  readonly task_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
  readonly payload: string
}): Effect.Effect<TaskEvent, UnreadableEvent> => {
  const fail = (reason: string) =>
    new UnreadableEvent({ taskId: row.task_id, version: Number(row.version), type: row.type, schemaVersion: Number(row.schema_version), reason })
  const current = EventSchemaVersions[row.type as TaskEventType]
  if (current === undefined) return Effect.fail(fail("unknown event type"))
  if (Number(row.schema_version) !== current) {
    return Effect.fail(fail(`schema version ${row.schema_version} is not readable by this build (current ${current})`))
  }
  return Effect.try({
    try: () => ({ type: row.type, ...(JSON.parse(row.payload) as object) }) as TaskEvent,
    catch: () => fail("payload is not valid JSON")
  })
}
