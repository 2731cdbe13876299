import { Command, Options } from "@effect/cli"
import { Config, Effect, Layer, Option } from "effect"
import { builtin, builtinNames } from "../agent/builtins"
import * as Server from "../layers/Server"

/** `a2a-ledger serve`: the A2A server. Flags win over environment variables. */
const port = Options.integer("port").pipe(
  Options.withFallbackConfig(Config.integer("PORT")),
  Options.withDefault(9292),
  Options.withDescription("HTTP port (env PORT); 0 picks a free port")
)
const host = Options.text("host").pipe(
  Options.withFallbackConfig(Config.string("HOST")),
  Options.withDefault("0.0.0.0"),
  Options.withDescription("address to bind (env HOST)")
)
const db = Options.text("db").pipe(
  Options.withFallbackConfig(Config.string("A2A_DB")),
  Options.withDefault("./data/a2a-ledger.db"),
  Options.withDescription("SQLite file of the event log (env A2A_DB)")
)
const agent = Options.choice("agent", builtinNames).pipe(
  Options.withFallbackConfig(Config.literal(...builtinNames)("A2A_AGENT")),
  Options.withDefault("slow-worker" as const),
  Options.withDescription("built-in agent to serve (env A2A_AGENT)")
)
const stepDelayMs = Options.integer("step-delay-ms").pipe(
  Options.optional,
  Options.withDescription("slow-worker: delay of every step in ms (default: the reference 500/800/600/400)")
)
const maxWorkers = Options.integer("max-workers").pipe(
  Options.withFallbackConfig(Config.integer("A2A_MAX_WORKERS")),
  Options.withDefault(64),
  Options.withDescription("worker turns running at once; more tasks wait in SUBMITTED (env A2A_MAX_WORKERS)")
)
const recovery = Options.choice("recovery", ["rerun", "fail"] as const).pipe(
  Options.withFallbackConfig(Config.literal("rerun", "fail")("A2A_RECOVERY")),
  Options.withDefault("rerun" as const),
  Options.withDescription("tasks left WORKING by a dead process: run the turn again, or mark them FAILED (env A2A_RECOVERY)")
)
const maxBodyBytes = Options.integer("max-body-bytes").pipe(
  Options.withFallbackConfig(Config.integer("A2A_MAX_BODY_BYTES")),
  Options.withDefault(1024 * 1024),
  Options.withDescription("largest request body accepted (env A2A_MAX_BODY_BYTES)")
)
const keepAliveMs = Options.integer("keep-alive-ms").pipe(
  Options.withDefault(15_000),
  Options.withDescription("interval of the SSE keep-alive comment")
)
const publicUrl = Options.text("public-url").pipe(
  Options.withFallbackConfig(Config.string("A2A_PUBLIC_URL")),
  Options.optional,
  Options.withDescription("base URL for the agent card (env A2A_PUBLIC_URL); default: from the request's Host header")
)

export const serve = Command.make(
  "serve",
  { port, host, db, agent, stepDelayMs, maxWorkers, recovery, maxBodyBytes, keepAliveMs, publicUrl },
  (o) =>
    Effect.logInfo(`a2a-ledger: agent ${o.agent}, store ${o.db}, up to ${o.maxWorkers} workers`).pipe(Effect.zipRight(Layer.launch(
      Server.layer({
        db: o.db,
        agent: builtin(o.agent, Option.isSome(o.stepDelayMs) ? { stepDelayMs: o.stepDelayMs.value } : {}),
        maxWorkers: o.maxWorkers,
        recovery: o.recovery,
        port: o.port,
        host: o.host,
        maxBodyBytes: o.maxBodyBytes,
        keepAliveMs: o.keepAliveMs,
        ...(Option.isSome(o.publicUrl) ? { publicUrl: o.publicUrl.value } : {})
      })
    )))
).pipe(Command.withDescription("Run the A2A v1.0 server (JSON-RPC at POST /a2a, agent card at /.well-known/agent-card.json)"))
