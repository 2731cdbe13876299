import { Cause, Deferred, Effect, Either, Option, Stream } from "effect"
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { A2AError, errorDetails, Errors } from "../protocol/errors"
import { jsonDepth } from "../protocol/normalize"
import { methods } from "./methods"
import { ShuttingDown } from "./Lifecycle"
import { ServerConfig } from "./ServerConfig"
import * as Sse from "./Sse"

/**
 * The JSON-RPC 2.0 binding at `POST /a2a`: read the body within the size
 * limit, check the envelope and the A2A-Version, dispatch to a method, and
 * answer with a JSON-RPC response or an SSE stream of them. Every error is
 * a JSON-RPC error object; no stack trace ever reaches the client.
 */
type Id = string | number | null

/** Far deeper than any A2A message needs; bounds the work of walking a request. */
const maxJsonDepth = 64

const errorBody = (id: Id, error: A2AError) => ({
  jsonrpc: "2.0",
  id,
  error: { code: error.spec.code, message: error.message, data: errorDetails(error) }
})

const respondError = (id: Id, error: A2AError, status = 200) => HttpServerResponse.unsafeJson(errorBody(id, error), { status })

const invalidRequest = (message: string) => new A2AError(Errors.InvalidRequest, `Invalid request: ${message}`)

/** `A2A-Version`: absent or 1.0 is served; anything else is refused (see docs/protocol.md). */
const checkVersion = (request: HttpServerRequest.HttpServerRequest): A2AError | undefined => {
  const fromQuery = new URL(request.url, "http://x").searchParams.get("A2A-Version") ?? undefined
  const version = (request.headers["a2a-version"] ?? fromQuery ?? "").trim()
  if (version === "" || /^1\.0(\.\d+)?$/.test(version)) return undefined
  return new A2AError(
    Errors.VersionNotSupported,
    `A2A-Version ${version} is not supported; this server speaks 1.0`,
    { requestedVersion: version, supportedVersions: "1.0" }
  )
}

/**
 * JSON-RPC bodies are JSON. An explicit other media type gets -32005. Absent,
 * any JSON type (application/json, application/a2a+json, …), and curl's
 * default for `-d` (application/x-www-form-urlencoded) are read as JSON.
 */
const checkContentType = (request: HttpServerRequest.HttpServerRequest): A2AError | undefined => {
  const raw = request.headers["content-type"]
  if (raw === undefined || raw.trim() === "") return undefined
  const type = raw.split(";")[0]!.trim().toLowerCase()
  if (type === "application/json" || type.endsWith("+json") || type === "application/x-www-form-urlencoded") return undefined
  return new A2AError(
    Errors.ContentTypeNotSupported,
    `Content-Type ${type} is not supported for JSON-RPC; send application/json`,
    { contentType: type }
  )
}

const readBody = (request: HttpServerRequest.HttpServerRequest, limit: number) => {
  const tooLarge = (size?: number) =>
    new A2AError(
      Errors.InvalidRequest,
      `Request body ${size !== undefined ? `of ${size} bytes ` : ""}exceeds the limit of ${limit} bytes (--max-body-bytes)`,
      { limitBytes: String(limit) }
    )
  const declared = Number(request.headers["content-length"] ?? NaN)
  if (Number.isFinite(declared) && declared > limit) return Effect.fail(tooLarge(declared))
  return request.text.pipe(
    HttpServerRequest.withMaxBodySize(Option.some(limit)),
    Effect.mapError(() => tooLarge())
  )
}

