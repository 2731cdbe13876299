import { Either, ParseResult, Schema } from "effect"
import { extend } from "../domain/extend.js"
import type { Artifact, JsonValue, Message, Part } from "../domain/Message.js"
import type { TaskSnapshot } from "../domain/Task.js"
import type { TaskEvent, TaskEventType } from "../domain/TaskEvent.js"
import { TaskStates } from "../domain/TaskState.js"
import type { Task } from "../domain/TaskView.js"
import type { MachineContext } from "../domain/taskMachine.js"
import type { EventMetadata } from "./EventLog.js"
import type { TaskRow } from "./SqliteCommits.js"
import { compiledGuard } from "./compiledGuard.js"

/**
 * What the store holds, as Effect Schema: event payloads, their metadata, and the read model's rows and
 * snapshots. Whatever is read back from the database goes through these (codec.ts, SqlEventLog,
 * TaskReadModel), and is typed by them, not cast. A row that a bug, a hand edit or another build wrote in
 * another shape is reported where it is read, naming the field, instead of surfacing later as an
 * `undefined` deep in the engine or in a client's answer.
 *
 * These are the stored shapes, looser than a client's input (protocol/schema.ts): an agent's message is
 * stored as ROLE_AGENT, a part is whatever the agent emitted. The JSON ones check and do not transform:
 * the value read is the value checked (`Schema.is`, compiled: compiledGuard.ts), so a read allocates
 * nothing more and keeps its keys' order, which `verify` compares as text.
 */

/**
 * A JSON value inside a part or metadata (an agent's `data`, a client's metadata). What is checked here
 * came out of JSON.parse, so it is JSON by construction: walking it would check nothing and cost in
 * proportion to the agent's data.
 */
const Json = Schema.declare((_: unknown): _ is JsonValue => true, {
  identifier: "JsonValue",
  arbitrary: () => (fc) => fc.json().map((text): JsonValue => JSON.parse(text))
})
const Metadata = Schema.Record({ key: Schema.String, value: Json })

const PartSchema = Schema.Struct({
  text: Schema.optional(Schema.String),
  raw: Schema.optional(Schema.String),
  url: Schema.optional(Schema.String),
  data: Schema.optional(Json),
  filename: Schema.optional(Schema.String),
  mediaType: Schema.optional(Schema.String),
  metadata: Schema.optional(Metadata)
}).annotations({ identifier: "Part" })

export const MessageSchema = Schema.Struct({
  messageId: Schema.String,
  contextId: Schema.optional(Schema.String),
  taskId: Schema.optional(Schema.String),
  role: Schema.Literal("ROLE_USER", "ROLE_AGENT"),
  parts: Schema.Array(PartSchema),
  metadata: Schema.optional(Metadata),
  extensions: Schema.optional(Schema.Array(Schema.String)),
  referenceTaskIds: Schema.optional(Schema.Array(Schema.String))
}).annotations({ identifier: "Message" })

export const ArtifactSchema = Schema.Struct({
  artifactId: Schema.String,
  name: Schema.optional(Schema.String),
  description: Schema.optional(Schema.String),
  parts: Schema.Array(PartSchema),
  metadata: Schema.optional(Metadata),
  extensions: Schema.optional(Schema.Array(Schema.String))
}).annotations({ identifier: "Artifact" })

export const State = Schema.Literal(...TaskStates)
const Version = Schema.Number.pipe(Schema.int(), Schema.greaterThanOrEqualTo(1))

const TaskSchema = Schema.Struct({
  id: Schema.String,
  contextId: Schema.String,
  status: Schema.Struct({ state: State, message: Schema.optional(MessageSchema), timestamp: Schema.String }),
  artifacts: Schema.Array(ArtifactSchema),
  history: Schema.Array(MessageSchema),
  metadata: Schema.optional(Metadata)
}).annotations({ identifier: "Task" })

const MachineSchema = Schema.Struct({
  artifacts: Schema.Record({ key: Schema.String, value: Schema.Boolean }),
  steps: Schema.optional(Schema.Number),
  timer: Schema.optional(Schema.Struct({ sequence: Schema.Number, dueAt: Schema.String }))
}).annotations({
  identifier: "MachineContext"
})

const snapshotFields = {
  version: Version,
  machine: MachineSchema,
  tenant: Schema.String,
  owner: Schema.String,
  createdAt: Schema.String,
  turnInput: Schema.optional(MessageSchema),
  traceparent: Schema.optional(Schema.String),
  detached: Schema.optional(Schema.Literal(true)),
  state: State,
  task: TaskSchema
}

/** A read-model row's snapshot as stored: whole, or detached (its history and artifacts left out, and `detached: true`). */
export const StoredSnapshot = Schema.Struct(snapshotFields)

/** A snapshot stored before owners existed: it has none (it belongs to the anonymous principal, ""). */
const OwnerlessSnapshot = Schema.Struct({ ...snapshotFields, owner: Schema.optional(Schema.String) })

const event = <K extends TaskEventType, F extends Schema.Struct.Fields>(type: K, fields: F) =>
  Schema.Struct({ type: Schema.Literal(type), at: Schema.String, ...fields })

