import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Cause, Effect, Exit, Layer, Logger, LogLevel, Option, Scope } from "effect"
import { createServer } from "node:http"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, expectTypeOf, it } from "vitest"
import { type Agent, anonymous, type EngineStartError, httpApp, layer, Outcome, routesLayer, TaskEngine, type A2AHost } from "../../src/index"
import { call, eventually, stream, userMessage } from "../support/rpc"
import { tempDir } from "../support/server"

/**
 * The package's Effect layers (issue 12): `layer` outputs the public services only, and the A2A routes
 * mount in an application's own @effect/platform server under a path, shutting down cleanly with it.
 */
const echo: Agent = {
  name: "Echo",
  description: "echoes",
  version: "1.0.0",
  skills: [],
  run: (ctx) =>
    ctx.input.parts[0]?.text === "slow"
      ? Effect.as(Effect.zipRight(ctx.progress("working"), Effect.never), Outcome.complete())
      : Effect.succeed(Outcome.complete(`echo: ${ctx.input.parts[0]?.text}`))
}

const quiet = Layer.provide(Logger.minimumLogLevel(LogLevel.None))

describe("layer: the engine for an Effect program", () => {
  it("outputs TaskEngine and A2AHost only, failing with EngineStartError", () => {
    const engine = layer({ agent: echo, db: ":memory:" })
    expectTypeOf<Layer.Layer.Success<typeof engine>>().toEqualTypeOf<TaskEngine | A2AHost>()
    expectTypeOf<Layer.Layer.Error<typeof engine>>().toEqualTypeOf<EngineStartError>()
    expectTypeOf<Layer.Layer.Context<typeof engine>>().toEqualTypeOf<never>()
  })

  it("keeps its SqlClient to itself: the application's own SqlClient still queries the application's database", async () => {
    const appDb = SqliteClient.layer({ filename: ":memory:" })
    const program = Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE app_things (id INTEGER)`
      const engine = yield* TaskEngine
      const outcome = yield* engine.sendAndSettle({ caller: anonymous, message: userMessage("hi") as never })
      const ledgerTables = yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE name LIKE 'a2a_%'`
      const appTables = yield* sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`
      return { state: outcome._tag === "Task" ? outcome.snapshot.task?.status.state : "message", ledgerTables, appTables }
    })
    const db = path.join(tempDir(), "ledger.db")
    // The engine's layer last: were its SqlClient among its outputs, it would replace the application's.
    const result = await Effect.runPromise(Effect.scoped(program.pipe(Effect.provide(Layer.merge(appDb, layer({ agent: echo, db }).pipe(quiet))))))
    expect(result).toEqual({ state: "TASK_STATE_COMPLETED", ledgerTables: [], appTables: [{ name: "app_things" }] })
  })

  it("a store that cannot be opened fails the layer with EngineStartError naming it", async () => {
    // Its directory would have to be made inside a file.
    const file = path.join(tempDir(), "a-file")
    fs.writeFileSync(file, "")
    const exit = await Effect.runPromiseExit(Effect.scoped(Layer.build(layer({ agent: echo, db: path.join(file, "ledger.db") }).pipe(quiet))))
    const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    expect(Option.getOrUndefined(error)).toMatchObject({
      _tag: "EngineStartError",
      message: expect.stringMatching(/could not start on \/.*a-file\/ledger\.db: cannot create the directory/)
    })
  })
})

describe("routesLayer and httpApp: A2A mounted in an application's own server", () => {
  /** The application: a route of its own, and the agent's routes under /agents/echo. */
  const start = async (db: string, shutdownGraceMs = 200) => {
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/hello", HttpServerResponse.text("the app's own route")),
      HttpRouter.mountApp("/agents/echo", httpApp)
    )
    // The engine is the app's, built before its HTTP server and released after it: the server's close
    // (which waits for every open response) comes first, while the engine's streams are still open.
    const main = HttpServer.serve(app).pipe(
      Layer.provide(routesLayer({ shutdownGraceMs })),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
      Layer.provide(layer({ agent: echo, db })),
      quiet
    )
    const scope = Effect.runSync(Scope.make())
    const context = await Effect.runPromise(Layer.buildWithScope(main, scope))
    const address = (await Effect.runPromise(Effect.provide(HttpServer.HttpServer, context))).address as HttpServer.TcpAddress
    return { base: `http://127.0.0.1:${address.port}`, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
  }

  it("serves the card where clients look for it, with the mount path in its URLs, next to the app's routes", async () => {
    const server = await start(path.join(tempDir(), "mounted.db"))
    try {
      expect(await (await fetch(`${server.base}/hello`)).text()).toBe("the app's own route")
      const card = (await (await fetch(`${server.base}/agents/echo/.well-known/agent-card.json`)).json()) as {
        name: string
        supportedInterfaces: Array<{ url: string; protocolBinding: string }>
      }
      expect(card.name).toBe("Echo")
      expect(card.supportedInterfaces.map((i) => i.url)).toEqual(
        expect.arrayContaining([`${server.base}/agents/echo/a2a`, `${server.base}/agents/echo`])
      )
      const agent = `${server.base}/agents/echo`
      const sent = (await call(agent, "SendMessage", { message: userMessage("mounted") })) as {
        task: { id: string; status: { state: string; message: { parts: Array<{ text: string }> } } }
      }
      expect(sent.task.status.message.parts).toEqual([{ text: "echo: mounted" }])
      const got = (await (await fetch(`${agent}/tasks/${sent.task.id}`)).json()) as { id: string; status: { state: string } }
      expect(got).toMatchObject({ id: sent.task.id, status: { state: "TASK_STATE_COMPLETED" } })
    } finally {
      await server.close()
    }
  })

  const slowTask = async (agent: string) => {
    const sse = await stream(agent, "SendStreamingMessage", { message: userMessage("slow") })
    const first = await sse.next()
    const taskId = first?.data.result.task?.id as string
    expect(typeof taskId).toBe("string")
    return { sse, taskId }
  }

  /** The task as an engine on the same store finds it, with recovery "fail": FAILED if it was left WORKING. */
  const leftWorking = async (db: string, taskId: string) => {
    const state = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(TaskEngine, (e) => e.get(taskId, anonymous)).pipe(Effect.provide(layer({ agent: echo, db, recovery: "fail" }).pipe(quiet)))
      )
    )
    expect(state.task?.status.state).toBe("TASK_STATE_FAILED")
  }

  it("shuts down with the app while a stream is open: the stream ends at once, not after the grace, and its task is picked up again", async () => {
    const db = path.join(tempDir(), "stream.db")
    const server = await start(db, 20_000)
    const { sse, taskId } = await slowTask(`${server.base}/agents/echo`)
    const started = Date.now()
    await server.close()
    expect(Date.now() - started).toBeLessThan(10_000)
    await sse.rest()
    await leftWorking(db, taskId)
  })

  it("shuts down with the app while a blocking send waits: it is answered 503 after the grace", async () => {
    const db = path.join(tempDir(), "blocking.db")
    const server = await start(db)
    const agent = `${server.base}/agents/echo`
    const blocking = fetch(`${agent}/a2a`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "SendMessage", params: { message: userMessage("slow") } })
    })
    // The send is in: its task is working.
    const listed = await eventually(
      () => call(agent, "ListTasks", { status: "TASK_STATE_WORKING" }) as Promise<{ tasks: Array<{ id: string }> }>,
      (r) => r.tasks.length === 1
    )
    await server.close()
    expect((await blocking).status).toBe(503)
    await leftWorking(db, listed.tasks[0]!.id)
  })
})
