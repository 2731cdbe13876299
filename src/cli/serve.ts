import { Command, Options } from "@effect/cli"
import { Config, Effect, FiberRef, HashSet, Layer, Logger, LogLevel, Option } from "effect"
import { builtin, builtinNames } from "../agent/builtins.js"
import * as Store from "../eventlog/Store.js"
import * as Server from "../layers/Server.js"
import { parseDuration } from "../engine/Retention.js"
import { defaultPushOptions } from "../push/PushConfig.js"
import { makePolicy } from "../push/WebhookGuard.js"
import * as ConfigFile from "./configFile.js"
import * as Tracing from "./otlpTracing.js"
import { version } from "../version.js"
import { CommandFailed } from "./CommandFailed.js"
import { db, idempotencyWindow } from "./storeOption.js"
import { limitHeapGrowth } from "./heapGrowth.js"

const describeStartupError = (e: unknown, o: { readonly host: string; readonly port: number; readonly db: string }) => {
  const tagged = e as { readonly _tag?: string; readonly cause?: unknown; readonly message?: string }
  const detail = (tagged.cause as Error | undefined)?.message ?? tagged.message ?? String(e)
  if (tagged._tag === "ServeError") return `cannot listen on ${o.host}:${o.port}: ${detail}`
  if (tagged._tag === "GrpcListenError") return `cannot listen for gRPC on ${(e as { readonly address: string }).address}: ${detail}`
  if (tagged._tag === "SigningKeyInvalid") return `the signing key cannot be used: ${detail}`
  return `cannot open the store ${Store.describe(o.db)}: ${detail}`
}

/** `a2a-ledger serve`: the A2A server. Flags win over environment variables. */
const atLeast =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (n: number) =>
    Number.isInteger(n) && n >= min && n <= max ? Option.some(n) : Option.none()

const port = Options.integer("port").pipe(
  Options.withFallbackConfig(Config.integer("PORT")),
  Options.withDefault(9292),
  Options.filterMap(atLeast(0, 65535), "--port must be between 0 and 65535"),
  Options.withDescription("HTTP port (env PORT); 0 picks a free port")
)
const host = Options.text("host").pipe(
  Options.withFallbackConfig(Config.string("HOST")),
  Options.withDefault("0.0.0.0"),
  Options.withDescription("address to bind (env HOST)")
)
const synchronous = Options.choice("sqlite-synchronous", ["full", "normal"] as const).pipe(
  Options.withFallbackConfig(Config.literal("full", "normal")("A2A_SQLITE_SYNCHRONOUS")),
  Options.withDefault("full" as const),
  Options.withDescription(
    "full: every acknowledged commit survives a power loss; normal: only a process crash, but faster (env A2A_SQLITE_SYNCHRONOUS)"
  )
)
const agent = Options.choice("agent", builtinNames).pipe(
  Options.withFallbackConfig(Config.literal(...builtinNames)("A2A_AGENT")),
  Options.withDefault("slow-worker" as const),
  Options.withDescription("built-in agent to serve (env A2A_AGENT)")
)
const stepDelayMs = Options.integer("step-delay-ms").pipe(
  Options.filterMap(atLeast(0), "--step-delay-ms must be 0 or more"),
  Options.optional,
  Options.withDescription("slow-worker and mixed: delay of every step in ms (default: slow-worker's reference 500/800/600/400, mixed's 200)")
)
const maxWorkers = Options.integer("max-workers").pipe(
  Options.withFallbackConfig(Config.integer("A2A_MAX_WORKERS")),
  Options.withDefault(64),
  Options.filterMap(atLeast(1), "--max-workers must be 1 or more"),
  Options.withDescription("worker turns running at once; more tasks wait in SUBMITTED (env A2A_MAX_WORKERS)")
)
const recovery = Options.choice("recovery", ["rerun", "fail"] as const).pipe(
  Options.withFallbackConfig(Config.literal("rerun", "fail")("A2A_RECOVERY")),
  Options.withDefault("rerun" as const),
  Options.withDescription("tasks left WORKING by a dead process: run the turn again, or mark them FAILED (env A2A_RECOVERY)")
)
const idempotency = Options.choice("idempotency", ["on", "off"] as const).pipe(
  Options.withFallbackConfig(Config.literal("on", "off")("A2A_IDEMPOTENCY")),
  Options.withDefault("on" as const),
  Options.withDescription(
    "on: a repeated messageId returns the original task; off: every message is new, for clients that reuse messageIds (env A2A_IDEMPOTENCY)"
  )
)
const maxBodyBytes = Options.integer("max-body-bytes").pipe(
  Options.withFallbackConfig(Config.integer("A2A_MAX_BODY_BYTES")),
  Options.withDefault(1024 * 1024),
  Options.filterMap(atLeast(1024), "--max-body-bytes must be at least 1024"),
  Options.withDescription("largest request body accepted (env A2A_MAX_BODY_BYTES)")
)
const keepAliveMs = Options.integer("keep-alive-ms").pipe(
  Options.withDefault(15_000),
  Options.filterMap(atLeast(100), "--keep-alive-ms must be at least 100"),
  Options.withDescription("interval of the SSE keep-alive comment")
)
const maxStreamsPerPrincipal = Options.integer("max-streams-per-principal").pipe(
  Options.withFallbackConfig(Config.integer("A2A_MAX_STREAMS_PER_PRINCIPAL")),
  Options.withDefault(1000),
  Options.filterMap(atLeast(1), "--max-streams-per-principal must be at least 1"),
  Options.withDescription(
    "open streams (SSE and gRPC) allowed per authenticated principal, or per client address without authentication; past it a stream request gets TOO_MANY_STREAMS (env A2A_MAX_STREAMS_PER_PRINCIPAL)"
  )
)
const publicUrl = Options.text("public-url").pipe(
  Options.withFallbackConfig(Config.string("A2A_PUBLIC_URL")),
  Options.optional,
  Options.withDescription("base URL for the agent card (env A2A_PUBLIC_URL); default: from the request's Host header")
)

