import { createHash } from "node:crypto"
import type { Agent } from "../agent/Agent.js"

/** The public A2A v1.0 agent card for this server's agent. */
export const agentCard = (agent: Agent, baseUrl: string, security: Readonly<Record<string, unknown>> = {}): Record<string, unknown> => ({
  name: agent.name,
  description: agent.description,
  version: agent.version,
  supportedInterfaces: [
    { url: `${baseUrl}/a2a`, protocolBinding: "JSONRPC", protocolVersion: "1.0" },
    { url: baseUrl, protocolBinding: "HTTP+JSON", protocolVersion: "1.0" },
    // Last, so clients that take the first entry per binding use v1.0.
    { url: `${baseUrl}/a2a`, protocolBinding: "JSONRPC", protocolVersion: "0.3" }
  ],
  capabilities: { streaming: true, pushNotifications: true, extendedAgentCard: false },
  ...security,
  defaultInputModes: agent.defaultInputModes ?? ["text/plain"],
  defaultOutputModes: agent.defaultOutputModes ?? ["text/plain"],
  skills: agent.skills
})

/** A strong ETag from the card's bytes: it changes exactly when the card does. */
export const etagOf = (body: string): string => `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`
