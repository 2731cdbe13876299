import { Either, Predicate } from "effect"
import { EventSchemaVersions, type TaskEvent, type TaskEventType } from "../domain/TaskEvent.js"
import { type EventMetadata, UnreadableEvent } from "./EventLog.js"
import { checkEvent, checkMetadata } from "./StoredSchema.js"

/**
 * Payload (de)serialisation. The payload is the event without its `type`,
 * which has its own column. Reading checks the schema version: payloads
 * written at an older version are upcast here, step by step, so the domain
 * only ever sees the current shape; a newer version than this build knows
 * is refused rather than misread. The result is checked against the event's
 * schema (StoredSchema), never cast.
 */
type Payload = Record<string, unknown>

/** `upcasts[type][v]` turns a version-v payload into a version-(v+1) one. */
const upcasts: { readonly [K in TaskEventType]?: Readonly<Record<number, (p: Payload) => Payload>> } = {
  // v2 added the owner (the authenticated principal); tasks from before had none.
  TaskSubmitted: { 1: (p) => ({ ...p, owner: "" }) }
}
export const encodePayload = (event: TaskEvent): string => {
  const { type: _type, ...payload } = event
  return JSON.stringify(payload)
}

/** The columns that name a stored event: where an unreadable one is reported. */
interface EventKey {
  readonly task_id: string
  readonly version: number
  readonly type: string
  readonly schema_version: number
}

const unreadable = (row: EventKey, reason: string) =>
  new UnreadableEvent({ taskId: row.task_id, version: Number(row.version), type: row.type, schemaVersion: Number(row.schema_version), reason })

/** A row's metadata column, checked (StoredSchema); a row whose metadata cannot be read is unreadable as a whole. */
export const decodeMetadata = (row: EventKey & { readonly metadata: string }): Either.Either<EventMetadata, UnreadableEvent> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(row.metadata)
  } catch {
    return Either.left(unreadable(row, "metadata is not valid JSON"))
  }
  return Either.mapLeft(checkMetadata(parsed), (problem) => unreadable(row, `metadata does not match its schema: ${problem}`))
}

export const decodeEvent = (row: EventKey & { readonly payload: string }): Either.Either<TaskEvent, UnreadableEvent> => {
  const fail = (reason: string) => unreadable(row, reason)
  const current = EventSchemaVersions[row.type as TaskEventType]
  if (current === undefined) return Either.left(fail("unknown event type"))
  const written = Number(row.schema_version)
  if (!Number.isInteger(written) || written < 1 || written > current) {
    return Either.left(fail(`schema version ${row.schema_version} is not readable by this build (current ${current})`))
  }
  const steps = upcasts[row.type as TaskEventType] ?? {}
  for (let v = written; v < current; v++) {
    if (steps[v] === undefined) return Either.left(fail(`no upcast from schema version ${v} of ${row.type}`))
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(row.payload)
  } catch {
    return Either.left(fail("payload is not valid JSON"))
  }
  if (!Predicate.isRecord(parsed)) return Either.left(fail("payload is not a JSON object"))
  let payload: Payload = parsed
  for (let v = written; v < current; v++) payload = steps[v]!(payload)
  return Either.mapLeft(checkEvent({ type: row.type, ...payload }), (problem) => fail(`payload does not match its schema: ${problem}`))
}
