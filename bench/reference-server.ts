/**
 * The reference server the side-by-side bench measures a2a-ledger against:
 * the official SDK (@a2a-js/sdk) behind express, with an executor equal to our
 * `echo` agent (WORKING, one artifact echoing the text, COMPLETED).
 *
 *   tsx bench/reference-server.ts memory            # InMemoryTaskStore
 *   tsx bench/reference-server.ts sqlite FILE       # the SDK's DatabaseTaskStore on a SQLite file (kysely)
 *   BENCH_GRPC=1 tsx bench/reference-server.ts …    # also the SDK's gRPC service (@grpc/grpc-js), listed in the card
 *
 * It listens on a free port on 127.0.0.1 and prints "Listening on http://…",
 * as `a2a-ledger serve` does. Bench code only: nothing here is part of a2a-ledger.
 */
import { execFileSync } from "node:child_process"
import { createRequire } from "node:module"
import * as path from "node:path"
import express from "express"
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js"
import { AgentEvent, type AgentExecutor, DefaultRequestHandler, InMemoryTaskStore, type TaskStore } from "@a2a-js/sdk/server"
import { agentCardHandler, jsonRpcHandler, UserBuilder } from "@a2a-js/sdk/server/express"
import { A2AService, grpcService } from "@a2a-js/sdk/server/grpc"

const [kind = "memory", file] = process.argv.slice(2)
const root = path.resolve(import.meta.dirname, "..")

const store = async (): Promise<TaskStore> => {
  if (kind === "memory") return new InMemoryTaskStore()
  if (kind !== "sqlite" || file === undefined) throw new Error("usage: reference-server.ts memory | sqlite FILE")
  // The schema is the operator's step for the SDK's stores: its own CLI creates it.
  execFileSync(path.join(root, "node_modules/.bin/a2a-db"), ["upgrade", "--url", `sqlite:${file}`], { stdio: "ignore" })
  // better-sqlite3 comes with @effect/sql-sqlite-node; its types are not installed, nor needed here.
  const Database = createRequire(import.meta.url)("better-sqlite3") as new (file: string) => { pragma: (s: string) => unknown }
  const { Kysely, SqliteDialect } = await import("kysely")
  const { DatabaseTaskStore } = await import("@a2a-js/sdk/server/database")
  const database = new Database(file)
  database.pragma("journal_mode = WAL")
  database.pragma("synchronous = FULL") // as a2a-ledger's default: every acknowledged task on disk
  return new DatabaseTaskStore(new Kysely({ dialect: new SqliteDialect({ database: database as never }) }) as never)
}

const textOf = (message: any): string => (message?.parts ?? []).map((p: any) => (p.content?.$case === "text" ? p.content.value : "")).join("")

/** What our `echo` agent does: WORKING, one artifact with the text, COMPLETED. */
const echo: AgentExecutor = {
  execute: async (context: any, bus) => {
    const taskId = context.taskId
    const contextId = context.contextId
    const status = (state: number) => ({ state, message: undefined, timestamp: new Date().toISOString() })
    if (context.task === undefined) {
      bus.publish(
        AgentEvent.task({ id: taskId, contextId, status: status(1), artifacts: [], history: [context.userMessage], metadata: undefined } as never)
      )
    }
    bus.publish(AgentEvent.statusUpdate({ taskId, contextId, status: status(2), metadata: undefined } as never))
    bus.publish(
      AgentEvent.artifactUpdate({
        taskId,
        contextId,
        artifact: {
          artifactId: "echo",
          name: "echo",
          description: "",
          parts: [{ content: { $case: "text", value: textOf(context.userMessage) } }],
          metadata: undefined,
          extensions: []
        },
        append: false,
        lastChunk: true,
        metadata: undefined
      } as never)
    )
    bus.publish(AgentEvent.statusUpdate({ taskId, contextId, status: status(3), metadata: undefined } as never))
    bus.finished()
  },
  cancelTask: async () => {}
}

const main = async () => {
  const app = express()
  const server = app.listen(0, "127.0.0.1", async () => {
    const port = (server.address() as { port: number }).port
    const url = `http://127.0.0.1:${port}`
    const card = {
      name: "Echo (reference)",
      description: "The SDK's server with an executor equal to a2a-ledger's echo agent",
      version: "1.0.0",
      supportedInterfaces: [{ url: `${url}/a2a`, protocolBinding: "JSONRPC", protocolVersion: "1.0", tenant: "" }],
      capabilities: { streaming: true, pushNotifications: false, extensions: [] },
      defaultInputModes: ["text/plain"],
      defaultOutputModes: ["text/plain"],
      skills: [{ id: "echo", name: "Echo", description: "Returns the message text", tags: ["demo"], examples: [], inputModes: [], outputModes: [] }],
      securitySchemes: {},
      securityRequirements: [],
      signatures: []
    }
    const handler = new DefaultRequestHandler(card as never, await store(), echo)
    if (process.env.BENCH_GRPC === "1") {
      const grpc = new GrpcServer()
      grpc.addService(A2AService, grpcService({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }) as never)
      const grpcPort = await new Promise<number>((resolve, reject) =>
        grpc.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))
      )
      // (The handler serves this card object: the interface added now is in it.)
      card.supportedInterfaces.push({ url: `127.0.0.1:${grpcPort}`, protocolBinding: "GRPC", protocolVersion: "1.0", tenant: "" })
    }
    app.use("/.well-known/agent-card.json", agentCardHandler({ agentCardProvider: handler } as never))
    app.use("/a2a", express.json({ limit: "1mb" }), jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }))
    console.log(`Listening on ${url}`)
  })
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
