import { createHash } from "node:crypto"
import type { Agent } from "../agent/Agent.js"

/** The public A2A v1.0 agent card for this server's agent. */
/** Whether the public card declares an extended card: the agent has one, and callers must authenticate to get it. */
export const hasExtendedCard = (agent: Agent, authenticated: boolean) => agent.extendedCard !== undefined && authenticated

/** The public card; its `capabilities.extendedAgentCard` is `hasExtendedCard` (security present: authentication on). */
export const agentCard = (
  agent: Agent,
  baseUrl: string,
  security: Readonly<Record<string, unknown>> = {},
  grpcAddress?: string
): Record<string, unknown> => ({
  name: agent.name,
  description: agent.description,
  version: agent.version,
  supportedInterfaces: [
    { url: `${baseUrl}/a2a`, protocolBinding: "JSONRPC", protocolVersion: "1.0" },
    { url: baseUrl, protocolBinding: "HTTP+JSON", protocolVersion: "1.0" },
    // `host:port`, as gRPC clients dial it (the spec's HEAD; v1.0.1's proto comment says a URL).
    ...(grpcAddress !== undefined ? [{ url: grpcAddress, protocolBinding: "GRPC", protocolVersion: "1.0" }] : []),
    // Last, so clients that take the first entry per binding use v1.0.
    { url: `${baseUrl}/a2a`, protocolBinding: "JSONRPC", protocolVersion: "0.3" }
  ],
  capabilities: { streaming: true, pushNotifications: true, extendedAgentCard: hasExtendedCard(agent, Object.keys(security).length > 0) },
  ...security,
  defaultInputModes: agent.defaultInputModes ?? ["text/plain"],
  defaultOutputModes: agent.defaultOutputModes ?? ["text/plain"],
  skills: agent.skills
})

/** The extended card (GetExtendedAgentCard): the public card with the extended description and skills. */
export const extendedAgentCard = (
  agent: Agent,
  baseUrl: string,
  security: Readonly<Record<string, unknown>>,
  grpcAddress?: string
): Record<string, unknown> => {
  const card = agentCard(agent, baseUrl, security, grpcAddress)
  const extended = agent.extendedCard ?? {}
  return {
    ...card,
    ...(extended.description !== undefined ? { description: extended.description } : {}),
    skills: [...agent.skills, ...(extended.skills ?? [])]
  }
}

/** A strong ETag from the card's bytes: it changes exactly when the card does. */
export const etagOf = (body: string): string => `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`
