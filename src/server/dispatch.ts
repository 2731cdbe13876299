import { Cause, Effect, Either } from "effect"
import { EngineMetrics } from "../observability/Metrics.js"
import { traced } from "../observability/Tracing.js"
import type { HttpServerResponse } from "@effect/platform"
import type { TaskEngine } from "../engine/TaskEngine.js"
import { A2AError, Errors } from "../protocol/errors.js"
import { type Framing, type LiveStream, LiveStreams } from "./LiveStreams.js"
import type { ServerResponse } from "node:http"
import type { PushFormat } from "../push/PushConfig.js"
import type { PushConfigs } from "../push/PushConfigs.js"
import { camelCaseKeys } from "../protocol/normalize.js"
import { extendedAgentCard, hasExtendedCard } from "./AgentCard.js"
import { signedCard } from "../signing/SigningKey.js"
import { grpcAddressOf } from "../grpc/GrpcAddress.js"
import { Authenticator, mayAddress, type Principal } from "./Auth.js"
import { CurrentAgent } from "../engine/EngineConfig.js"
import { ServerConfig } from "./ServerConfig.js"
import { foreignTenant, type MethodResult, methods } from "./methods.js"
import * as Request from "./request.js"

/**
 * What both bindings do once they know the method and its params: call it,
 * and frame a streamed result as SSE. Only the envelopes differ.
 */

/** For a caller bound to tenants, a request in another tenant answers as that tenant were empty; undefined when it may go on. */
const boundToTenants = (method: string, params: unknown, principal: Principal) => {
  const fields = params !== null && typeof params === "object" ? (camelCaseKeys(params) as Record<string, unknown>) : {}
  return mayAddress(principal, typeof fields.tenant === "string" ? fields.tenant : "") ? undefined : foreignTenant(method, fields)
}

/** A method span's attributes (docs/operations.md#traces): the method, and the task it names when it names one. */
const methodAttributes = (method: string, params: unknown, protocol: PushFormat): Record<string, unknown> => {
  const p = params !== null && typeof params === "object" ? (params as Record<string, unknown>) : {}
  const message = p.message !== null && typeof p.message === "object" ? (p.message as Record<string, unknown>) : {}
  const taskId = p.id ?? p.taskId ?? p.task_id ?? message.taskId ?? message.task_id
  const contextId = message.contextId ?? message.context_id
  return {
    "a2a.method": method,
    "a2a.protocol.version": protocol,
    ...(typeof taskId === "string" ? { "a2a.task.id": taskId } : {}),
    ...(typeof contextId === "string" ? { "a2a.context.id": contextId } : {})
  }
}

/**
 * Where the agent's card says it is, for the card a method answers with: the configured public URL, or
 * the request's host, and the path this binding was reached under, without its own endpoint.
 */
const cardBase = (request: Request.RequestHead, params: unknown, publicUrl: string | undefined) => {
  let path = (request.originalUrl ?? request.url).split("?")[0]!.replace(/\/+$/, "")
  if (path.endsWith("/a2a")) path = path.slice(0, -"/a2a".length)
  else if (path.endsWith("/extendedAgentCard")) {
    path = path.slice(0, -"/extendedAgentCard".length)
    const tenant = params !== null && typeof params === "object" ? (params as { tenant?: unknown }).tenant : undefined
    const segment = typeof tenant === "string" && tenant !== "" ? `/${encodeURIComponent(tenant)}` : ""
    if (segment !== "" && path.endsWith(segment)) path = path.slice(0, -segment.length)
  }
  return `${serverRoot(request, publicUrl)}${path}`
}

/** The server's own base: the configured public URL, or the request's host. */
const serverRoot = (request: Request.RequestHead, publicUrl: string | undefined) =>
  publicUrl?.replace(/\/$/, "") ?? `http://${Request.header(request.headers, "host") ?? "localhost"}`

/**
 * GetExtendedAgentCard (spec §3.1.11): the extended card, for the authenticated caller, when the agent has
 * one and authentication is on; otherwise -32004, as the public card declares no extended card.
 */
const getExtendedAgentCard = (
  request: Request.RequestHead,
  params: unknown
): Effect.Effect<MethodResult, A2AError, CurrentAgent | Authenticator | ServerConfig> =>
  Effect.gen(function* () {
    const agent = yield* CurrentAgent
    const auth = yield* Authenticator
    if (!hasExtendedCard(agent, auth.enabled)) {
      return yield* new A2AError(
        Errors.UnsupportedOperation,
        "GetExtendedAgentCard: this agent has no extended card (capabilities.extendedAgentCard is false)"
      )
    }
    const config = yield* ServerConfig
    const base = cardBase(request, params, config.publicUrl)
    const root = serverRoot(request, config.publicUrl)
    const grpc = yield* grpcAddressOf(root, agent)
    const card = yield* signedCard(extendedAgentCard(agent, base, auth.cardSecurity, grpc), `${root}/.well-known/jwks.json`)
    return { _tag: "Json", result: card } as const
  })

