import { Either, ParseResult, Schema } from "effect"
import type { Message } from "../domain/Message.js"
import { TaskStateNumbers, TaskStates, type TaskState } from "../domain/TaskState.js"
import { camelCaseKeys } from "./normalize.js"
import { A2AError, Errors } from "./errors.js"

/**
 * A2A v1.0 request shapes as Effect Schema. Decoding ignores unknown
 * fields (spec §5.7) and reports the first problem with its field path,
 * so a client learns exactly what to fix.
 */
const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" }))
const Int32 = Schema.Number.pipe(Schema.int({ message: () => "must be an integer" }))
const NonNegativeInt = Int32.pipe(Schema.greaterThanOrEqualTo(0, { message: () => "must be 0 or greater" }))

const Base64 = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9+/_-]*={0,2}$/, { message: () => "must be base64 (the bytes of a raw part)" }))

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

/**
 * A client's message is the user's: ROLE_AGENT would put the client's words
 * in the agent's mouth in the task's history.
 */
const UserRole = Schema.transformOrFail(Schema.Unknown, Schema.Literal("ROLE_USER"), {
  strict: true,
  decode: (value, _, ast) =>
    value === "ROLE_USER" || value === 1
      ? ParseResult.succeed("ROLE_USER" as const)
      : ParseResult.fail(
          new ParseResult.Type(
            ast,
            value,
            value === "ROLE_AGENT" || value === 2
              ? "must be ROLE_USER: a client sends the user's messages, only the agent speaks as ROLE_AGENT"
              : `must be ROLE_USER (got ${JSON.stringify(value)})`
          )
        ),
  encode: ParseResult.succeed
})

/** An id a client chooses: not empty, and not only white space. */
const ClientId = NonEmpty.pipe(Schema.filter((s) => s.trim() !== "" || "must not be blank (it is only white space)"))

export const MessageSchema = Schema.Struct({
  messageId: ClientId,
  // Plain proto3 strings (no presence): an empty one means "not set", as ProtoJSON has it.
  contextId: Schema.optional(Schema.String),
  taskId: Schema.optional(Schema.String),
  role: UserRole,
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

const ConfigId = NonEmpty.pipe(Schema.maxLength(256, { message: () => "must be at most 256 characters" }))

const pushConfigFields = {
  tenant: Schema.optional(Schema.String),
  id: Schema.optional(ConfigId),
  url: NonEmpty,
  token: Schema.optional(HeaderValue),
  authentication: Schema.optional(AuthenticationInfo)
}

/** TaskPushNotificationConfig inline in SendMessage: the server binds it to the task. */
export const InlinePushConfig = Schema.Struct({ ...pushConfigFields, taskId: Schema.optional(Schema.String) })

export const CreateTaskPushNotificationConfigRequest = Schema.Struct({ ...pushConfigFields, taskId: NonEmpty })

export const TaskPushNotificationConfigRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  taskId: NonEmpty,
  id: NonEmpty
})

export const ListTaskPushNotificationConfigsRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  taskId: NonEmpty,
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
  id: NonEmpty,
  historyLength: Schema.optional(NonNegativeInt)
})

export const ListTasksRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  contextId: Schema.optional(Schema.String),
  status: Schema.optional(StatusFilter),
  pageSize: Schema.optional(Int32.pipe(Schema.between(1, 100, { message: () => "must be between 1 and 100" }))),
  pageToken: Schema.optional(Schema.String),
  historyLength: Schema.optional(NonNegativeInt),
  statusTimestampAfter: Schema.optional(Timestamp),
  includeArtifacts: Schema.optional(Schema.Boolean)
})

export const CancelTaskRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  id: NonEmpty,
  metadata: Schema.optional(JsonObject)
})

export const SubscribeToTaskRequest = Schema.Struct({
  tenant: Schema.optional(Schema.String),
  id: NonEmpty
})

const pathText = (path: ReadonlyArray<PropertyKey>) =>
  path.reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`), "")

/** What a schema wanted, in words: "an object", "a string", … (Effect prints the schema itself). */
const describeExpected = (expected: string): string => {
  const e = expected.replace(/ \| undefined$/, "").trim()
  if (e.startsWith("{") || e.startsWith("Record")) return "an object"
  if (e.startsWith("ReadonlyArray<") || e.startsWith("readonly [") || e.startsWith("minItems(") || e.startsWith("Array<")) return "an array"
  if (e === "string" || e.startsWith("minLength(") || e.startsWith("maxLength(") || e.startsWith("a string")) return "a string"
  if (e === "number" || e.startsWith("int") || e.startsWith("between(") || e.startsWith("greaterThan")) return "a number"
  if (e === "boolean") return "true or false"
  return "a value of another kind"
}

/** What the client sent instead, in words: its JSON type, and the value when it is short. */
const describeActual = (actual: string): string => {
  let value: unknown
  try {
    value = JSON.parse(actual)
  } catch {
    return actual.length <= 40 ? actual : "something else"
  }
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (typeof value === "object") return "an object"
  if (typeof value === "string") return value.length <= 40 ? `the string ${JSON.stringify(value)}` : "a string"
  if (typeof value === "number") return `the number ${value}`
  return String(value)
}

/** Effect's "Expected <schema>, actual <value>" as "must be an object (got the string "hi")". */
const humanize = (message: string): string => {
  const m = /^Expected ([\s\S]+), actual ([\s\S]+)$/.exec(message)
  return m === null ? message : `must be ${describeExpected(m[1]!)} (got ${describeActual(m[2]!)})`
}

/** The violations a message names; the response's BadRequest detail lists them all. */
const namedInMessage = 3

/** Decode `params` (already parsed JSON) or fail with -32602 naming each bad field and the rule it broke. */
export const decodeParams = <A, I>(schema: Schema.Schema<A, I>, params: unknown): Either.Either<A, A2AError> => {
  const result = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })(camelCaseKeys(params ?? {}))
  if (Either.isRight(result)) return Either.right(result.right)
  const issues = ParseResult.ArrayFormatter.formatErrorSync(result.left)
  // One violation per field: a transformation can report the same field twice.
  const byField = new Map<string, string>()
  for (const i of issues) {
    const field = pathText(i.path) || "params"
    if (!byField.has(field)) byField.set(field, i._tag === "Missing" ? "is required" : humanize(i.message))
  }
  // An optional object that is wrong inside also fails as "not undefined": the inner fields say more.
  for (const [field, description] of byField) {
    const deeper = [...byField.keys()].some((f) => f !== field && (f.startsWith(`${field}.`) || f.startsWith(`${field}[`)))
    if (deeper && description.endsWith("(got an object)")) byField.delete(field)
  }
  const violations = [...byField].map(([field, description]) => ({ field, description }))
  const named = violations.slice(0, namedInMessage).map((v) => `${v.field}: ${v.description}`)
  const more = violations.length > namedInMessage ? `; and ${violations.length - namedInMessage} more in error.data` : ""
  const first = violations[0]!
  return Either.left(new A2AError(Errors.InvalidParams, `Invalid parameters: ${named.join("; ")}${more}`, { field: first.field }, violations))
}

/** The decoded message as the domain type. */
export const toMessage = (m: Schema.Schema.Type<typeof MessageSchema>): Message => m as Message

export type ListStatusFilter = TaskState | undefined
export const statusFilter = (s: Schema.Schema.Type<typeof ListTasksRequest>["status"]): ListStatusFilter =>
  s === undefined || s === "TASK_STATE_UNSPECIFIED" ? undefined : s
