import { Effect, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { extend } from "../domain/extend.js"
import { A2AError, errorDetails, Errors } from "../protocol/errors.js"
import * as Hector from "../protocol/hector.js"
import { answer, invoke, streamResponse } from "./dispatch.js"
import { nodeResponseOf } from "./LiveStreams.js"
import * as Request from "./request.js"
import * as Auth from "./Auth.js"
import { ServerConfig } from "./ServerConfig.js"

/**
 * The HTTP+JSON (REST) binding (spec §11), at the root of the server: each
 * route maps to the same method the JSON-RPC binding calls, with its params
 * taken from the path, the query string and the body. Every route also
 * exists under a `/{tenant}/` prefix. Errors are `google.rpc.Status` bodies
 * with the HTTP status of spec §4.1.
 *
 * Routing is done here rather than by the router: A2A paths contain literal
 * colons (`/message:send`, `/tasks/{id}:cancel`), which the router reads as
 * parameters.
 */
interface Route {
  readonly method: string
  /** Params from the path. */
  readonly params: Record<string, string>
  /** Whether the request body (if any) holds the params. */
  readonly body: boolean
  /** Whether GET query parameters hold the params. */
  readonly query: boolean
}

const route = (method: string, params: Record<string, string>, body: boolean, query = false): Route => ({ method, params, body, query })

/** Match a path without a tenant prefix. */
const matchPlain = (verb: string, s: ReadonlyArray<string>): Route | undefined => {
  const [a, b, c, d] = s
  if (s.length === 1 && a === "message:send" && verb === "POST") return route("SendMessage", {}, true)
  if (s.length === 1 && a === "message:stream" && verb === "POST") return route("SendStreamingMessage", {}, true)
  if (s.length === 1 && a === "tasks" && verb === "GET") return route("ListTasks", {}, false, true)
  if (s.length === 1 && a === "extendedAgentCard" && verb === "GET") return route("GetExtendedAgentCard", {}, false, true)
  if (s.length === 2 && a === "tasks" && b !== undefined && b !== "") {
    if (b.endsWith(":cancel") && verb === "POST") return route("CancelTask", { id: b.slice(0, -":cancel".length) }, true)
    if (b.endsWith(":subscribe") && (verb === "GET" || verb === "POST")) {
      return route("SubscribeToTask", { id: b.slice(0, -":subscribe".length) }, verb === "POST", verb === "GET")
    }
    if (verb === "GET") return route("GetTask", { id: b }, false, true)
  }
  if (s.length === 3 && a === "tasks" && c === "pushNotificationConfigs") {
    if (verb === "POST") return route("CreateTaskPushNotificationConfig", { taskId: b! }, true)
    if (verb === "GET") return route("ListTaskPushNotificationConfigs", { taskId: b! }, false, true)
  }
  if (s.length === 4 && a === "tasks" && c === "pushNotificationConfigs") {
    if (verb === "GET") return route("GetTaskPushNotificationConfig", { taskId: b!, id: d! }, false, true)
    if (verb === "DELETE") return route("DeleteTaskPushNotificationConfig", { taskId: b!, id: d! }, false, true)
  }
  return undefined
}

/** The route for a path, trying it without and then with a leading tenant segment. */
export const match = (verb: string, segments: ReadonlyArray<string>): Route | undefined => {
  const plain = matchPlain(verb, segments)
  if (plain !== undefined) return plain
  const [tenant, ...rest] = segments
  if (tenant === undefined || tenant === "" || rest.length === 0) return undefined
  const tenanted = matchPlain(verb, rest)
  return tenanted === undefined ? undefined : extend(tenanted, { params: extend(tenanted.params, { tenant }) })
}

/** Query fields that are numbers or booleans in the proto; everything else is a string. */
const numericQuery = new Set(["pageSize", "historyLength", "status"])
const booleanQuery = new Set(["includeArtifacts"])

/**
 * Query parameters (spec §11.5: camelCase, decimal numbers, true/false). A value
 * of the wrong form stays a string, for the schema to reject naming the field.
 */
const queryParams = (search: URLSearchParams, surface: Surface): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [name, value] of search) {
    const key = surface === "hector" ? Hector.queryNameIn(name) : name
    if (key === "A2A-Version") continue
    if (numericQuery.has(key) && /^-?\d+$/.test(value)) out[key] = Number(value)
    else if (booleanQuery.has(key) && (value === "true" || value === "false")) out[key] = value === "true"
    else out[key] = value
  }
  return out
}

/** A `google.rpc.Status` body: its `code` is always the HTTP status it is sent with. */
const statusBody = (error: A2AError, status = error.spec.httpStatus) => ({
  error: { code: status, status: error.spec.grpcStatus, message: error.message, details: errorDetails(error) }
})

/**
 * The media type of this binding's JSON answers: `application/a2a+json` (spec §11.1, v1.0.1) when the
 * request asks for it, by `Accept` or by sending it as its `Content-Type`; `application/json` otherwise,
 * as older clients and the TCK expect (docs/protocol.md, Content types).
 */