const parseEnvelope = (text: string): { id: Id; method: string; params: unknown } | { id: Id; error: A2AError } => {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (e) {
    return { id: null, error: new A2AError(Errors.ParseError, `Invalid JSON payload: ${(e as Error).message}`) }
  }
  if (jsonDepth(body) > maxJsonDepth) {
    return { id: null, error: invalidRequest(`JSON is nested deeper than ${maxJsonDepth} levels`) }
  }
  if (Array.isArray(body)) return { id: null, error: invalidRequest("batch requests are not supported; send one request per call") }
  if (body === null || typeof body !== "object") return { id: null, error: invalidRequest("the body must be a JSON-RPC 2.0 request object") }
  const env = body as Record<string, unknown>
  const rawId = env.id
  const idOk = typeof rawId === "string" || (typeof rawId === "number" && Number.isFinite(rawId)) || rawId === null
  const id: Id = idOk ? (rawId as Id) : null
  if (env.jsonrpc !== "2.0") return { id, error: invalidRequest('"jsonrpc" must be "2.0"') }
  if (!("id" in env)) return { id: null, error: invalidRequest('"id" is required (notifications are not supported)') }
  if (!idOk) return { id: null, error: invalidRequest('"id" must be a string, a number or null') }
  if (typeof env.method !== "string" || env.method === "") return { id, error: invalidRequest('"method" must be a non-empty string') }
  if (env.params !== undefined && (env.params === null || typeof env.params !== "object" || Array.isArray(env.params))) {
    return { id, error: new A2AError(Errors.InvalidParams, "Invalid parameters: params must be an object", { field: "params" }, [{ field: "params", description: "must be an object" }]) }
  }
  return { id, method: env.method, params: env.params ?? {} }
}

/**
 * Any unexpected failure (a defect): logged in full here, reported to the
 * client as a bare -32603. An interruption (the client went away) is not a
 * failure and passes through.
 */
const internal = (what: string) => (cause: Cause.Cause<unknown>) =>
  Cause.isInterruptedOnly(cause)
    ? Effect.failCause(cause as Cause.Cause<never>) // interruption only: no typed failure inside
    : Effect.logError(`${what} failed`, cause).pipe(Effect.as(new A2AError(Errors.Internal, "Internal error")))

export const handle = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const config = yield* ServerConfig
  const contentTypeError = checkContentType(request)
  if (contentTypeError !== undefined) return respondError(null, contentTypeError)
  const body = yield* Effect.either(readBody(request, config.maxBodyBytes))
  if (body._tag === "Left") return respondError(null, body.left, 413)
  const envelope = parseEnvelope(body.right)
  if ("error" in envelope) return respondError(envelope.id, envelope.error)
  const { id, method, params } = envelope
  const versionError = checkVersion(request)
  if (versionError !== undefined) return respondError(id, versionError)
  const handler = methods[method]
  if (handler === undefined) {
    return respondError(id, new A2AError(Errors.MethodNotFound, `Method not found: ${method}`, { method }))
  }
  const lastEventId = request.headers["last-event-id"]
  const outcome = yield* handler(params, lastEventId !== undefined ? { lastEventId } : {}).pipe(
    Effect.either,
    Effect.catchAllCause((cause) => Effect.map(internal(method)(cause), Either.left))
  )
  if (outcome._tag === "Left") return respondError(id, outcome.left)
  const result = outcome.right
  if (result._tag === "Json") return HttpServerResponse.unsafeJson({ jsonrpc: "2.0", id, result: result.result })
  const shuttingDown = yield* ShuttingDown
  const events = result.events.pipe(
    Stream.interruptWhen(Deferred.await(shuttingDown)),
    Stream.map((e): Sse.SseEvent => ({ ...e, data: { jsonrpc: "2.0", id, result: e.data } })),
    // An error after the stream started is one last event, then the stream closes.
    Stream.catchAll((error) => Stream.succeed<Sse.SseEvent>({ event: "error", data: errorBody(id, error) }))
  )
  return HttpServerResponse.stream(Sse.encode(events, config.keepAliveMs), {
    contentType: "text/event-stream",
    headers: Sse.headers
  })
}).pipe(Effect.catchAllCause((cause) => Effect.map(internal("request")(cause), (error) => respondError(null, error))))
