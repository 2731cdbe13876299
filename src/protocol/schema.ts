import { Either, ParseResult, Schema } from "effect"
import type { Message } from "../domain/Message"
import { TaskStateNumbers, TaskStates, type TaskState } from "../domain/TaskState"
import { camelCaseKeys } from "./normalize"
import { A2AError, Errors } from "./errors"

/**
 * A2A v1.0 request shapes as Effect Schema. Decoding ignores unknown
 * fields (spec §5.7) and reports the first problem with its field path,
 * so a client learns exactly what to fix.
 */
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const NonEmpty = (what: string) =>
  Schema.String.pipe(Schema.minLength(1, { message: () => `${what} must be a non-empty string` }))
const Int32 = Schema.Number.pipe(Schema.int({ message: () => "must be an integer" }))
const NonNegativeInt = Int32.pipe(Schema.greaterThanOrEqualTo(0, { message: () => "must be 0 or greater" }))

const Base64 = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9+/_-]*={0,2}$/, { message: () => "must be base64 (the bytes of a raw part)" })
)

export const Part = Schema.Struct({
  text: Schema.optional(Schema.String),
  raw: Schema.optional(Base64),
  url: Schema.optional(Schema.String),
  data: Schema.optional(Schema.Unknown),
  filename: Schema.optional(Schema.String),
  mediaType: Schema.optional(Schema.String),
  metadata: Schema.optional(JsonObject)
}).pipe(
  Schema.filter((p) => {
    const n = ["text", "raw", "url", "data"].filter((k) => (p as Record<string, unknown>)[k] !== undefined).length
    return n === 1 || "a part must have exactly one of text, raw, url or data"
  })
)

/**
 * A proto enum: its name, or its number as ProtoJSON also allows. A wrong
 * value gets one message listing the accepted names.
 */
const protoEnum = <N extends string>(names: ReadonlyArray<N>, byNumber: Readonly<Record<number, N>>) => {
  const accepted = `must be one of ${names.join(", ")}`
  return Schema.transformOrFail(Schema.Unknown, Schema.Literal(...(names as [N, ...Array<N>])), {
    strict: true,
    decode: (value, _, ast) => {
      const name = typeof value === "number" ? byNumber[value] : value
      return typeof name === "string" && (names as ReadonlyArray<string>).includes(name)
        ? ParseResult.succeed(name as N)
        : ParseResult.fail(new ParseResult.Type(ast, value, `${accepted} (got ${JSON.stringify(value)})`))
    },
    encode: ParseResult.succeed
  })
}

const Role = protoEnum(["ROLE_USER", "ROLE_AGENT"], { 1: "ROLE_USER", 2: "ROLE_AGENT" })

export const MessageSchema = Schema.Struct({
  messageId: NonEmpty("messageId"),
  contextId: Schema.optional(Schema.String),
  taskId: Schema.optional(Schema.String),
  role: Role,
  parts: Schema.Array(Part).pipe(Schema.minItems(1, { message: () => "must hold at least one part" })),
  metadata: Schema.optional(JsonObject),
  extensions: Schema.optional(Schema.Array(Schema.String)),
  referenceTaskIds: Schema.optional(Schema.Array(Schema.String))
})

/** A ListTasks status filter: a state, or UNSPECIFIED for none. */
const StatusFilter = protoEnum(["TASK_STATE_UNSPECIFIED", ...TaskStates], { 0: "TASK_STATE_UNSPECIFIED", ...TaskStateNumbers })

const Timestamp = Schema.String.pipe(
  Schema.filter((s) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)), {
    message: () => "must be an ISO-8601 timestamp such as 2026-01-01T00:00:00Z"
  })
)

/** Values that travel in webhook headers: visible ASCII and spaces, so they cannot inject a header. */
const HeaderValue = Schema.String.pipe(
  Schema.maxLength(4096, { message: () => "must be at most 4096 characters" }),
  Schema.pattern(/^[\x20-\x7e]*$/, { message: () => "must be printable ASCII (it is sent in an HTTP header)" })
)