const allowWebhookHost = Options.text("allow-webhook-host").pipe(
  Options.repeated,
  Options.withDescription(
    "let webhooks reach this private, loopback or link-local host, address or CIDR range (repeatable; env A2A_ALLOW_WEBHOOK_HOSTS, comma-separated)"
  )
)
const allowWebhookHostsEnv = Config.string("A2A_ALLOW_WEBHOOK_HOSTS").pipe(Config.withDefault(""))
const webhookMaxAttempts = Options.integer("webhook-max-attempts").pipe(
  Options.withDefault(defaultPushOptions.maxAttempts),
  Options.filterMap(atLeast(1, 100), "--webhook-max-attempts must be between 1 and 100"),
  Options.withDescription("failed calls before a webhook delivery moves to the dead letters")
)
const webhookRetryBaseMs = Options.integer("webhook-retry-base-ms").pipe(
  Options.withDefault(defaultPushOptions.retryBaseMs),
  Options.filterMap(atLeast(1), "--webhook-retry-base-ms must be 1 or more"),
  Options.withDescription("first retry delay of a failed webhook call; it doubles each time (with jitter) up to 10 minutes")
)
const webhookTimeoutMs = Options.integer("webhook-timeout-ms").pipe(
  Options.withDefault(defaultPushOptions.timeoutMs),
  Options.filterMap(atLeast(100), "--webhook-timeout-ms must be at least 100"),
  Options.withDescription("how long one webhook call may take")
)

const retention = Options.text("retention").pipe(
  Options.withFallbackConfig(Config.string("A2A_RETENTION")),
  Options.filterMap((text) => Option.fromNullable(parseDuration(text)), "--retention must be a duration such as 30d, 12h or 90m"),
  Options.optional,
  Options.withDescription("delete finished tasks this long after their last change, e.g. 30d (env A2A_RETENTION); default: keep them")
)

const leaseMs = Options.integer("lease-ms").pipe(
  Options.withFallbackConfig(Config.integer("A2A_LEASE_MS")),
  Options.withDefault(15_000),
  Options.filterMap(atLeast(300), "--lease-ms must be at least 300"),
  Options.withDescription("PostgreSQL: how long a work lease lasts without renewal; a dead instance's tasks move on after it (env A2A_LEASE_MS)")
)

const parkSleepsFromMs = Options.integer("park-sleeps-from-ms").pipe(
  Options.withFallbackConfig(Config.integer("A2A_PARK_SLEEPS_FROM_MS")),
  Options.withDefault(5_000),
  Options.filterMap(atLeast(0), "--park-sleeps-from-ms must be 0 or more"),
  Options.withDescription(
    "an agent's durable sleep (ctx.sleep) this long or longer gives its worker up until it is due; a shorter one waits in its worker (env A2A_PARK_SLEEPS_FROM_MS)"
  )
)

