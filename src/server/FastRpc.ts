import { Context, Effect, Exit, Layer, Runtime } from "effect"
import { isTracing, parentOf } from "../observability/Tracing.js"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { AgentHosts } from "./AgentHosts.js"
import type { Authenticator } from "./Auth.js"
import { StreamStart } from "./dispatch.js"
import * as JsonRpc from "./JsonRpc.js"
import { NodeServer } from "./Lifecycle.js"
import type { LiveStreams } from "./LiveStreams.js"
import type { ServerConfig } from "./ServerConfig.js"

/**
 * `POST /a2a` on the single-agent server, taken straight from `node:http`:
 * the hottest path (every SendMessage, GetTask and poll) skips the platform's
 * request pipeline (its request and response objects, router, middleware and
 * response writer), and runs the same binding (`JsonRpc.handleRequest`) on
 * the same Effect runtime. Every other request, and `/agents/{name}/a2a`,
 * goes to the platform's router as before.
 *
 * The Node server emits "request" to its listeners, the platform's among them;
 * this module sees each request first, and passes on what it does not take.
 */
const isRpc = (req: IncomingMessage) => req.method === "POST" && (req.url === "/a2a" || req.url?.startsWith("/a2a?") === true)

const write = (res: ServerResponse, answer: JsonRpc.RpcAnswer) => {
  if (res.headersSent || res.destroyed) return
  res.writeHead(answer.status, { "content-type": "application/json", "content-length": Buffer.byteLength(answer.body), ...answer.headers })
  res.end(answer.body)
}

/** What a request that could not be answered at all gets (the binding answers every failure itself). */
const internal: JsonRpc.RpcAnswer = {
  status: 500,
  body: JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32603, message: "Internal error" } }),
  headers: {}
}

/**
 * Traced (tracing on): the request is a server span named as OpenTelemetry's HTTP conventions name it, a
 * child of the caller's `traceparent`, as the platform's middleware traces the other routes.
 */
const tracedRequest = <E, R>(req: IncomingMessage, effect: Effect.Effect<JsonRpc.RpcAnswer | StreamStart, E, R>) =>
  Effect.withFiberRuntime<JsonRpc.RpcAnswer | StreamStart, E, R>((fiber) => {
    if (!isTracing(fiber)) return effect
    const parent = parentOf(typeof req.headers.traceparent === "string" ? req.headers.traceparent : undefined)
    return Effect.withSpan(
      Effect.tap(effect, (answer) => Effect.annotateCurrentSpan("http.response.status_code", answer instanceof StreamStart ? 200 : answer.status)),
      "POST /a2a",
      {
        kind: "server",
        captureStackTrace: false,
        ...(parent !== undefined ? { parent } : {}),
        attributes: {
          "http.request.method": "POST",
          "http.route": "/a2a",
          "url.path": (req.url ?? "/").split("?")[0],
          "url.scheme": "http",
          ...(req.headers["user-agent"] !== undefined ? { "user_agent.original": req.headers["user-agent"] } : {}),
          ...(req.socket.remoteAddress !== undefined ? { "client.address": req.socket.remoteAddress } : {})
        }
      }
    )
  })

export const layer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const node = yield* NodeServer
    const hosts = yield* AgentHosts
    // Several agents: `/a2a` at the root is the router's 404, naming where the agents are.
    if (hosts.root === undefined) return
    const outer = yield* Effect.runtime<ServerConfig | Authenticator | LiveStreams>()
    const runtime = Runtime.make({
      context: Context.merge(outer.context, hosts.root.context),
      fiberRefs: outer.fiberRefs,
      runtimeFlags: outer.runtimeFlags
    })
    const run = Runtime.runCallback(runtime)
    const handle = yield* JsonRpc.handler
    const serve = (req: IncomingMessage, res: ServerResponse) =>
      run(tracedRequest(req, handle({ url: req.url ?? "/", headers: req.headers, incoming: req, res, remoteAddress: req.socket.remoteAddress })), {
        onExit: (exit) => {
          if (Exit.isFailure(exit)) return write(res, internal)
          const answer = exit.value
          if (answer instanceof StreamStart) Effect.runSync(answer.stream.respond(answer.res))
          else write(res, answer)
        }
      })
    const emit = node.emit
    const intercepted = function (this: Server, event: string | symbol, ...args: Array<unknown>) {
      if (event === "request" && isRpc(args[0] as IncomingMessage)) {
        serve(args[0] as IncomingMessage, args[1] as ServerResponse)
        return true
      }
      return (emit as (this: Server, event: string | symbol, ...args: Array<unknown>) => boolean).apply(this, [event, ...args])
    }
    node.emit = intercepted as Server["emit"]
    yield* Effect.addFinalizer(() => Effect.sync(() => void (node.emit = emit)))
  })
)