const AuthenticationInfo = Schema.Struct({
  scheme: Schema.String.pipe(
    Schema.pattern(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: () => "must be an HTTP authentication scheme such as Bearer or Basic" })
  ),
  credentials: Schema.optional(HeaderValue)
})

const ConfigId = NonEmpty("id").pipe(Schema.maxLength(256, { message: () => "must be at most 256 characters" }))

const pushConfigFields = {
  tenant: Schema.optional(Schema.String),
  id: Schema.optional(ConfigId),
  url: NonEmpty("url"),
  token: Schema.optional(HeaderValue),
  authentication: Schema.optional(AuthenticationInfo)
}

/** TaskPushNotificationConfig inline in SendMessage: the server binds it to the task. */
export const InlinePushConfig = Schema.Struct({ ...pushConfigFields, taskId: Schema.optional(Schema.String) })

export const CreateTaskPushNotificationConfigRequest = Schema.Struct({ ...pushConfigFields, taskId: NonEmpty("taskId") })

export const TaskPushNotificationConfigRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  taskId: NonEmpty("taskId"),
  id: NonEmpty("id")
})

export const ListTaskPushNotificationConfigsRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  taskId: NonEmpty("taskId"),
  pageSize: Schema.optional(Int32.pipe(Schema.between(1, 100, { message: () => "must be between 1 and 100" }))),
  pageToken: Schema.optional(Schema.String)
})

export const SendMessageRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  message: MessageSchema,
  configuration: Schema.optional(
    Schema.Struct({
      acceptedOutputModes: Schema.optional(Schema.Array(Schema.String)),
      taskPushNotificationConfig: Schema.optional(InlinePushConfig),
      historyLength: Schema.optional(NonNegativeInt),
      returnImmediately: Schema.optional(Schema.Boolean)
    })
  ),
  metadata: Schema.optional(JsonObject)
})

export const GetTaskRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  id: NonEmpty("id"),
  historyLength: Schema.optional(NonNegativeInt)
})

export const ListTasksRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  contextId: Schema.optional(Schema.String),
  status: Schema.optional(StatusFilter),
  pageSize: Schema.optional(
    Int32.pipe(Schema.between(1, 100, { message: () => "must be between 1 and 100" }))
  ),
  pageToken: Schema.optional(Schema.String),
  historyLength: Schema.optional(NonNegativeInt),
  statusTimestampAfter: Schema.optional(Timestamp),
  includeArtifacts: Schema.optional(Schema.Boolean)
})

export const CancelTaskRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  id: NonEmpty("id"),
  metadata: Schema.optional(JsonObject)
})

export const SubscribeToTaskRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  id: NonEmpty("id")
})

const pathText = (path: ReadonlyArray<PropertyKey>) =>
  path.reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`), "")

/** Decode `params` (already parsed JSON) or fail with -32602 naming the first bad field. */
export const decodeParams = <A, I>(schema: Schema.Schema<A, I>, params: unknown): Either.Either<A, A2AError> => {
  const result = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })(camelCaseKeys(params ?? {}))
  if (Either.isRight(result)) return Either.right(result.right)
  const issues = ParseResult.ArrayFormatter.formatErrorSync(result.left)
  // One violation per field: a transformation can report the same field twice.
  const byField = new Map<string, string>()
  for (const i of issues) {
    const field = pathText(i.path) || "params"
    if (!byField.has(field)) byField.set(field, i._tag === "Missing" ? "is required" : i.message)
  }
  const violations = [...byField].map(([field, description]) => ({ field, description }))
  const first = violations[0]!
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : ""
  return Either.left(
    new A2AError(Errors.InvalidParams, `Invalid parameters: ${first.field}: ${first.description}${more}`, { field: first.field }, violations)
  )
}

/** The decoded message as the domain type. */
export const toMessage = (m: Schema.Schema.Type<typeof MessageSchema>): Message => m as Message

export type ListStatusFilter = TaskState | undefined
export const statusFilter = (s: Schema.Schema.Type<typeof ListTasksRequest>["status"]): ListStatusFilter =>
  s === undefined || s === "TASK_STATE_UNSPECIFIED" ? undefined : s