/** Run a method; its A2A errors and any unexpected failure come back as a Left. */
export const invoke = (
  method: string,
  params: unknown,
  request: Request.RequestHead,
  principal: Principal,
  protocol: PushFormat = "1.0"
): Effect.Effect<Either.Either<MethodResult, A2AError>, never, TaskEngine | PushConfigs | CurrentAgent | Authenticator | ServerConfig> => {
  const lastEventId = Request.header(request.headers, "last-event-id")
  const run = () =>
    method === "GetExtendedAgentCard"
      ? getExtendedAgentCard(request, params)
      : methods[method]!(params, { principal: principal.name, protocol, ...(lastEventId !== undefined ? { lastEventId } : {}) })
  // A credential bound to tenants (docs/auth.md): another tenant looks empty to it.
  const refused = principal.tenants === undefined ? undefined : boundToTenants(method, params, principal)
  const call: Effect.Effect<MethodResult, A2AError, TaskEngine | PushConfigs | CurrentAgent | Authenticator | ServerConfig> = refused ?? run()
  return Effect.matchCauseEffect(traced(`A2A ${method}`, () => ({ attributes: methodAttributes(method, params, protocol) }))(call), {
    onSuccess: (result) => Effect.succeed(Either.right(result)),
    // The method's own error, or the unexpected (a defect): one handler for both.
    onFailure: (cause) => {
      const failure = Cause.failureOrCause(cause)
      return failure._tag === "Left" ? Effect.succeed(Either.left(failure.left)) : Effect.map(Request.unexpected(method)(cause), Either.left)
    }
  })
}

/**
 * A stream the method started, to be answered by `answer` once the binding's
 * handler has returned: an open stream then holds nothing of its request
 * (the body, the parsed params), only its own small state.
 */
export class StreamStart {
  constructor(
    readonly stream: LiveStream,
    readonly res: ServerResponse
  ) {}
}

/** The binding's answer: a response as it is, or a started stream, written until it closes. */
export const answer = (r: HttpServerResponse.HttpServerResponse | StreamStart) =>
  r instanceof StreamStart ? r.stream.respond(r.res) : Effect.succeed(r)

/** Where a stream is written, and who asked for it (for the per-caller limit). */
export interface StreamTarget {
  /** The Node response: undefined when the server is not Node's (then there is no streaming). */
  readonly res: ServerResponse | undefined
  readonly remoteAddress: string | undefined
}

/** Who a stream counts against: an authenticated caller by principal, an anonymous one by where it connects from. */
export const streamCaller = (principal: Principal, remoteAddress: string | undefined) =>
  principal.name !== "" ? `principal ${principal.name}` : `address ${remoteAddress ?? ""}`

/**
 * An SSE response: the stream opens in `LiveStreams` (refused past the
 * caller's limit), then the method starts it. A failure before anything was
 * sent is a plain error answer (`respondError`); once streaming, an error is
 * one last `event: error`. At shutdown the stream ends cleanly.
 */
export const streamResponse = <A>(
  result: Extract<MethodResult, { readonly _tag: "Stream" }>,
  target: StreamTarget,
  principal: Principal,
  framing: Framing,
  respondError: (error: A2AError) => A
): Effect.Effect<A | StreamStart, never, LiveStreams | TaskEngine | EngineMetrics> =>
  // (No generator: a generator function made per request costs V8 a hidden class per request.)
  Effect.suspend(() => {
    const res = target.res
    if (res === undefined) return Effect.succeed<A | StreamStart>(respondError(new A2AError(Errors.Internal, "Streaming needs the Node HTTP server")))
    return Effect.flatMap(Effect.zip(LiveStreams, EngineMetrics), ([streams, metrics]) => {
      const opened = streams.open(streamCaller(principal, target.remoteAddress), framing, () => metrics.stream(-1))
      if (Either.isLeft(opened)) return Effect.succeed<A | StreamStart>(respondError(opened.left))
      metrics.stream(1)
      const stream = opened.right
      stream.closeWith(res)
      return Effect.map(
        result.open(stream).pipe(
          Effect.either,
          Effect.onInterrupt(() => Effect.sync(() => stream.close()))
        ),
        (feed): A | StreamStart => {
          if (Either.isLeft(feed)) {
            stream.close()
            return respondError(feed.left)
          }
          stream.attach(feed.right)
          return new StreamStart(stream, res)
        }
      )
    })
  })
