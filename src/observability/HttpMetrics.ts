import { Effect, Layer } from "effect"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import type * as Prom from "prom-client"
import { NodeServer } from "../server/Lifecycle.js"
import { MetricsRegistry } from "./Metrics.js"

/**
 * `http_server_request_duration_seconds` for every request the Node server takes, whichever path answers
 * it (the platform's router, or FastRpc's direct `POST /a2a`): this layer sees each request first, from
 * the server's `emit`, and times it until its response closes. Labels follow OpenTelemetry's HTTP
 * semantic conventions; `http_route` is the route's template (`/tasks/{id}`), never the path itself, so
 * ids do not become label values. A path no route matches has an empty route (Prometheus: no label).
 */

const fixed = new Set(["/a2a", "/healthz", "/readyz", "/metrics", "/.well-known/agent-card.json", "/agents"])

/** The HTTP+JSON binding's template for a path's segments (Rest.ts's routes), if it is one of them. */
const restTemplate = (s: ReadonlyArray<string>): string | undefined => {
  const [a, b, c] = s
  if (s.length === 1 && (a === "message:send" || a === "message:stream" || a === "tasks" || a === "extendedAgentCard")) return `/${a}`
  if (a !== "tasks" || b === undefined || b === "") return undefined
  if (s.length === 2) return b.endsWith(":cancel") ? "/tasks/{id}:cancel" : b.endsWith(":subscribe") ? "/tasks/{id}:subscribe" : "/tasks/{id}"
  if (c !== "pushNotificationConfigs") return undefined
  if (s.length === 3) return "/tasks/{id}/pushNotificationConfigs"
  if (s.length === 4) return "/tasks/{id}/pushNotificationConfigs/{configId}"
  return undefined
}

/** A path's route template, "" when no route matches it. */
export const routeOf = (url: string): string => {
  const q = url.indexOf("?")
  const path = q === -1 ? url : url.slice(0, q)
  if (fixed.has(path)) return path
  let segments = path.split("/").slice(1)
  if (segments[segments.length - 1] === "") segments = segments.slice(0, -1)
  let prefix = ""
  if (segments[0] === "agents" && segments.length >= 3) {
    prefix = "/agents/{agent}"
    segments = segments.slice(2)
    const rest = `/${segments.join("/")}`
    if (rest === "/a2a" || rest === "/.well-known/agent-card.json") return prefix + rest
  }
  const plain = restTemplate(segments)
  if (plain !== undefined) return prefix + plain
  const tenanted = segments.length > 1 ? restTemplate(segments.slice(1)) : undefined
  return tenanted !== undefined ? `${prefix}/{tenant}${tenanted}` : ""
}

export const layer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const registry = yield* Effect.serviceOption(MetricsRegistry)
    if (registry._tag === "None") return
    const node = yield* NodeServer
    const histogram = registry.value.families.httpDuration
    // One label child per method, route and status: a request only looks its child up.
    const children = new Map<string, Prom.Histogram.Internal<string>>()
    const observe = (req: IncomingMessage, res: ServerResponse) => {
      const began = performance.now()
      res.once("close", () => {
        const method = req.method ?? "_OTHER"
        const route = routeOf(req.url ?? "/")
        const status = String(res.statusCode)
        const key = `${method} ${route} ${status}`
        let child = children.get(key)
        if (child === undefined) {
          child = histogram.labels({ http_request_method: method, http_route: route, http_response_status_code: status })
          children.set(key, child)
        }
        child.observe((performance.now() - began) / 1000)
      })
    }
    const emit = node.emit
    const observed = function (this: Server, event: string | symbol, ...args: Array<unknown>) {
      if (event === "request") observe(args[0] as IncomingMessage, args[1] as ServerResponse)
      return (emit as (this: Server, event: string | symbol, ...args: Array<unknown>) => boolean).apply(this, [event, ...args])
    }
    node.emit = observed as Server["emit"]
    yield* Effect.addFinalizer(() => Effect.sync(() => void (node.emit = emit)))
  })
)
