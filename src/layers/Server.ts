import { Effect, Layer } from "effect"
import { HttpMiddleware, HttpServer } from "@effect/platform"
import * as Store from "../eventlog/Store.js"
import * as AgentHosts from "../server/AgentHosts.js"
import * as Auth from "../server/Auth.js"
import * as FastRpc from "../server/FastRpc.js"
import * as HttpApp from "../server/HttpApp.js"
import * as Lifecycle from "../server/Lifecycle.js"
import * as LiveStreams from "../server/LiveStreams.js"
import * as ServerConfig from "../server/ServerConfig.js"
import * as SigningKey from "../signing/SigningKey.js"
import * as Engine from "./Engine.js"
import * as GrpcServer from "../grpc/GrpcServer.js"
import * as HttpMetrics from "../observability/HttpMetrics.js"
import * as Metrics from "../observability/Metrics.js"

export interface ServeOptions<R = never> extends Engine.EngineLayerOptions<R>, Partial<ServerConfig.ServerOptions> {
  /** The store: a SQLite file, or a PostgreSQL URL (postgres://…). */
  readonly db: string
  /** SQLite commit durability (default "full"). */
  readonly synchronous?: Store.SqliteSynchronous
  /** API keys and a JWT verifier; without any, authentication is off. */
  readonly auth?: Auth.AuthOptions
  /** The key the card and the webhook calls are signed with, published at /.well-known/jwks.json (docs/signing.md). */
  readonly signing?: SigningKey.SigningOptions | undefined
}

const isLoopback = (host: string) => host === "localhost" || host === "::1" || host.startsWith("127.")

/** Off is fine for the local quickstart, but say so when the server is reachable from elsewhere. */
const warnWhenOpen = (host: string) =>
  Layer.effectDiscard(
    Effect.flatMap(Auth.Authenticator, (auth) =>
      auth.enabled || isLoopback(host)
        ? Effect.void
        : Effect.logWarning(
            `authentication is off and the server listens on ${host}: anyone who can reach it can use every task. Configure API keys or a JWT issuer (see docs/auth.md), or bind to 127.0.0.1 (--host, or the host option)`
          )
    )
  )

export type HttpOptions = Partial<ServerConfig.ServerOptions> & {
  readonly auth?: Auth.AuthOptions | undefined
  /** The key the card and the webhook calls are signed with, published at /.well-known/jwks.json (docs/signing.md). */
  readonly signing?: SigningKey.SigningOptions | undefined
}

/** The signing key under the engines (their webhooks) and the HTTP server (the card, the JWKS). */
const signingLayer = (options: HttpOptions) => SigningKey.layer(options.signing, options.publicUrl?.replace(/\/$/, "") ?? "a2a-ledger")

/** Paths never traced: health probes and metric scrapes, every few seconds each. */
const untraced = new Set(["/healthz", "/readyz", "/metrics"])

/** HTTP, configuration and authentication over whatever `AgentHosts` the caller provides. */
const http = ({ auth, signing: _signing, ...server }: HttpOptions) => {
  const host = server.host ?? ServerConfig.defaultServerOptions.host
  // `POST /a2a` is taken from node:http directly (FastRpc); everything else goes through the platform.
  // HttpMetrics wraps the Node server's requests after FastRpc has, so it sees every request first.
  return HttpMetrics.layer.pipe(
    Layer.provideMerge(Layer.merge(HttpServer.serve(HttpApp.app), FastRpc.layer)),
    // Beneath the HTTP app, which lists its address in the card.
    Layer.provideMerge(server.grpcPort === undefined ? Layer.empty : GrpcServer.layer({ port: server.grpcPort, host })),
    // No span per request while nothing records spans (no tracer is configured): the platform's span
    // parses the URL, copies the headers to redact them and reads a trace context, for every request.
    // With tracing on, the probes and the scrapes are left out too.
    HttpMiddleware.withTracerDisabledWhen(server.tracing === true ? (request) => untraced.has(request.url.split("?")[0]!) : () => true),
    HttpServer.withLogAddress,
    Layer.provideMerge(warnWhenOpen(host).pipe(Layer.provideMerge(Auth.layer(auth)))),
    Layer.provideMerge(LiveStreams.layer),
    Layer.provideMerge(
      Lifecycle.layerHttp({
        port: server.port ?? ServerConfig.defaultServerOptions.port,
        host,
        graceMs: server.shutdownGraceMs ?? ServerConfig.defaultServerOptions.shutdownGraceMs
      })
    ),
    Layer.provideMerge(ServerConfig.layer(server))
  )
}

