import { AgentEvent, type AgentExecutor, DefaultRequestHandler, InMemoryTaskStore } from "@a2a-js/sdk/server"
import { agentCardHandler, jsonRpcHandler, UserBuilder } from "@a2a-js/sdk/server/express"
import express from "express"
import type { Server } from "node:http"

/**
 * The official A2A server (@a2a-js/sdk, in memory, behind express) in this process on a free port, with
 * the given executor: a second opinion on how a2a-ledger talks to other A2A servers (delegation).
 */
export const startSdkServer = async (executor: AgentExecutor) => {
  const app = express()
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s))
  })
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const card = {
    name: "SDK agent",
    description: "The official SDK's server, for interoperability tests",
    version: "1.0.0",
    supportedInterfaces: [{ url: `${url}/a2a`, protocolBinding: "JSONRPC", protocolVersion: "1.0", tenant: "" }],
    capabilities: { streaming: true, pushNotifications: false, extensions: [] },
    defaultInputModes: ["text/plain"],
    defaultOutputModes: ["text/plain"],
    skills: [{ id: "sdk", name: "SDK", description: "test", tags: ["test"], examples: [], inputModes: [], outputModes: [] }],
    securitySchemes: {},
    securityRequirements: [],
    signatures: []
  }
  const handler = new DefaultRequestHandler(card as never, new InMemoryTaskStore(), executor)
  app.use("/.well-known/agent-card.json", agentCardHandler({ agentCardProvider: handler } as never))
  app.use("/a2a", express.json({ limit: "1mb" }), jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }))
  return {
    url,
    handler,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** The SDK's shapes, as an executor publishes them (its states are numbers: 2 working, 3 completed, 4 failed, 5 canceled). */
export const sdkEvents = {
  task: (taskId: string, contextId: string, userMessage: unknown) =>
    AgentEvent.task({
      id: taskId,
      contextId,
      status: { state: 1, message: undefined, timestamp: new Date().toISOString() },
      artifacts: [],
      history: [userMessage],
      metadata: undefined
    } as never),
  status: (taskId: string, contextId: string, state: number) =>
    AgentEvent.statusUpdate({
      taskId,
      contextId,
      status: { state, message: undefined, timestamp: new Date().toISOString() },
      metadata: undefined
    } as never),
  artifact: (taskId: string, contextId: string, text: string) =>
    AgentEvent.artifactUpdate({
      taskId,
      contextId,
      artifact: {
        artifactId: "answer",
        name: "answer",
        description: "",
        parts: [{ content: { $case: "text", value: text } }],
        metadata: undefined,
        extensions: []
      },
      append: false,
      lastChunk: true,
      metadata: undefined
    } as never)
}

/** The text of an SDK request's user message. */
export const sdkTextOf = (message: any): string =>
  (message?.parts ?? []).map((p: any) => (p.content?.$case === "text" ? p.content.value : "")).join("")
