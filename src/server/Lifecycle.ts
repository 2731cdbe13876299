import { Context, Deferred, Effect, Layer } from "effect"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { HttpServer } from "@effect/platform"
import { createServer, type Server } from "node:http"

/**
 * Graceful shutdown. Request fibers are not children of the server's scope,
 * and `server.close()` waits for every open response, so an open SSE stream
 * would hold shutdown forever. On shutdown we first end every SSE stream,
 * then let `close()` finish in-flight requests, and after a grace period
 * cut what is left (a blocking SendMessage waiting on a long task, say).
 * Workers are not affected here: the engine's scope interrupts them, and
 * start-up recovery picks their tasks up again.
 */
/** The Node server underneath the platform's (FastRpc takes `POST /a2a` from it directly). */
export class NodeServer extends Context.Tag("a2a-ledger/NodeServer")<NodeServer, Server>() {}

export class ShuttingDown extends Context.Tag("a2a-ledger/ShuttingDown")<ShuttingDown, Deferred.Deferred<void>>() {}

export const layerHttp = (options: { readonly port: number; readonly host: string; readonly graceMs?: number }) =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const shuttingDown = yield* ShuttingDown
      const node = createServer()
      const server = yield* NodeHttpServer.make(() => node, { port: options.port, host: options.host })
      // Added after the server's own finalizer, so it runs first.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          yield* Deferred.succeed(shuttingDown, undefined)
          yield* Effect.sync(() => {
            node.closeIdleConnections()
            setTimeout(() => node.closeAllConnections(), options.graceMs ?? 2_000).unref()
          })
        })
      )
      return Context.make(HttpServer.HttpServer, server).pipe(Context.add(NodeServer, node))
    })
  ).pipe(Layer.provideMerge(Layer.effect(ShuttingDown, Deferred.make<void>())), Layer.merge(NodeHttpServer.layerContext))
