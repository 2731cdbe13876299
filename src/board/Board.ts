import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Deferred, Effect, Either, Option, Schedule, Stream } from "effect"
import { type AgentHost, AgentHosts } from "../server/AgentHosts.js"
import { Authenticator, challenge } from "../server/Auth.js"
import { ShuttingDown } from "../server/Lifecycle.js"
import { ServerConfig } from "../server/ServerConfig.js"
import { A2AError, Errors, errorDetails } from "../protocol/errors.js"
import { BoardData } from "./BoardData.js"
import { page } from "./page.js"

/**
 * The operator's board at `/board`: one HTML page (page.ts: no framework, no CDN, works offline) and the
 * JSON and SSE endpoints it reads under `/board/api/`. Who may use it (ServerConfig.board):
 * - with authentication on, admins only (`auth.admins`): the page asks for a key and sends it on every call;
 * - without it, only from the machine itself (a loopback address), unless `--board open`;
 * - `--board off`: 404.
 * Its actions (cancel, answer, redeliver) go through the engine as the task's own caller would.
 */

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status, headers: { "cache-control": "no-store" } })

const fail = (error: A2AError, extra: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(
    { error: { code: error.spec.httpStatus, status: error.spec.grpcStatus, message: error.message, details: errorDetails(error) } },
    { status: error.spec.httpStatus, headers: { "cache-control": "no-store", ...extra } }
  )

const notFound = (message: string) => new A2AError({ ...Errors.TaskNotFound, httpStatus: 404, grpcStatus: "NOT_FOUND" }, message)
const badRequest = (field: string, description: string) =>
  new A2AError(Errors.InvalidParams, `Invalid parameters: ${field}: ${description}`, { field }, [{ field, description }])

const isLoopback = (address: string | undefined) =>
  address !== undefined && (address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127."))

/** Whether this request may use the board; an error answer when not. */
const admitted = (data: boolean) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const config = yield* ServerConfig
    const auth = yield* Authenticator
    if (config.board === "off") return Either.left(fail(notFound("The board is off on this server (--board off)")))
    if (auth.enabled) {
      // The page itself holds no data: it is served to anyone, and asks for an admin's key.
      if (!data) return Either.right(undefined)
      const admin = yield* Effect.either(auth.authenticateAdmin(request.headers))
      if (Either.isLeft(admin)) {
        return Either.left(fail(admin.left, admin.left.spec === Errors.Unauthenticated ? { "www-authenticate": challenge } : {}))
      }
      return Either.right(undefined)
    }
    if (config.board === "local" && !isLoopback(Option.getOrUndefined(request.remoteAddress))) {
      return Either.left(
        fail(
          new A2AError(
            Errors.PermissionDenied,
            "Without authentication the board is open only to this machine (a loopback address); configure admins (docs/auth.md) or start the server with --board open"
          )
        )
      )
    }
    return Either.right(undefined)
  })

const hostsOf = Effect.map(AgentHosts, (hosts) => (hosts.root !== undefined ? [hosts.root, ...hosts.named.values()] : [...hosts.named.values()]))

/** The agent a request names (`?agent=`), or the only one / the root. */
const hostFor = (url: URL) =>
  Effect.map(hostsOf, (all): Either.Either<AgentHost, A2AError> => {
    const name = url.searchParams.get("agent")
    const host = name === null || name === "" ? all[0] : all.find((h) => h.name === name)
    return host !== undefined ? Either.right(host) : Either.left(notFound(`No agent named ${name} on this server`))
  })

const withData = <A, E>(host: AgentHost, f: (data: typeof BoardData.Service) => Effect.Effect<A, E>) =>
  Effect.provide(Effect.flatMap(BoardData, f), host.context)

const body = Effect.flatMap(HttpServerRequest.HttpServerRequest, (r) => Effect.orElseSucceed(r.json, () => ({}) as unknown))

const positive = (text: string | null, field: string, fallback: number, max: number): Either.Either<number, A2AError> => {
  if (text === null || text === "") return Either.right(fallback)
  const n = Number(text)
  return Number.isInteger(n) && n > 0 && n <= max ? Either.right(n) : Either.left(badRequest(field, `must be an integer from 1 to ${max}`))
}

/** The live feed: every commit of every hosted agent, as `{agent, taskId, version, type}`, until the client goes or the server stops. */
const stream = Effect.gen(function* () {
  const all = yield* hostsOf
  const shuttingDown = yield* ShuttingDown
  const events = Stream.async<string>((emit) => {
    const stops = all.map((host) =>
      Effect.runSync(
        withData(host, (data) =>
          Effect.sync(() =>
            // A commit of this process, or one another process announced (its type unknown here).
            data.listen((commit) => void emit.single(`data: ${JSON.stringify({ agent: host.name, ...commit })}\n\n`))
          )
        )
      )
    )
    return Effect.sync(() => {
      for (const stop of stops) stop()
    })
  })
  const keepAlive = Stream.fromSchedule(Schedule.spaced("15 seconds")).pipe(Stream.as(": keep-alive\n\n"))
  const encoder = new TextEncoder()
  const body = Stream.make(": connected\n\n").pipe(
    Stream.concat(Stream.merge(events, keepAlive)),
    Stream.interruptWhen(Deferred.await(shuttingDown)),
    Stream.map((s) => encoder.encode(s))
  )
  return HttpServerResponse.stream(body, {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
  })
})