const storeTimeoutMs = Options.integer("store-timeout-ms").pipe(
  Options.withFallbackConfig(Config.integer("A2A_STORE_TIMEOUT_MS")),
  Options.withDefault(10_000),
  Options.filterMap(atLeast(100), "--store-timeout-ms must be at least 100"),
  Options.withDescription(
    "the longest a request waits on the store (a commit, a read); past it the request is answered -32603 / HTTP 503, store unavailable (env A2A_STORE_TIMEOUT_MS)"
  )
)

const shutdownGraceMs = Options.integer("shutdown-grace-ms").pipe(
  Options.withFallbackConfig(Config.integer("A2A_SHUTDOWN_GRACE_MS")),
  Options.withDefault(2_000),
  Options.filterMap(atLeast(0), "--shutdown-grace-ms must be 0 or more"),
  Options.withDescription(
    "at SIGTERM, how long in-flight requests may take before their connections are cut; the process exits at most 2 s after that, whatever the store does (env A2A_SHUTDOWN_GRACE_MS)"
  )
)

/**
 * The last word on shutdown: once a signal asked the server to stop, the
 * process exits within the grace period and a margin, even if a finalizer
 * waits on a store that does not answer.
 */
const exitAfterGrace = (graceMs: number) =>
  Effect.sync(() => {
    const arm = (signal: NodeJS.Signals) => () => {
      setTimeout(() => {
        process.stderr.write(`a2a-ledger: shutdown (${signal}) did not finish within ${graceMs + shutdownMarginMs} ms; exiting now\n`)
        process.exit(1)
      }, graceMs + shutdownMarginMs).unref()
    }
    process.once("SIGTERM", arm("SIGTERM"))
    process.once("SIGINT", arm("SIGINT"))
  })
const shutdownMarginMs = 2_000

const instanceId = Options.text("instance-id").pipe(
  Options.withFallbackConfig(Config.string("A2A_INSTANCE_ID")),
  Options.optional,
  Options.withDescription(
    "this process's name in the log's metadata and in work leases, e.g. the pod name (env A2A_INSTANCE_ID); default: a random UUID"
  )
)

const metrics = Options.choice("metrics", ["on", "off"] as const).pipe(
  Options.withFallbackConfig(Config.literal("on", "off")("A2A_METRICS")),
  Options.withDefault("on" as const),
  Options.withDescription(
    "Prometheus metrics at GET /metrics (env A2A_METRICS); with authentication on, only principals listed in auth.admins may read them"
  )
)

const board = Options.choice("board", ["local", "open", "off"] as const).pipe(
  Options.withFallbackConfig(Config.literal("local", "open", "off")("A2A_BOARD")),
  Options.withDefault("local" as const),
  Options.withDescription(
    "the task board at /board: local (without authentication only from this machine; with it, admins), open (without authentication from anywhere), off (env A2A_BOARD)"
  )
)

const logFormat = Options.choice("log-format", ["pretty", "json", "logfmt"] as const).pipe(
  Options.withFallbackConfig(Config.literal("pretty", "json", "logfmt")("A2A_LOG_FORMAT")),
  Options.withDefault("pretty" as const),
  Options.withDescription(
    "how logs are written: pretty (for a terminal), json (one object per line, with taskId, agent and instance fields) or logfmt (env A2A_LOG_FORMAT)"
  )
)

const logLevel = Options.choice("log-level", ["trace", "debug", "info", "warning", "error", "none"] as const).pipe(
  Options.withFallbackConfig(Config.literal("trace", "debug", "info", "warning", "error", "none")("A2A_LOG_LEVEL")),
  Options.withDefault("info" as const),
  Options.withDescription("the least severe log level written (env A2A_LOG_LEVEL)")
)

const levels = {
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
} as const

/** Only `logger` writes logs: NodeRuntime.runMain installs its pretty logger beside the default one's slot. */
const only = (logger: Logger.Logger<unknown, void>) =>
  Layer.scopedDiscard(Effect.locallyScopedWith(FiberRef.currentLoggers, () => HashSet.make(logger)))