/**
 * The whole single-agent server: HTTP on top of the engine on top of the
 * SQLite store, the agent at the root. Its output includes `HttpServer` so
 * callers (tests) can read the bound port.
 */
export const layer = <R = never>(options: ServeOptions<R>) => {
  const {
    db,
    synchronous,
    agent,
    maxWorkers,
    recovery,
    idempotency,
    idempotencyWindowMs,
    instanceId,
    hubCapacity,
    push,
    retentionMs,
    leaseMs,
    commitPollMs,
    storeTimeoutMs,
    parkSleepsFromMs,
    delegation,
    flowControl,
    metricsLabel,
    ...server
  } = options
  return http(server).pipe(
    Layer.provideMerge(AgentHosts.layerRoot),
    Layer.provideMerge(
      Engine.layer({
        agent,
        maxWorkers,
        recovery,
        idempotency,
        idempotencyWindowMs,
        instanceId,
        hubCapacity,
        push,
        retentionMs,
        leaseMs,
        commitPollMs,
        storeTimeoutMs,
        parkSleepsFromMs,
        delegation,
        flowControl,
        metricsLabel
      })
    ),
    Layer.provideMerge(
      Store.layer(db, { ...(synchronous !== undefined ? { synchronous } : {}), ...(storeTimeoutMs !== undefined ? { storeTimeoutMs } : {}) })
    ),
    Layer.provideMerge(Metrics.layerRegistry(server.metrics ?? true)),
    Layer.provideMerge(signingLayer(server))
  )
}

/**
 * The HTTP server alone, for an engine built elsewhere: its services (Engine.layer's output and the
 * store's) are this layer's requirements. `createLedger`'s `listen` starts it over its engine.
 */
export const layerOverEngine = (options: HttpOptions) => http(options).pipe(Layer.provideMerge(AgentHosts.layerRoot))

/** One agent of a several-agent server: its route name, its own store, its own engine settings. */
export interface HostedAgent extends Engine.EngineLayerOptions {
  /** Route name: `/agents/{name}/…`. */
  readonly name: string
  /** Its store (SQLite file or PostgreSQL URL); no two agents may share one. */
  readonly db: string
}

export interface AgentsServeOptions extends HttpOptions {
  readonly agents: ReadonlyArray<HostedAgent>
  readonly synchronous?: Store.SqliteSynchronous
}

/**
 * A server hosting several agents, each under `/agents/{name}/` with its own
 * engine and store (so its own worker limit, recovery and retention); the
 * first agent's card is also served at `/.well-known/agent-card.json`.
 */
export const layerAgents = (options: AgentsServeOptions) => {
  const { agents, synchronous, ...server } = options
  const hosts = Layer.scoped(
    AgentHosts.AgentHosts,
    Effect.gen(function* () {
      const named = new Map<string, AgentHosts.AgentHost>()
      for (const { name, db, ...engine } of agents) {
        const context = yield* Layer.build(
          Engine.layer({ metricsLabel: name, ...engine }).pipe(
            Layer.provideMerge(
              Store.layer(db, {
                ...(synchronous !== undefined ? { synchronous } : {}),
                ...(engine.storeTimeoutMs !== undefined ? { storeTimeoutMs: engine.storeTimeoutMs } : {})
              })
            )
          )
        )
        named.set(name, { name, basePath: `/agents/${encodeURIComponent(name)}`, agent: engine.agent, context })
      }
      const first = named.values().next().value
      if (first === undefined) return yield* Effect.dieMessage("a several-agent server needs at least one agent")
      return { root: undefined, named, card: first }
    })
  )
  return http(server).pipe(
    Layer.provideMerge(hosts),
    Layer.provideMerge(Metrics.layerRegistry(server.metrics ?? true)),
    Layer.provideMerge(signingLayer(server))
  )
}
