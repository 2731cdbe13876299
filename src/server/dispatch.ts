import { Deferred, Effect, Either, Stream } from "effect"
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { TaskEngine } from "../engine/TaskEngine"
import type { A2AError } from "../protocol/errors"
import type { PushFormat } from "../push/PushConfig"
import type { PushConfigs } from "../push/PushConfigs"
import { ShuttingDown } from "./Lifecycle"
import { camelCaseKeys } from "../protocol/normalize"
import { mayAddress, type Principal } from "./Auth"
import { foreignTenant, type MethodResult, methods } from "./methods"
import * as Request from "./request"
import { ServerConfig } from "./ServerConfig"
import * as Sse from "./Sse"

/**
 * What both bindings do once they know the method and its params: call it,
 * and frame a streamed result as SSE. Only the envelopes differ.
 */

/** For a caller bound to tenants, a request in another tenant answers as that tenant were empty; undefined when it may go on. */
const boundToTenants = (method: string, params: unknown, principal: Principal) => {
  const fields = params !== null && typeof params === "object" ? (camelCaseKeys(params) as Record<string, unknown>) : {}
  return mayAddress(principal, typeof fields.tenant === "string" ? fields.tenant : "") ? undefined : foreignTenant(method, fields)
}

/** Run a method; its A2A errors and any unexpected failure come back as a Left. */
export const invoke = (
  method: string,
  params: unknown,
  request: HttpServerRequest.HttpServerRequest,
  principal: Principal,
  protocol: PushFormat = "1.0"
): Effect.Effect<Either.Either<MethodResult, A2AError>, never, TaskEngine | PushConfigs> => {
  const lastEventId = request.headers["last-event-id"]
  const run = () => methods[method]!(params, { principal: principal.name, protocol, ...(lastEventId !== undefined ? { lastEventId } : {}) })
  // A credential bound to tenants (docs/auth.md): another tenant looks empty to it.
  const refused = principal.tenants === undefined ? undefined : boundToTenants(method, params, principal)
  const call: Effect.Effect<MethodResult, A2AError, TaskEngine | PushConfigs> = refused ?? run()
  return call.pipe(
    Effect.either,
    Effect.catchAllCause((cause) => Effect.map(Request.unexpected(method)(cause), (error) => Either.left(error)))
  )
}

/**
 * An SSE response: each event's data wrapped by `envelope`; an error after the
 * stream started becomes one last `event: error` (its data from `errorData`),
 * then the stream closes; at shutdown the stream ends cleanly.
 */
export const streamResponse = (
  events: Stream.Stream<Sse.SseEvent, A2AError>,
  envelope: (data: unknown) => unknown,
  errorData: (error: A2AError) => unknown
) =>
  Effect.gen(function* () {
    const shuttingDown = yield* ShuttingDown
    const config = yield* ServerConfig
    const framed = events.pipe(
      Stream.interruptWhen(Deferred.await(shuttingDown)),
      Stream.map((e): Sse.SseEvent => ({ ...e, data: envelope(e.data) })),
      Stream.catchAll((error) => Stream.succeed<Sse.SseEvent>({ event: "error", data: errorData(error) }))
    )
    return HttpServerResponse.stream(Sse.encode(framed, config.keepAliveMs), { contentType: "text/event-stream", headers: Sse.headers })
  })
