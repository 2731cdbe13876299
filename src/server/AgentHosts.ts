import { Context, Effect, Layer } from "effect"
import type { EngineMetrics } from "../observability/Metrics.js"
import type { BoardData } from "../board/BoardData.js"
import type { Agent } from "../agent/Agent.js"
import { CurrentAgent } from "../engine/EngineConfig.js"
import type { TaskEngine } from "../engine/TaskEngine.js"
import type { PushConfigs } from "../push/PushConfigs.js"

/** What a request handler needs of the agent it addresses. */
export type HostServices = TaskEngine | PushConfigs | CurrentAgent | EngineMetrics | BoardData

/**
 * One agent as the HTTP server hosts it: its engine's services (each agent has
 * its own engine, store, worker limit and retention) and where its routes are.
 */
export interface AgentHost {
  /** The route name: `/agents/{name}/…`. */
  readonly name: string
  /** "" for the agent served at the server's root, `/agents/{name}` otherwise. */
  readonly basePath: string
  readonly agent: Agent
  /** @internal The agent's engine: the services its requests are handled with. */
  readonly context: Context.Context<HostServices>
}

/**
 * The agents this server hosts. `root` answers `/a2a` and the REST routes at
 * the root (the single-agent server); `named` answer under `/agents/{name}/`.
 * `card` is the agent whose card is at `/.well-known/agent-card.json`.
 */
export class AgentHosts extends Context.Tag("a2a-ledger/AgentHosts")<
  AgentHosts,
  {
    readonly root: AgentHost | undefined
    readonly named: ReadonlyMap<string, AgentHost>
    readonly card: AgentHost
  }
>() {}

const hostContext = Effect.context<HostServices>()

/** The single-agent server: the engine in the surrounding layer, at the root. */
export const layerRoot = Layer.effect(
  AgentHosts,
  Effect.gen(function* () {
    const context = yield* hostContext
    const agent = Context.get(context, CurrentAgent)
    const root: AgentHost = { name: slug(agent.name), basePath: "", agent, context }
    return { root, named: new Map(), card: root }
  })
)

/** A route name from an agent's display name ("Slow Worker" → "slow-worker"). */
export const slug = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "") || "agent"