export type Media = "application/json" | "application/a2a+json"
export const mediaOf = (headers: Request.RequestHeaders): Media => {
  const accept = Request.header(headers, "accept") ?? ""
  const type = (Request.header(headers, "content-type") ?? "").split(";")[0]!.trim().toLowerCase()
  return type === "application/a2a+json" || /(^|,)\s*application\/a2a\+json\s*(;|,|$)/i.test(accept) ? "application/a2a+json" : "application/json"
}

const json = (value: unknown, media: Media, options: { readonly status?: number; readonly headers?: Record<string, string> } = {}) =>
  media === "application/json"
    ? HttpServerResponse.unsafeJson(value, options)
    : HttpServerResponse.text(JSON.stringify(value), { ...options, contentType: media })

const respondErrorAs = (error: A2AError, status = error.spec.httpStatus, media: Media = "application/json") =>
  json(statusBody(error, status), media, {
    status,
    headers: {
      ...(error.spec === Errors.Unauthenticated ? { "www-authenticate": Auth.challenge } : {}),
      ...(error.metadata.retryAfterSeconds !== undefined ? { "retry-after": error.metadata.retryAfterSeconds } : {}),
      // The rest of an oversized body is never read: the connection cannot carry another request.
      ...(status === 413 ? { connection: "close" } : {})
    }
  })

const notFound = (verb: string, path: string) =>
  new A2AError(
    { ...Errors.MethodNotFound, httpStatus: 404, grpcStatus: "NOT_FOUND" },
    `No route for ${verb} ${path}: see the HTTP+JSON routes of the A2A spec (§11), or POST /a2a for JSON-RPC`
  )

/**
 * Which routes a path is read as: the A2A binding's (with an optional tenant segment first), or the
 * Hector-style `/v1/…` surface's (the same routes, no tenant; messages and queries as Hector's users send
 * them, protocol/hector.ts).
 */
export type Surface = "a2a" | "hector"

/** The binding for paths under `prefix` segments (0 at the root; 2 for `/agents/{name}/…`; 1 and 3 for Hector's `/v1/…`). */
export const handleAt = (prefix: number, surface: Surface = "a2a") =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const config = yield* ServerConfig
    const media = mediaOf(request.headers)
    const respondError = (error: A2AError, status = error.spec.httpStatus) => respondErrorAs(error, status, media)
    const url = new URL(request.url, "http://localhost")
    let segments: Array<string>
    try {
      segments = url.pathname
        .split("/")
        .slice(1 + prefix)
        .map(decodeURIComponent)
    } catch {
      return respondError(new A2AError(Errors.InvalidRequest, `Invalid request: the path ${url.pathname} is not valid percent-encoding`))
    }
    if (segments[segments.length - 1] === "") segments = segments.slice(0, -1)
    const found = surface === "a2a" ? match(request.method, segments) : matchPlain(request.method, segments)
    if (found === undefined) return respondError(notFound(request.method, url.pathname))
    const principal = yield* Effect.either((yield* Auth.Authenticator).authenticate(request.headers))
    if (principal._tag === "Left") return respondError(principal.left)
    const versionError = Request.checkVersion(request)
    if (versionError !== undefined) return respondError(versionError)

    let body: Record<string, unknown> = {}
    if (found.body) {
      const contentTypeError = Request.checkContentType(request)
      if (contentTypeError !== undefined) return respondError(contentTypeError, 415)
      const text = yield* Effect.either(Request.readBody(request, NodeHttpServerRequest.toIncomingMessage(request), config.maxBodyBytes))
      if (text._tag === "Left") return respondError(text.left)
      if (text.right.trim() !== "") {
        const parsed = Request.parseJson(text.right)
        if (parsed._tag === "Left") return respondError(parsed.left)
        if (parsed.right === null || typeof parsed.right !== "object" || Array.isArray(parsed.right)) {
          return respondError(new A2AError(Errors.InvalidRequest, "Invalid request: the body must be a JSON object"))
        }
        body = parsed.right as Record<string, unknown>
      }
      if (surface === "hector" && (found.method === "SendMessage" || found.method === "SendStreamingMessage")) body = Hector.sendParamsIn(body)
    }
    const params = { ...(found.query ? queryParams(url.searchParams, surface) : {}), ...body, ...found.params }
    const outcome = yield* invoke(found.method, params, request, principal.right)
    if (outcome._tag === "Left") return respondError(outcome.left)
    const result = outcome.right
    if (result._tag === "Json") return json(result.result ?? {}, media)
    return yield* streamResponse(
      result,
      { res: nodeResponseOf(request), remoteAddress: Option.getOrUndefined(request.remoteAddress) },
      principal.right,
      { open: "", close: "", flavor: "v1.0", convert: (data) => data, errorJson: (error) => JSON.stringify(statusBody(error)) },
      respondError
    )
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.zipWith(Request.unexpected("REST request")(cause), HttpServerRequest.HttpServerRequest, (error, request) =>
        respondErrorAs(error, error.spec.httpStatus, mediaOf(request.headers))
      )
    ),
    Effect.flatMap(answer)
  )

export const handle = handleAt(0)
