import { Context, Effect } from "effect"
import type { Agent } from "../agent/Agent.js"

/**
 * Where the gRPC server listens, once it does: its port (for a port 0, the one the system chose), and the
 * agent it serves (on a server of several agents, the one whose card is at the root), as its engine's
 * `CurrentAgent` has it.
 */
export class GrpcAddress extends Context.Tag("a2a-ledger/GrpcAddress")<GrpcAddress, { readonly port: number; readonly agent: Agent }>() {}

/**
 * The gRPC binding's `host:port` for `agent`'s cards, where gRPC is on and serves that agent: the host of the
 * base URL, the gRPC server's port.
 */
export const grpcAddressOf = (base: string, agent: Agent) =>
  Effect.map(Effect.serviceOption(GrpcAddress), (address) =>
    address._tag === "None" || address.value.agent !== agent ? undefined : `${new URL(base).hostname}:${address.value.port}`
  )
