import { Context, Data, Deferred, Effect, type Fiber, FiberId, Layer } from "effect"
import { HttpServer, HttpServerError, type HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { CurrentAgent } from "../engine/EngineConfig.js"
import { TaskEngine } from "../engine/TaskEngine.js"
import * as Store from "../eventlog/Store.js"
import { type AgentHost, AgentHosts, type HostServices, slug } from "../server/AgentHosts.js"
import * as Auth from "../server/Auth.js"
import * as HttpApp from "../server/HttpApp.js"
import { ShuttingDown } from "../server/Lifecycle.js"
import * as LiveStreams from "../server/LiveStreams.js"
import * as ServerConfig from "../server/ServerConfig.js"
import * as Embedded from "./Embedded.js"
import * as Server from "./Server.js"

/**
 * The package's Effect layers (`layer`, `serverLayer`, `routesLayer`): narrow versions of the composition
 * roots. Each outputs only public services, and fails with `EngineStartError`; the engine's internals (its
 * SqlClient, log, writer) stay inside, so they never meet an application's own services of the same kind.
 */

/** The engine could not start: its store could not be opened or migrated, for example. */
export class EngineStartError extends Data.TaggedError("EngineStartError")<{ readonly message: string; readonly cause: unknown }> {}

const startError = (db: string) => (cause: unknown) =>
  new EngineStartError({
    message: `the engine could not start on ${Store.describe(db)}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

/**
 * An engine as the HTTP layers serve it (`routesLayer`): opaque to applications. `layer` provides it
 * beside `TaskEngine`.
 */
export class A2AHost extends Context.Tag("a2a-ledger/A2AHost")<A2AHost, AgentHost>() {}

/** The engine's public services, taken from the whole of its context. */
const publicServices = Layer.effectContext(
  Effect.map(Effect.context<HostServices>(), (services) => {
    const agent = Context.get(services, CurrentAgent)
    const host: AgentHost = { name: slug(agent.name), basePath: "", agent, context: services }
    return Context.make(TaskEngine, Context.get(services, TaskEngine)).pipe(Context.add(A2AHost, host))
  })
)

/**
 * The engine on a store, for an Effect program: `TaskEngine` (send, get, list, cancel, watch), and the
 * `A2AHost` that `routesLayer` serves over HTTP. Building it opens the store (migrations included),
 * recovers unfinished tasks and starts the agent's workers; releasing it interrupts them. It requires
 * what the agent requires.
 */
export const layer = <R = never>(options: Embedded.EmbeddedOptions<R>): Layer.Layer<TaskEngine | A2AHost, EngineStartError, R> =>
  publicServices.pipe(Layer.provide(Embedded.layer(options)), Layer.mapError(startError(options.db)))

/**
 * The whole A2A server (what `a2a-ledger serve` runs) as a layer: HTTP on a port, the engine, the store.
 * Outputs the bound `HttpServer` (its address) and the `TaskEngine`.
 */
export const serverLayer = <R = never>(
  options: Server.ServeOptions<R>
): Layer.Layer<HttpServer.HttpServer | TaskEngine, EngineStartError | HttpServerError.ServeError, R> =>
  Layer.effectContext(
    Effect.map(Effect.context<HttpServer.HttpServer | TaskEngine>(), (services) =>
      Context.make(HttpServer.HttpServer, Context.get(services, HttpServer.HttpServer)).pipe(
        Context.add(TaskEngine, Context.get(services, TaskEngine))
      )
    )
  ).pipe(
    Layer.provide(Server.layer(options)),
    Layer.catchAll((error) => Layer.fail(error instanceof HttpServerError.ServeError ? error : startError(options.db)(error)))
  )

/** Settings of mounted A2A routes; as the server's options of the same names. */
export interface RoutesOptions {
  /** API keys and a JWT verifier; without any, authentication is off. */
  readonly auth?: Auth.AuthOptions
  /** The base URL the card advertises (the mount path is added); derived from each request's Host header when unset. */
  readonly publicUrl?: string
  readonly maxBodyBytes?: number
  readonly keepAliveMs?: number
  readonly maxStreamsPerPrincipal?: number
  /** At shutdown, how long in-flight requests (a blocking send, say) may take before they are answered 503. */
  readonly shutdownGraceMs?: number
}

/** The server's options among the routes' (authentication has a layer of its own). */
const serverOptions = ({ auth: _auth, ...server }: RoutesOptions): Partial<ServerConfig.ServerOptions> => server

/** The A2A routes of an engine, ready to mount (`httpApp`). */
export class A2ARoutes extends Context.Tag("a2a-ledger/A2ARoutes")<
  A2ARoutes,
  { readonly app: Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> }
>() {}

/**
 * The A2A routes of the engine `layer` provides (JSON-RPC at `POST {mount}/a2a`, HTTP+JSON, SSE, the card at
 * `{mount}/.well-known/agent-card.json` with the mount path in its URLs), for an application's own
 * `@effect/platform` server: mount `httpApp` under a path of its router.
 *
 * It requires the application's `HttpServer`, so it is released before the server closes: releasing it
 * ends every open stream of these routes, and interrupts requests still running after `shutdownGraceMs`
 * (the platform answers them 503), so that the server's close (which waits for every open response)
 * completes, and the engine's workers are interrupted as at any shutdown.
 */
export const routesLayer = (options: RoutesOptions = {}): Layer.Layer<A2ARoutes, never, A2AHost | HttpServer.HttpServer> =>
  Layer.scoped(
    A2ARoutes,
    Effect.gen(function* () {
      yield* HttpServer.HttpServer
      const host = yield* A2AHost
      const shuttingDown = yield* ShuttingDown
      const graceMs = options.shutdownGraceMs ?? ServerConfig.defaultServerOptions.shutdownGraceMs
      // The request fibers of these routes still running, to be interrupted (answered 503 by the platform)
      // when the grace after shutdown is over.
      const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
      yield* Effect.addFinalizer(() =>
        Deferred.succeed(shuttingDown, undefined).pipe(
          Effect.zipRight(
            Effect.forkDaemon(
              Effect.delay(
                Effect.sync(() => {
                  for (const fiber of running) fiber.unsafeInterruptAsFork(FiberId.none)
                }),
                graceMs
              )
            )
          )
        )
      )
      const context = (yield* Effect.context<ServerConfig.ServerConfig | Auth.Authenticator | LiveStreams.LiveStreams | ShuttingDown>()).pipe(
        Context.add(AgentHosts, { root: host, named: new Map(), card: host })
      )
      const routes = Effect.provide(HttpApp.app, context)
      const app = Effect.withFiberRuntime<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest>((fiber) => {
        running.add(fiber)
        return Effect.ensuring(
          routes,
          Effect.sync(() => running.delete(fiber))
        )
      })
      return { app }
    })
  ).pipe(
    Layer.provide(LiveStreams.layer),
    Layer.provide(Auth.layer(options.auth)),
    Layer.provide(ServerConfig.layer(serverOptions(options))),
    Layer.provide(Layer.effect(ShuttingDown, Deferred.make<void>()))
  )

/** The mountable A2A app: `HttpRouter.mountApp("/agents/summarizer", httpApp)`. Requires `routesLayer`. */
export const httpApp: Effect.Effect<HttpServerResponse.HttpServerResponse, never, A2ARoutes | HttpServerRequest.HttpServerRequest> = Effect.flatMap(
  A2ARoutes,
  (routes) => routes.app
)
