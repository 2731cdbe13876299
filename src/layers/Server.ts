import { Layer } from "effect"
import { HttpServer } from "@effect/platform"
import * as Store from "../eventlog/Store"
import * as HttpApp from "../server/HttpApp"
import * as Lifecycle from "../server/Lifecycle"
import * as ServerConfig from "../server/ServerConfig"
import * as Engine from "./Engine"

export interface ServeOptions extends Engine.EngineLayerOptions, Partial<ServerConfig.ServerOptions> {
  /** SQLite file of the event log and read model. */
  readonly db: string
  /** SQLite commit durability (default "full"). */
  readonly synchronous?: Store.SqliteSynchronous
}

/**
 * The whole server: HTTP on top of the engine on top of the SQLite store.
 * Its output includes `HttpServer` so callers (tests) can read the bound port.
 */
export const layer = (options: ServeOptions) => {
  const { db, synchronous, agent, maxWorkers, recovery, instanceId, hubCapacity, push, ...server } = options
  const config = ServerConfig.layer(server)
  const http = Lifecycle.layerHttp({
    port: server.port ?? ServerConfig.defaultServerOptions.port,
    host: server.host ?? ServerConfig.defaultServerOptions.host
  })
  return HttpServer.serve(HttpApp.app).pipe(
    HttpServer.withLogAddress,
    Layer.provideMerge(http),
    Layer.provideMerge(config),
    Layer.provideMerge(Engine.layer({ agent, maxWorkers, recovery, instanceId, hubCapacity, push })),
    Layer.provideMerge(Store.layerSqlite(db, synchronous !== undefined ? { synchronous } : {}))
  )
}
