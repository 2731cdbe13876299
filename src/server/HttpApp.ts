import { Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { CurrentAgent } from "../engine/EngineConfig"
import { agentCard, etagOf } from "./AgentCard"
import * as JsonRpc from "./JsonRpc"
import * as Rest from "./Rest"
import { Authenticator } from "./Auth"
import { ServerConfig } from "./ServerConfig"

const startedAt = new Date()
startedAt.setMilliseconds(0)

const baseUrl = (request: HttpServerRequest.HttpServerRequest, configured: string | undefined) =>
  configured?.replace(/\/$/, "") ?? `http://${request.headers["host"] ?? "localhost"}`

const card = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const agent = yield* CurrentAgent
  const config = yield* ServerConfig
  const auth = yield* Authenticator
  const body = JSON.stringify(agentCard(agent, baseUrl(request, config.publicUrl), auth.cardSecurity))
  const etag = etagOf(body)
  const headers = { etag, "cache-control": "public, max-age=300", "last-modified": startedAt.toUTCString(), vary: "Host" }
  if (request.headers["if-none-match"] === etag) return HttpServerResponse.empty({ status: 304, headers })
  return HttpServerResponse.text(body, { contentType: "application/json", headers })
})

export const router = HttpRouter.empty.pipe(
  HttpRouter.post("/a2a", JsonRpc.handle),
  HttpRouter.get("/.well-known/agent-card.json", card),
  // Everything else is the HTTP+JSON binding, which routes its own paths (and answers its own 404s).
  HttpRouter.all("/*", Rest.handle)
)

/** The whole HTTP app: every path reaches a handler (unknown ones get the REST binding's 404). */
export const app = router
