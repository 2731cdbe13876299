import { Effect, Layer } from "effect"
import { HttpServer } from "@effect/platform"
import * as Store from "../eventlog/Store"
import * as Auth from "../server/Auth"
import * as HttpApp from "../server/HttpApp"
import * as Lifecycle from "../server/Lifecycle"
import * as ServerConfig from "../server/ServerConfig"
import * as Engine from "./Engine"

export interface ServeOptions extends Engine.EngineLayerOptions, Partial<ServerConfig.ServerOptions> {
  /** SQLite file of the event log and read model. */
  readonly db: string
  /** SQLite commit durability (default "full"). */
  readonly synchronous?: Store.SqliteSynchronous
  /** API keys and a JWT verifier; without any, authentication is off. */
  readonly auth?: Auth.AuthOptions
}

const isLoopback = (host: string) => host === "localhost" || host === "::1" || host.startsWith("127.")

/** Off is fine for the local quickstart, but say so when the server is reachable from elsewhere. */
const warnWhenOpen = (host: string) =>
  Layer.effectDiscard(
    Effect.flatMap(Auth.Authenticator, (auth) =>
      auth.enabled || isLoopback(host)
        ? Effect.void
        : Effect.logWarning(
            `authentication is off and the server listens on ${host}: anyone who can reach it can use every task. Configure API keys or a JWT issuer (see docs/auth.md), or bind --host 127.0.0.1`
          )
    )
  )

/**
 * The whole server: HTTP on top of the engine on top of the SQLite store.
 * Its output includes `HttpServer` so callers (tests) can read the bound port.
 */
export const layer = (options: ServeOptions) => {
  const { db, synchronous, agent, maxWorkers, recovery, instanceId, hubCapacity, push, auth, ...server } = options
  const config = ServerConfig.layer(server)
  const http = Lifecycle.layerHttp({
    port: server.port ?? ServerConfig.defaultServerOptions.port,
    host: server.host ?? ServerConfig.defaultServerOptions.host
  })
  const host = server.host ?? ServerConfig.defaultServerOptions.host
  return HttpServer.serve(HttpApp.app).pipe(
    HttpServer.withLogAddress,
    Layer.provideMerge(warnWhenOpen(host).pipe(Layer.provideMerge(Auth.layer(auth)))),
    Layer.provideMerge(http),
    Layer.provideMerge(config),
    Layer.provideMerge(Engine.layer({ agent, maxWorkers, recovery, instanceId, hubCapacity, push })),
    Layer.provideMerge(Store.layerSqlite(db, synchronous !== undefined ? { synchronous } : {}))
  )
}