/** The logger the flags ask for: `pretty` is the platform's own default (NodeRuntime.runMain's). */
const logging = (format: "pretty" | "json" | "logfmt", level: keyof typeof levels) => {
  const minimum = Logger.minimumLogLevel(levels[level])
  if (format === "pretty") return minimum
  return Layer.merge(only(Logger.withConsoleLog(format === "json" ? Logger.jsonLogger : Logger.logfmtLogger)), minimum)
}

const grpcPort = Options.integer("grpc-port").pipe(
  Options.withFallbackConfig(Config.integer("A2A_GRPC_PORT")),
  Options.optional,
  Options.filterMap(
    (p) => (Option.isNone(p) || (Number.isInteger(p.value) && p.value >= 0 && p.value <= 65535) ? Option.some(p) : Option.none()),
    "--grpc-port must be 0-65535"
  ),
  Options.withDescription("serve the gRPC binding on this port too (env A2A_GRPC_PORT; default: off; 0 for any free port)")
)

const signingKey = Options.file("signing-key", { exists: "yes" }).pipe(
  Options.withFallbackConfig(Config.string("A2A_SIGNING_KEY_FILE")),
  Options.optional,
  Options.withDescription(
    "a private key (PEM: EC P-256, Ed25519, RSA) that signs the agent card and every webhook call, published at /.well-known/jwks.json (env A2A_SIGNING_KEY_FILE); see docs/signing.md"
  )
)

const configFile = Options.file("config", { exists: "yes" }).pipe(
  Options.withFallbackConfig(Config.string("A2A_CONFIG")),
  Options.optional,
  Options.withDescription(
    "YAML or JSON configuration file: API keys, JWT issuer, several agents (env A2A_CONFIG); see docs/auth.md, docs/agents-config.md"
  )
)

