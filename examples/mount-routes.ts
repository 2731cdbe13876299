// Example 2: the agent's A2A routes mounted under /agents/echo in an existing @effect/platform HTTP server,
// next to the application's own routes. It starts the server, calls both the way clients would, and stops.
//
//   npm run build, then: npx tsx examples/mount-routes.ts [./data/example.db]
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"
import { type Agent, httpApp, layer, Outcome, routesLayer } from "a2a-ledger"

const echo: Agent = {
  name: "Echo",
  description: "Says it back.",
  version: "1.0.0",
  skills: [],
  run: (ctx) => Effect.succeed(Outcome.complete(`echo: ${ctx.input.parts[0]?.text ?? ""}`))
}

// The application's router: its own route, and the agent's A2A surface under a path.
const app = HttpRouter.empty.pipe(
  HttpRouter.get("/status", HttpServerResponse.unsafeJson({ app: "ok" })),
  HttpRouter.mountApp("/agents/echo", httpApp)
)

const ServerLive = HttpServer.serve(app).pipe(
  Layer.provide(routesLayer()),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
  Layer.provide(layer({ agent: echo, db: process.argv[2] ?? "./data/example-mount.db" }))
)

// What a client does: the app's route, the agent card, then a message over JSON-RPC.
const client = Effect.gen(function* () {
  const server = yield* HttpServer.HttpServer
  const base = `http://127.0.0.1:${(server.address as HttpServer.TcpAddress).port}`
  const get = <A>(path: string) => Effect.promise(() => fetch(`${base}${path}`).then((r) => r.json() as Promise<A>))
  const status = yield* get<{ app: string }>("/status")
  const card = yield* get<{ supportedInterfaces: Array<{ url: string }> }>("/agents/echo/.well-known/agent-card.json")
  const sent = yield* Effect.promise(() =>
    fetch(card.supportedInterfaces[0]!.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "SendMessage",
        params: { message: { messageId: crypto.randomUUID(), role: "ROLE_USER", parts: [{ text: "hi" }] } }
      })
    }).then((r) => r.json() as Promise<{ result: { task: { status: { message: { parts: Array<{ text: string }> } } } } }>)
  )
  return { status, jsonrpc: card.supportedInterfaces[0]!.url.replace(base, ""), reply: sent.result.task.status.message.parts[0]!.text }
})

// Built, used, released: the routes, the server and the engine stop in order when the scope closes.
const result = await Effect.runPromise(Effect.scoped(client.pipe(Effect.provide(ServerLive))))
console.log(JSON.stringify(result))