/** An event (its payload, with `type` from its own column) in its type's current schema version. */
export const TaskEventSchema = Schema.Union(
  event("TaskSubmitted", {
    taskId: Schema.String,
    contextId: Schema.String,
    tenant: Schema.String,
    owner: Schema.String,
    message: MessageSchema,
    traceparent: Schema.optional(Schema.String)
  }),
  event("TaskStarted", { instanceId: Schema.String, leaseEpoch: Schema.optional(Schema.Number) }),
  event("StatusMessageAdded", { message: MessageSchema }),
  event("ArtifactAdded", { artifact: ArtifactSchema, append: Schema.Boolean, lastChunk: Schema.Boolean }),
  event("InputRequested", { message: MessageSchema }),
  event("AuthRequested", { message: MessageSchema }),
  event("InputProvided", { message: MessageSchema, traceparent: Schema.optional(Schema.String) }),
  event("TaskRequeued", { reason: Schema.String }),
  event("TaskCompleted", { message: Schema.optional(MessageSchema) }),
  event("TaskFailed", { reason: Schema.String, message: MessageSchema }),
  event("TaskCanceled", { reason: Schema.optional(Schema.String) }),
  event("TaskRejected", { reason: Schema.String, message: MessageSchema }),
  event("StepCompleted", { turn: Schema.Number, sequence: Schema.Number, name: Schema.String, result: Schema.optional(Json) }),
  event("StepAttemptFailed", {
    turn: Schema.Number,
    sequence: Schema.Number,
    name: Schema.String,
    attempt: Schema.Number,
    error: Schema.String,
    retryAt: Schema.optional(Schema.String)
  }),
  event("StepsReset", { turn: Schema.Number, reason: Schema.String }),
  event("TimerStarted", { turn: Schema.Number, sequence: Schema.Number, dueAt: Schema.String }),
  event("TimerFired", { sequence: Schema.Number, instanceId: Schema.optional(Schema.String), leaseEpoch: Schema.optional(Schema.Number) }),
  event("DelegationStarted", {
    turn: Schema.Number,
    sequence: Schema.Number,
    attempt: Schema.Number,
    url: Schema.String,
    remoteTaskId: Schema.String,
    remoteContextId: Schema.String
  })
)

export const EventMetadataSchema = Schema.Struct({ instanceId: Schema.String })

/** PostgreSQL's driver hands BIGINT (and sometimes INTEGER) columns back as strings. */
const IntColumn = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(Schema.compose(Schema.Int))

/** A read-model row with its columns (a scan's page, `verify`'s comparison). */
const TaskRowSchema = Schema.Struct({
  task_id: Schema.String,
  tenant: Schema.String,
  owner: Schema.String,
  context_id: Schema.String,
  state: State,
  version: IntColumn,
  status_timestamp: Schema.String,
  created_at: Schema.String,
  snapshot: Schema.String,
  wake_at: Schema.NullOr(IntColumn),
  priority: IntColumn
})

// The schemas describe the domain's own types: a change to either that the other does not follow fails here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never
const _sameShapes: [
  Same<Schema.Schema.Type<typeof PartSchema>, Part>,
  Same<Schema.Schema.Type<typeof MessageSchema>, Message>,
  Same<Schema.Schema.Type<typeof ArtifactSchema>, Artifact>,
  Same<Schema.Schema.Type<typeof TaskSchema>, Task>,
  Same<Schema.Schema.Type<typeof MachineSchema>, MachineContext>,
  Same<Schema.Schema.Type<typeof StoredSnapshot>, TaskSnapshot>,
  Same<Schema.Schema.Type<typeof TaskEventSchema>, TaskEvent>,
  Same<Schema.Schema.Type<typeof EventMetadataSchema>, EventMetadata>,
  Same<Schema.Schema.Type<typeof TaskRowSchema>, TaskRow>
] = [true, true, true, true, true, true, true, true, true]
void _sameShapes

/** A schema's first complaint, as "field.path: what is wrong". */
export const firstProblem = (issue: ParseResult.ParseIssue): string => {
  const [first] = ParseResult.ArrayFormatter.formatIssueSync(issue)
  if (first === undefined) return "it does not match its schema"
  return first.path.length === 0 ? first.message : `${first.path.join(".")}: ${first.message}`
}

/** Why a stored value is not what its schema says: the first problem, with its path. */
const problemOf = (schema: Schema.Schema.AnyNoContext, value: unknown): string =>
  Either.match(ParseResult.validateEither(schema)(value, { errors: "first" }), {
    onLeft: firstProblem,
    onRight: () => "it does not match its schema"
  })

const checker = <A, I>(schema: Schema.Schema<A, I, never>) => {
  const is = compiledGuard(schema)
  return (value: unknown): Either.Either<A, string> => (is(value) ? Either.right(value) : Either.left(problemOf(schema, value)))
}

const isSnapshot = compiledGuard(StoredSnapshot)
const isOwnerless = compiledGuard(OwnerlessSnapshot)

/** A snapshot as stored (parsed JSON), checked; one stored before owners existed gets the owner "". */
export const checkSnapshot = (value: unknown): Either.Either<TaskSnapshot, string> => {
  if (isSnapshot(value)) return Either.right(value)
  if (isOwnerless(value)) return Either.right(extend(value, { owner: "" }))
  return Either.left(problemOf(StoredSnapshot, value))
}

/** An event (its payload with its `type`), checked against its type's schema (the union picks it by `type`). */
export const checkEvent: (value: unknown) => Either.Either<TaskEvent, string> = checker(TaskEventSchema)

export const checkMetadata: (value: unknown) => Either.Either<EventMetadata, string> = checker(EventMetadataSchema)

const isTaskRow = compiledGuard(Schema.typeSchema(TaskRowSchema))
const decodeRow = Schema.decodeUnknownEither(TaskRowSchema)

/**
 * A read-model row as the driver returns it, its integer columns made numbers. SQLite's rows already have
 * numbers: they are checked only (a scan reads a row per task); PostgreSQL's strings are decoded.
 */
export const decodeTaskRow = (row: unknown): Either.Either<TaskRow, string> =>
  isTaskRow(row) ? Either.right(row) : Either.mapLeft(decodeRow(row, { errors: "first" }), (error) => firstProblem(error.issue))