export const serve = Command.make(
  "serve",
  {
    port,
    host,
    db,
    synchronous,
    agent,
    stepDelayMs,
    maxWorkers,
    recovery,
    idempotency,
    idempotencyWindow,
    maxBodyBytes,
    keepAliveMs,
    maxStreamsPerPrincipal,
    publicUrl,
    allowWebhookHost,
    webhookMaxAttempts,
    webhookRetryBaseMs,
    webhookTimeoutMs,
    retention,
    leaseMs,
    storeTimeoutMs,
    parkSleepsFromMs,
    shutdownGraceMs,
    instanceId,
    metrics,
    board,
    logFormat,
    logLevel,
    grpcPort,
    signingKey,
    configFile
  },
  (o) =>
    Effect.gen(function* () {
      const allowHosts = [...o.allowWebhookHost, yield* allowWebhookHostsEnv]
      const policy = makePolicy(allowHosts)
      if (policy._tag === "Left") return yield* new CommandFailed({ message: policy.left })
      const file = yield* ConfigFile.loadEffect(Option.getOrUndefined(o.configFile)).pipe(
        Effect.mapError((message) => new CommandFailed({ message }))
      )
      const auth = ConfigFile.authOptions(file, process.env)
      if (auth._tag === "Left") return yield* new CommandFailed({ message: auth.left })
      const tracing = Tracing.fromEnv(process.env)
      if (typeof tracing === "string") return yield* new CommandFailed({ message: tracing })
      const delegation = ConfigFile.delegationOptions(file, process.env)
      if (delegation._tag === "Left") return yield* new CommandFailed({ message: delegation.left })
      const signing = ConfigFile.signingOptions(file, Option.getOrUndefined(o.configFile), Option.getOrUndefined(o.signingKey), process.env)
      if (signing._tag === "Left") return yield* new CommandFailed({ message: signing.left })
      const principals = new Set(auth.right.apiKeys?.map((k) => k.principal)).size
      const authText = `authentication ${
        principals > 0 || auth.right.jwt !== undefined
          ? `on (${principals} API-key principal${principals === 1 ? "" : "s"}${auth.right.jwt !== undefined ? ", JWT" : ""})`
          : "off"
      }`
      const authOn = (auth.right.apiKeys?.length ?? 0) > 0 || auth.right.jwt !== undefined
      if (!authOn && (file.extendedCard !== undefined || (file.agents ?? []).some((a) => a.extendedCard !== undefined))) {
        yield* Effect.logWarning(
          "an extendedCard is configured but authentication is off: the spec has the extended card require authentication, so the card declares none (configure API keys or a JWT issuer, docs/auth.md)"
        )
      }
      const retentionMs = Option.getOrUndefined(o.retention)
      const push = { allowHosts, maxAttempts: o.webhookMaxAttempts, retryBaseMs: o.webhookRetryBaseMs, timeoutMs: o.webhookTimeoutMs }
      const server = {
        port: o.port,
        host: o.host,
        maxBodyBytes: o.maxBodyBytes,
        keepAliveMs: o.keepAliveMs,
        maxStreamsPerPrincipal: o.maxStreamsPerPrincipal,
        ...(Option.isSome(o.publicUrl) ? { publicUrl: o.publicUrl.value } : {}),
        auth: auth.right,
        synchronous: o.synchronous,
        shutdownGraceMs: o.shutdownGraceMs,
        metrics: o.metrics === "on",
        board: o.board,
        tracing: Option.isSome(tracing),
        ...(Option.isSome(o.grpcPort) ? { grpcPort: o.grpcPort.value } : {}),
        ...(signing.right !== undefined ? { signing: signing.right } : {})
      }
      yield* exitAfterGrace(o.shutdownGraceMs)
      yield* limitHeapGrowth
      const agents = file.agents ?? []
      if (agents.length === 0) {
        yield* Effect.logInfo(`a2a-ledger: agent ${o.agent}, store ${Store.describe(o.db)}, up to ${o.maxWorkers} workers, ${authText}`)
        const layer = Server.layer({
          ...server,
          db: o.db,
          agent: {
            ...builtin(o.agent, Option.isSome(o.stepDelayMs) ? { stepDelayMs: o.stepDelayMs.value } : {}),
            ...(file.extendedCard !== undefined ? { extendedCard: file.extendedCard } : {})
          },
          maxWorkers: o.maxWorkers,
          recovery: o.recovery,
          idempotency: o.idempotency,
          idempotencyWindowMs: o.idempotencyWindow,
          retentionMs,
          leaseMs: o.leaseMs,
          storeTimeoutMs: o.storeTimeoutMs,
          parkSleepsFromMs: o.parkSleepsFromMs,
          delegation: delegation.right,
          flowControl: ConfigFile.flowControlOptions(file.flowControl),
          push,
          ...(Option.isSome(o.instanceId) ? { instanceId: o.instanceId.value } : {})
        })
        return { layer, tracing }
      }
      const hosted = ConfigFile.hostedAgents(agents, o.db, {
        maxWorkers: o.maxWorkers,
        recovery: o.recovery,
        idempotency: o.idempotency,
        idempotencyWindowMs: o.idempotencyWindow,
        retentionMs,
        push,
        leaseMs: o.leaseMs,
        storeTimeoutMs: o.storeTimeoutMs,
        parkSleepsFromMs: o.parkSleepsFromMs,
        delegation: delegation.right,
        flowControl: ConfigFile.flowControlOptions(file.flowControl)
      })
      if (hosted._tag === "Left") return yield* new CommandFailed({ message: hosted.left })
      for (const a of hosted.right) {
        yield* Effect.logInfo(`a2a-ledger: /agents/${a.name}: ${a.agent.name}, store ${Store.describe(a.db)}, up to ${a.maxWorkers} workers`)
      }
      yield* Effect.logInfo(`a2a-ledger: ${hosted.right.length} agents, ${authText}`)
      return { layer: Server.layerAgents({ ...server, agents: hosted.right }), tracing }
    })
      .pipe(
        Effect.flatMap(({ layer, tracing }) =>
          Option.match(tracing, {
            onNone: () => Layer.launch(layer),
            // Traces (OTEL_* variables): every fiber of the server records its spans to the OTLP endpoint.
            onSome: (config) =>
              Effect.zipRight(
                Effect.logInfo(`tracing: spans go to ${config.url} (${config.protocol})`),
                Layer.launch(layer).pipe(Effect.provide(Tracing.layer(config, version)), Effect.withTracerEnabled(true))
              )
          })
        ),
        Effect.provide(logging(o.logFormat, o.logLevel))
      )
      .pipe(
        Effect.catchAll((e) => Effect.fail(e instanceof CommandFailed ? e : new CommandFailed({ message: describeStartupError(e, o) }))),
        Effect.catchAllDefect((d) =>
          Effect.fail(
            new CommandFailed({ message: `stopped: ${(d as Error)?.message ?? String(d)} (store ${Store.describe(o.db)}, port ${o.port})` })
          )
        )
      )
).pipe(Command.withDescription("Run the A2A v1.0 server (JSON-RPC at POST /a2a, agent card at /.well-known/agent-card.json)"))
