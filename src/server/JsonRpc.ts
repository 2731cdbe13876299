import { Effect, Either, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type { IncomingMessage } from "node:http"
import { A2AError, errorDetails, Errors } from "../protocol/errors.js"
import * as V03 from "../protocol/v03.js"
import { answer, invoke, StreamStart, type StreamTarget, streamResponse } from "./dispatch.js"
import { nodeResponseOf } from "./LiveStreams.js"
import { methods } from "./methods.js"
import * as Request from "./request.js"
import * as Auth from "./Auth.js"
import { ServerConfig } from "./ServerConfig.js"
import { topLevelMember } from "../protocol/rawJson.js"

/**
 * The JSON-RPC 2.0 binding at `POST /a2a`: read the body within the size
 * limit, check the envelope and the A2A-Version, dispatch to a method, and
 * answer with a JSON-RPC response or an SSE stream of them. Every error is
 * a JSON-RPC error object; no stack trace ever reaches the client.
 */
type Id = string | number | null

/** A request's id: its value, and for a number JSON.parse could not hold exactly (beyond 2^53), its text. */
interface RequestId {
  readonly value: Id
  readonly text?: string
}

const noId: RequestId = { value: null }

/** A response envelope as JSON, with the id exactly as the request sent it. */
const encode = (id: RequestId, member: { readonly result: unknown } | { readonly error: unknown }) =>
  id.text === undefined
    ? JSON.stringify({ jsonrpc: "2.0", id: id.value, ...member })
    : `{"jsonrpc":"2.0","id":${id.text},${JSON.stringify(member).slice(1)}`

const errorMember = (error: A2AError) => ({ error: { code: error.spec.code, message: error.message, data: errorDetails(error) } })

/** A JSON-RPC answer as the binding makes it; each server writes it its own way. */
export interface RpcAnswer {
  readonly status: number
  readonly body: string
  readonly headers: Readonly<Record<string, string>>
}

const noHeaders: Readonly<Record<string, string>> = {}

const respond = (json: string, status = 200, headers: Readonly<Record<string, string>> = noHeaders): RpcAnswer => ({ status, body: json, headers })

const respondError = (id: RequestId, error: A2AError, status = 200) =>
  // The rest of an oversized body is never read: the connection cannot carry another request.
  respond(encode(id, errorMember(error)), status, status === 413 ? { connection: "close" } : noHeaders)

/** 401 before anything of the request is read: an unauthenticated caller learns nothing. */
const respondUnauthenticated = (error: A2AError) => respond(encode(noId, errorMember(error)), 401, { "www-authenticate": Auth.challenge })

const invalidRequest = (message: string) => new A2AError(Errors.InvalidRequest, `Invalid request: ${message}`)

const parseEnvelope = (text: string): { id: RequestId; method: string; params: unknown } | { id: RequestId; error: A2AError } => {
  const parsed = Request.parseJson(text)
  if (parsed._tag === "Left") return { id: noId, error: parsed.left }
  const body = parsed.right
  if (Array.isArray(body)) return { id: noId, error: invalidRequest("batch requests are not supported; send one request per call") }
  if (body === null || typeof body !== "object") return { id: noId, error: invalidRequest("the body must be a JSON-RPC 2.0 request object") }
  const env = body as Record<string, unknown>
  const rawId = env.id
  const idOk = typeof rawId === "string" || (typeof rawId === "number" && Number.isFinite(rawId)) || rawId === null
  const id: RequestId = !idOk
    ? noId
    : typeof rawId === "number" && !Number.isSafeInteger(rawId)
      ? { value: rawId, text: topLevelMember(text, "id") ?? JSON.stringify(rawId) }
      : { value: rawId as Id }
  if (env.jsonrpc !== "2.0") return { id, error: invalidRequest('"jsonrpc" must be "2.0"') }
  if (!("id" in env)) return { id: noId, error: invalidRequest('"id" is required (notifications are not supported)') }
  if (!idOk) return { id: noId, error: invalidRequest('"id" must be a string, a number or null') }
  if (typeof env.method !== "string" || env.method === "") return { id, error: invalidRequest('"method" must be a non-empty string') }
  if (env.params !== undefined && (env.params === null || typeof env.params !== "object" || Array.isArray(env.params))) {
    return {
      id,
      error: new A2AError(Errors.InvalidParams, "Invalid parameters: params must be an object", { field: "params" }, [
        { field: "params", description: "must be an object" }
      ])
    }
  }
  return { id, method: env.method, params: env.params ?? {} }
}

/** What the binding reads of a request: its head, its body, and where a stream would be written. */
export interface RpcRequest extends Request.RequestHead, StreamTarget {
  readonly incoming: IncomingMessage
}

/**
 * One JSON-RPC request, answered: the same for the platform's router (`handle`, used under
 * `/agents/{name}/a2a`) and for the fast path over `node:http` (FastRpc, `POST /a2a`).
 */
export const handleRequest = (request: RpcRequest) => Effect.flatMap(handler, (handle) => handle(request))

/**
 * One request with the server's settings and authenticator. Its generator function is made once, at module
 * level: one made per request costs V8 a hidden class per request, which keeps the request's objects alive
 * past young-generation collections (docs/performance.md, step 32).
 */
const respondTo = Effect.fnUntraced(function* (config: ServerConfig["Type"], auth: Auth.Authenticator["Type"], request: RpcRequest) {
  // (Without authentication, everyone is the anonymous principal: no step to ask.)
  const principal = auth.enabled ? yield* Effect.either(auth.authenticate(request.headers)) : Either.right(Auth.anonymousPrincipal)
  if (principal._tag === "Left") return respondUnauthenticated(principal.left)
  const contentTypeError = Request.checkContentType(request, "application/x-www-form-urlencoded")
  if (contentTypeError !== undefined) return respondError(noId, contentTypeError)
  const body = yield* Effect.either(Request.readBody(request, request.incoming, config.maxBodyBytes))
  if (body._tag === "Left") return respondError(noId, body.left, body.left.spec.httpStatus === 413 ? 413 : 200)
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
    return respond(encode(id, { result: legacy !== undefined ? V03.resultOut(method, result.result) : result.result }))
  }
  const idJson = id.text ?? JSON.stringify(id.value)
  return yield* streamResponse(
    result,
    request,
    principal.right,
    {
      open: `{"jsonrpc":"2.0","id":${idJson},"result":`,
      close: "}",
      flavor: legacy !== undefined ? `v0.3 ${method}` : "v1.0",
      convert: legacy !== undefined ? (data) => V03.streamEventOut(method, data) : (data) => data,
      errorJson: (error) => encode(id, errorMember(error))
    },
    (error) => respondError(id, error)
  )
})

/** `handleRequest` with its services looked up once (the fast path makes one for the server's life). */
export const handler = Effect.map(
  Effect.zip(ServerConfig, Auth.Authenticator),
  ([config, auth]) =>
    (request: RpcRequest) =>
      respondTo(config, auth, request).pipe(
        Effect.catchAllCause((cause) => Effect.map(Request.unexpected("request")(cause), (error) => respondError(noId, error)))
      )
)

/** The binding on the platform's router. */
export const handle = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const answered = yield* handleRequest({
    url: request.url,
    originalUrl: request.originalUrl,
    headers: request.headers,
    incoming: NodeHttpServerRequest.toIncomingMessage(request),
    res: nodeResponseOf(request),
    remoteAddress: Option.getOrUndefined(request.remoteAddress)
  })
  if (answered instanceof StreamStart) return yield* answer(answered)
  return HttpServerResponse.text(answered.body, { status: answered.status, contentType: "application/json", headers: answered.headers })
})