/** `/board` and `/board/api/…`; a store that fails answers 503, naming it, as the A2A routes do. */
export const handle = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const url = new URL(request.url, "http://localhost")
  const path = url.pathname.replace(/\/+$/, "")
  const data = path !== "/board"
  const access = yield* admitted(data)
  if (Either.isLeft(access)) return access.left
  if (!data) {
    if (request.method !== "GET") return fail(notFound(`No route for ${request.method} ${path}`))
    return HttpServerResponse.text(page, { contentType: "text/html; charset=utf-8", headers: { "cache-control": "no-store" } })
  }
  const route = `${request.method} ${path}`
  if (route === "GET /board/api/agents") {
    return json({ agents: (yield* hostsOf).map((h) => ({ name: h.name, title: h.agent.name, path: h.basePath === "" ? "/" : h.basePath })) })
  }
  if (route === "GET /board/api/stream") return yield* stream
  const host = yield* hostFor(url)
  if (Either.isLeft(host)) return fail(host.left)
  const on = host.right
  const id = url.searchParams.get("id") ?? ""
  switch (route) {
    case "GET /board/api/overview":
      return json(yield* withData(on, (d) => d.overview(Date.now())))
    case "GET /board/api/instances":
      return json(yield* withData(on, (d) => d.instances(Date.now())))
    case "GET /board/api/dead-letters":
      return json({ deliveries: yield* withData(on, (d) => d.deadLetters) })
    case "POST /board/api/redeliver": {
      const ids = ((yield* body) as { ids?: unknown }).ids
      if (!Array.isArray(ids) || !ids.every((i) => Number.isInteger(i))) return fail(badRequest("ids", "must be an array of delivery ids"))
      return json({ requeued: yield* withData(on, (d) => d.redeliver(ids as Array<number>)) })
    }
    case "GET /board/api/tasks": {
      const pageSize = positive(url.searchParams.get("pageSize"), "pageSize", 50, 500)
      if (Either.isLeft(pageSize)) return fail(pageSize.left)
      const q = (name: string) => {
        const v = url.searchParams.get(name)
        return v === null || v === "" ? undefined : v
      }
      const state = q("state")
      const contextId = q("contextId")
      const tenant = url.searchParams.get("tenant")
      const after = q("after")
      return json(
        yield* withData(on, (d) =>
          d.list({
            pageSize: pageSize.right,
            ...(state !== undefined ? { state } : {}),
            ...(contextId !== undefined ? { contextId } : {}),
            ...(tenant !== null && tenant !== "*" ? { tenant } : {}),
            ...(after !== undefined ? { after } : {})
          })
        )
      )
    }
    case "GET /board/api/task": {
      const versionText = url.searchParams.get("version")
      const version = versionText === null || versionText === "" ? undefined : Number(versionText)
      if (version !== undefined && !(Number.isInteger(version) && version > 0)) return fail(badRequest("version", "must be a positive integer"))
      const found = yield* withData(on, (d) => d.task(id, version))
      return Option.isSome(found) ? json(found.value) : fail(notFound(`Task ${id} not found`))
    }
    case "POST /board/api/cancel": {
      const done = yield* Effect.either(withData(on, (d) => d.cancel(id)))
      if (Either.isLeft(done)) return fail(new A2AError(Errors.TaskNotCancelable, `Task ${id} cannot be canceled: ${describe(done.left)}`))
      return Option.isSome(done.right) ? json({ state: done.right.value.task.status.state }) : fail(notFound(`Task ${id} not found`))
    }
    case "POST /board/api/answer": {
      const text = ((yield* body) as { text?: unknown }).text
      if (typeof text !== "string" || text.trim() === "") return fail(badRequest("text", "must be a non-empty string"))
      const sent = yield* Effect.either(withData(on, (d) => d.answer(id, text)))
      if (Either.isLeft(sent)) return fail(new A2AError(Errors.UnsupportedOperation, `Task ${id} cannot take an answer: ${describe(sent.left)}`))
      return Option.isSome(sent.right) ? json({ ok: true }) : fail(notFound(`Task ${id} not found`))
    }
    default:
      return fail(notFound(`No route for ${route}`))
  }
}).pipe(
  Effect.catchAllCause((cause) =>
    Effect.as(
      Effect.logWarning("the board could not answer", cause),
      fail(new A2AError(Errors.StoreUnavailable, `The board could not answer: ${describe(Cause.squash(cause))}`))
    )
  )
)

const describe = (e: unknown) =>
  e instanceof Error || (typeof e === "object" && e !== null && "message" in e) ? String((e as { message: unknown }).message) : String(e)
