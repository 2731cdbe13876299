import { Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { A2AError, errorDetails, Errors } from "../protocol/errors"
import * as V03 from "../protocol/v03"
import { invoke, streamResponse } from "./dispatch"
import { methods } from "./methods"
import * as Request from "./request"
import * as Auth from "./Auth"
import { ServerConfig } from "./ServerConfig"

/**
 * The JSON-RPC 2.0 binding at `POST /a2a`: read the body within the size
 * limit, check the envelope and the A2A-Version, dispatch to a method, and
 * answer with a JSON-RPC response or an SSE stream of them. Every error is
 * a JSON-RPC error object; no stack trace ever reaches the client.
 */
type Id = string | number | null


const errorBody = (id: Id, error: A2AError) => ({
  jsonrpc: "2.0",
  id,
  error: { code: error.spec.code, message: error.message, data: errorDetails(error) }
})

const respondError = (id: Id, error: A2AError, status = 200) => HttpServerResponse.unsafeJson(errorBody(id, error), { status })

/** 401 before anything of the request is read: an unauthenticated caller learns nothing. */
const respondUnauthenticated = (error: A2AError) =>
  HttpServerResponse.unsafeJson(errorBody(null, error), { status: 401, headers: { "www-authenticate": Auth.challenge } })

const invalidRequest = (message: string) => new A2AError(Errors.InvalidRequest, `Invalid request: ${message}`)

const parseEnvelope = (text: string): { id: Id; method: string; params: unknown } | { id: Id; error: A2AError } => {
  const parsed = Request.parseJson(text)
  if (parsed._tag === "Left") return { id: null, error: parsed.left }
  const body = parsed.right
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

export const handle = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const config = yield* ServerConfig
  const principal = yield* Effect.either((yield* Auth.Authenticator).authenticate(request.headers))
  if (principal._tag === "Left") return respondUnauthenticated(principal.left)
  const contentTypeError = Request.checkContentType(request, "application/x-www-form-urlencoded")
  if (contentTypeError !== undefined) return respondError(null, contentTypeError)
  const body = yield* Effect.either(Request.readBody(request, config.maxBodyBytes))
  if (body._tag === "Left") return respondError(null, body.left, 413)
  const envelope = parseEnvelope(body.right)
  if ("error" in envelope) return respondError(envelope.id, envelope.error)
  const { id, method } = envelope
  // v0.3 method names (`message/send`) are translated at the edge onto the v1.0 methods.
  const legacy = V03.methodMap[method]
  const versionError = Request.checkVersion(request, legacy !== undefined ? "0.3" : "1.0")
  if (versionError !== undefined) return respondError(id, versionError)
  if (methods[legacy ?? method] === undefined) {
    return respondError(id, new A2AError(Errors.MethodNotFound, `Method not found: ${method}`, { method }))
  }
  const params = legacy !== undefined ? V03.paramsIn(method, envelope.params) : envelope.params
  const outcome = yield* invoke(legacy ?? method, params, request, principal.right, legacy !== undefined ? "0.3" : "1.0")
  if (outcome._tag === "Left") return respondError(id, outcome.left)
  const result = outcome.right
  if (result._tag === "Json") {
    return HttpServerResponse.unsafeJson({ jsonrpc: "2.0", id, result: legacy !== undefined ? V03.resultOut(method, result.result) : result.result })
  }
  return yield* streamResponse(
    result.events,
    (data) => ({ jsonrpc: "2.0", id, result: legacy !== undefined ? V03.streamEventOut(method, data) : data }),
    (error) => errorBody(id, error)
  )
}).pipe(Effect.catchAllCause((cause) => Effect.map(Request.unexpected("request")(cause), (error) => respondError(null, error))))
