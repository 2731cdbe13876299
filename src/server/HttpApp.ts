import { Context, Deferred, Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { A2AError, errorDetails, Errors } from "../protocol/errors.js"
import { agentCard, etagOf } from "./AgentCard.js"
import { type AgentHost, AgentHosts } from "./AgentHosts.js"
import { TaskEngine } from "../engine/TaskEngine.js"
import { Authenticator, challenge } from "./Auth.js"
import { ShuttingDown } from "./Lifecycle.js"
import * as JsonRpc from "./JsonRpc.js"
import * as Rest from "./Rest.js"
import { ServerConfig } from "./ServerConfig.js"
import { SigningKey, signedCard } from "../signing/SigningKey.js"
import { exposition, MetricsRegistry } from "../observability/Metrics.js"
import * as Board from "../board/Board.js"
import { CurrentAgent } from "../engine/EngineConfig.js"
import { grpcAddressOf } from "../grpc/GrpcAddress.js"

const startedAt = new Date()
startedAt.setMilliseconds(0)

const baseUrl = (request: HttpServerRequest.HttpServerRequest, configured: string | undefined) =>
  configured?.replace(/\/$/, "") ?? `http://${request.headers.host ?? "localhost"}`

/**
 * The path an application mounted these routes under (`HttpRouter.mountApp` strips it from the request's
 * URL, not from its original URL): "" when they are served at the root.
 */
const mountPath = (request: HttpServerRequest.HttpServerRequest) => {
  const original = request.originalUrl.split("?")[0]!
  const current = request.url.split("?")[0]!
  return original !== current && original.endsWith(current) ? original.slice(0, original.length - current.length) : ""
}

const serverBase = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const config = yield* ServerConfig
  return { request, base: baseUrl(request, config.publicUrl) + mountPath(request) }
})

/** Where the server's public keys are, for a base URL of it. */
export const jwksUrl = (base: string) => `${base}/.well-known/jwks.json`

/** An agent's public card, with its interfaces under the agent's base path. */
const card = (host: AgentHost) =>
  Effect.gen(function* () {
    const { request, base } = yield* serverBase
    const auth = yield* Authenticator
    const grpc = yield* grpcAddressOf(base, Context.get(host.context, CurrentAgent))
    const body = JSON.stringify(yield* signedCard(agentCard(host.agent, `${base}${host.basePath}`, auth.cardSecurity, grpc), jwksUrl(base)))
    const etag = etagOf(body)
    const headers = { etag, "cache-control": "public, max-age=300", "last-modified": startedAt.toUTCString(), vary: "Host" }
    if (request.headers["if-none-match"] === etag) return HttpServerResponse.empty({ status: 304, headers })
    return HttpServerResponse.text(body, { contentType: "application/json", headers })
  })

/**
 * `GET /agents`: every hosted agent, with where to find its card and endpoints.
 * With authentication on, it needs a credential like every other call: the
 * names of the agents are not public (their cards are, as the spec wants).
 */
const catalog = Effect.gen(function* () {
  const { request, base } = yield* serverBase
  const principal = yield* Effect.either((yield* Authenticator).authenticate(request.headers))
  if (principal._tag === "Left") return statusError(principal.left, 401, { "www-authenticate": challenge })
  const hosts = yield* AgentHosts
  const all = hosts.root !== undefined ? [hosts.root, ...hosts.named.values()] : [...hosts.named.values()]
  return HttpServerResponse.unsafeJson({
    agents: all.map((h) => ({
      name: h.name,
      displayName: h.agent.name,
      description: h.agent.description,
      version: h.agent.version,
      card: `${base}${h.basePath}/.well-known/agent-card.json`,
      jsonrpc: `${base}${h.basePath}/a2a`,
      rest: `${base}${h.basePath}`
    }))
  })
})

/** Nothing at this path: a REST-style 404. */
const notFound = (message: string) => new A2AError({ ...Errors.MethodNotFound, httpStatus: 404, grpcStatus: "NOT_FOUND" }, message)

