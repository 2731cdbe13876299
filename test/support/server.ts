import { HttpServer } from "@effect/platform"
import { Effect, Exit, Layer, Logger, LogLevel, Runtime, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Agent } from "../../src/agent/Agent"
import * as Server from "../../src/layers/Server"
import { freshSchema } from "./pg"

/** A fresh temporary directory for one test's SQLite files. */
export const tempDir = (prefix = "a2a-ledger-test-") => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** Which store the end-to-end suites run on: SQLite files, or PostgreSQL (A2A_TEST_STORE=postgres). */
export const storeKind: "sqlite" | "postgres" = process.env.A2A_TEST_STORE === "postgres" ? "postgres" : "sqlite"

/** A fresh, empty store of the kind under test: a SQLite file, or a PostgreSQL schema dropped by `drop`. */
export const testDb = async (name = "test.db"): Promise<{ readonly db: string; readonly drop: () => Promise<void> }> => {
  if (storeKind === "sqlite") return { db: path.join(tempDir(), name), drop: async () => {} }
  const schema = await freshSchema()
  return { db: schema.url, drop: () => schema.drop().then(() => undefined) }
}

export interface RunningServer {
  readonly url: string
  readonly db: string
  /** Run an effect inside the server's own services (its store's SqlClient, say): for fault injection. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, any>) => Promise<A>
  readonly close: () => Promise<void>
}

/** The real server, in this process, on a free port and a real SQLite file. */
export const startServer = async (
  options: { readonly agent: Agent; readonly db?: string } & Partial<Omit<Server.ServeOptions, "agent" | "db">>
): Promise<RunningServer> => {
  const store = options.db !== undefined ? { db: options.db, drop: async () => {} } : await testDb()
  const running = await launch(Server.layer({ port: 0, host: "127.0.0.1", keepAliveMs: 15_000, ...options, db: store.db }))
  return { ...running, db: store.db, close: () => running.close().then(store.drop) }
}

/** A several-agent server, in this process, on a free port; each agent on its own SQLite file. */
export const startAgentsServer = (options: Omit<Server.AgentsServeOptions, "port" | "host">) =>
  launch(Server.layerAgents({ port: 0, host: "127.0.0.1", ...options }))

const launch = async <E>(serverLayer: Layer.Layer<HttpServer.HttpServer, E>): Promise<Omit<RunningServer, "db">> => {
  const scope = Effect.runSync(Scope.make())
  const layer = serverLayer.pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Error)))
  const runtime = await Effect.runPromise(Layer.toRuntime(layer).pipe(Scope.extend(scope)))
  const server = Runtime.runSync(runtime)(HttpServer.HttpServer)
  const address = server.address as HttpServer.TcpAddress
  return {
    url: `http://127.0.0.1:${address.port}`,
    run: (effect) => Runtime.runPromise(runtime)(effect as Effect.Effect<any, any, never>),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