const noAgent = (what: string) => notFound(`${what}: this server hosts several agents, each under /agents/{name}/; GET /agents lists them`)

/** A `google.rpc.Status` answer whose `code` is its HTTP status. */
const statusError = (error: A2AError, status: number, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(
    { error: { code: status, status: error.spec.grpcStatus, message: error.message, details: errorDetails(error) } },
    { status, headers }
  )

const restNotFound = (error: A2AError) => statusError(error, 404)

/** `/agents/{name}/…`: the same three surfaces as the root (card, JSON-RPC, REST), for one named agent. */
const perAgent = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const hosts = yield* AgentHosts
  const segments = new URL(request.url, "http://localhost").pathname.split("/").slice(1)
  const name = decodeURIComponent(segments[1] ?? "")
  const host = hosts.named.get(name)
  if (host === undefined) {
    const what = `No agent named ${JSON.stringify(name)}`
    return restNotFound(
      hosts.root !== undefined
        ? notFound(`${what}: this server hosts one agent, at the root (POST /a2a, /.well-known/agent-card.json, the REST routes)`)
        : noAgent(what)
    )
  }
  const rest = segments.slice(2)
  if (rest.length === 1 && rest[0] === "a2a" && request.method === "POST") return yield* Effect.provide(JsonRpc.handle, host.context)
  if (rest.length === 2 && rest[0] === ".well-known" && rest[1] === "agent-card.json" && request.method === "GET") return yield* card(host)
  return yield* Effect.provide(Rest.handleAt(2), host.context)
})

const rootJsonRpc = Effect.flatMap(AgentHosts, (hosts) =>
  hosts.root !== undefined
    ? Effect.provide(JsonRpc.handle, hosts.root.context)
    : Effect.succeed(
        HttpServerResponse.unsafeJson(
          { jsonrpc: "2.0", id: null, error: { code: Errors.MethodNotFound.code, message: noAgent("POST /a2a").message } },
          { status: 404 }
        )
      )
)

/**
 * `/v1/…`: the Hector-style surface (docs/protocol.md#hector-style-routes). `/v1/agents/{name}/…` addresses
 * an agent by its route name (on a single-agent server, its own); the other `/v1/…` routes address the
 * root agent, or on a several-agent server the one whose card is at the root.
 */
const hector = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const hosts = yield* AgentHosts
  const segments = new URL(request.url, "http://localhost").pathname.split("/").slice(2)
  if (segments[0] !== "agents" || segments.length < 3) return yield* Effect.provide(Rest.handleAt(1, "hector"), (hosts.root ?? hosts.card).context)
  const name = decodeURIComponent(segments[1] ?? "")
  const host = hosts.named.get(name) ?? (hosts.root?.name === name ? hosts.root : undefined)
  if (host === undefined) {
    const names = hosts.root !== undefined ? [hosts.root.name] : [...hosts.named.keys()]
    return restNotFound(notFound(`No agent named ${JSON.stringify(name)}: this server hosts ${names.map((n) => JSON.stringify(n)).join(", ")}`))
  }
  return yield* Effect.provide(Rest.handleAt(3, "hector"), host.context)
})

const rootRest = Effect.flatMap(AgentHosts, (hosts) =>
  hosts.root !== undefined ? Effect.provide(Rest.handle, hosts.root.context) : Effect.succeed(restNotFound(noAgent("No agent at the root")))
)

/**
 * `GET /metrics`: the Prometheus text format (Metrics.ts). With authentication on, for admins only
 * (`auth.admins`); 404 where the server runs without metrics.
 */
const metrics = Effect.gen(function* () {
  const registry = yield* Effect.serviceOption(MetricsRegistry)
  if (registry._tag === "None") return restNotFound(notFound("Metrics are off on this server"))
  const request = yield* HttpServerRequest.HttpServerRequest
  const admin = yield* Effect.either((yield* Authenticator).authenticateAdmin(request.headers))
  if (admin._tag === "Left") {
    const error = admin.left
    return statusError(error, error.spec.httpStatus, error.spec === Errors.Unauthenticated ? { "www-authenticate": challenge } : {})
  }
  const { body, contentType } = yield* exposition(registry.value.registry)
  return HttpServerResponse.text(body, { contentType, headers: { "cache-control": "no-store" } })
})

/**
 * `GET /.well-known/jwks.json`: the public key the card and the webhook calls are signed with (RFC 7517),
 * for clients and webhook receivers to verify them; 404 on a server without a signing key.
 */
const jwks = Effect.flatMap(Effect.serviceOption(SigningKey), (key) =>
  key._tag === "None"
    ? Effect.succeed(restNotFound(notFound("This server has no signing key (docs/signing.md): nothing it sends is signed")))
    : Effect.succeed(
        HttpServerResponse.text(JSON.stringify(key.value.jwks), {
          contentType: "application/jwk-set+json",
          headers: { "cache-control": "public, max-age=300" }
        })
      )
)

/** `GET /healthz`: the process is up and answers HTTP (liveness). */
const healthz = Effect.succeed(HttpServerResponse.unsafeJson({ status: "ok" }))

/**
 * `GET /readyz`: every hosted agent's store takes commits and answers a query,
 * and the server is not shutting down (readiness). 503 names what is not ready.
 */
const readyz = Effect.gen(function* () {
  const hosts = yield* AgentHosts
  if (yield* Deferred.isDone(yield* ShuttingDown)) {
    return HttpServerResponse.unsafeJson({ status: "unavailable", reason: "the server is shutting down" }, { status: 503 })
  }
  const all = hosts.root !== undefined ? [hosts.root, ...hosts.named.values()] : [...hosts.named.values()]
  const checks = yield* Effect.forEach(
    all,
    (h) =>
      Effect.map(
        Effect.provide(
          Effect.flatMap(TaskEngine, (e) => e.readiness),
          h.context
        ),
        (health) => ({ name: h.name, health })
      ),
    { concurrency: "unbounded" }
  )
  const stores = Object.fromEntries(checks.map((c) => [c.name, c.health.ok ? "ok" : c.health.reason]))
  const failing = checks.flatMap((c) => (c.health.ok ? [] : [`${c.name}: ${c.health.reason}`]))
  if (failing.length === 0) return HttpServerResponse.unsafeJson({ status: "ready", stores })
  return HttpServerResponse.unsafeJson(
    { status: "unavailable", reason: `the task store is unavailable (${failing.join("; ")})`, stores },
    { status: 503 }
  )
})

export const router = HttpRouter.empty.pipe(
  HttpRouter.get("/healthz", healthz),
  HttpRouter.get("/readyz", readyz),
  HttpRouter.get("/metrics", metrics),
  HttpRouter.all("/board", Board.handle),
  HttpRouter.all("/board/*", Board.handle),
  HttpRouter.post("/a2a", rootJsonRpc),
  HttpRouter.get(
    "/.well-known/agent-card.json",
    Effect.flatMap(AgentHosts, (hosts) => card(hosts.card))
  ),
  HttpRouter.get("/.well-known/jwks.json", jwks),
  HttpRouter.get("/agents", catalog),
  HttpRouter.all("/agents/*", perAgent),
  HttpRouter.all("/v1/*", hector),
  // Everything else is the HTTP+JSON binding, which routes its own paths (and answers its own 404s).
  HttpRouter.all("/*", rootRest)
)

/**
 * The whole HTTP app: every path reaches a handler (unknown ones get the REST
 * binding's 404). A path the router cannot even read (bad percent-encoding,
 * `/tasks/%ff`) gets a Status body too: 400, naming the path.
 */
export const app = router.pipe(
  Effect.catchTag("RouteNotFound", (e) => {
    const path = e.request.url.split("?")[0] ?? e.request.url
    let decodable = true
    try {
      decodeURIComponent(path)
    } catch {
      decodable = false
    }
    return Effect.succeed(
      decodable
        ? restNotFound(notFound(`No route for ${e.request.method} ${path}`))
        : statusError(new A2AError(Errors.InvalidRequest, `Invalid request: the path ${path} is not valid percent-encoding`), 400)
    )
  })
)
