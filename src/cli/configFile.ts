import { Effect, Either, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as YAML from "yaml"
import { builtin, builtinNames } from "../agent/builtins.js"
import { parseDuration } from "../engine/Retention.js"
import { isPostgresUrl } from "../eventlog/Store.js"
import type { HostedAgent } from "../layers/Server.js"
import type { PushOptions } from "../push/PushConfig.js"
import type { ApiKey, AuthOptions } from "../server/Auth.js"
import type { SigningOptions } from "../signing/SigningKey.js"
import type { DelegationCredential, DelegationOptions } from "../engine/RemoteAgents.js"
import type { FlowControlOptions, Limits } from "../engine/FlowControl.js"

/**
 * The server's configuration file (`--config`, YAML or JSON): what does not
 * fit in flags, such as credentials. Every problem is reported with its path
 * in the file, e.g. `auth.apiKeys[1].key`.
 */
const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty string" }))

const ApiKeyEntry = Schema.Struct({
  principal: NonEmpty,
  /** The key itself, or the environment variable that holds it. */
  key: Schema.optional(NonEmpty),
  keyEnv: Schema.optional(NonEmpty),
  /** The tenants this key may address ("" is the default tenant); unset: any. */
  tenants: Schema.optional(Schema.Array(Schema.String))
}).pipe(Schema.filter((k) => (k.key === undefined) !== (k.keyEnv === undefined) || "give exactly one of key and keyEnv"))

const Jwt = Schema.Struct({
  jwksUrl: NonEmpty.pipe(Schema.filter((u) => /^https?:\/\//.test(u) || "must be an http(s) URL of a JSON Web Key Set")),
  issuer: Schema.optional(NonEmpty),
  audience: Schema.optional(Schema.Union(NonEmpty, Schema.Array(NonEmpty))),
  principalClaim: Schema.optional(NonEmpty),
  algorithms: Schema.optional(Schema.Array(NonEmpty)),
  tenantClaim: Schema.optional(NonEmpty)
})

/** The credential this server sends to a remote agent its agents delegate to (`ctx.delegate`), by host. */
const DelegationCredentialEntry = Schema.Struct({
  /** The remote's host, as in its URL: `agents.example.com`, or `host:port`. */
  host: NonEmpty,
  bearer: Schema.optional(NonEmpty),
  bearerEnv: Schema.optional(NonEmpty),
  apiKey: Schema.optional(NonEmpty),
  apiKeyEnv: Schema.optional(NonEmpty)
}).pipe(
  Schema.filter(
    (c) =>
      [c.bearer, c.bearerEnv, c.apiKey, c.apiKeyEnv].filter((v) => v !== undefined).length === 1 ||
      "give exactly one of bearer, bearerEnv, apiKey and apiKeyEnv"
  )
)

const Duration = Schema.String.pipe(Schema.filter((d) => parseDuration(d) !== undefined || "must be a duration such as 30d, 12h, 90m or 45s"))

const Count = Schema.Int.pipe(Schema.between(1, 1_000_000))

/** Flow-control limits (FlowControl.ts): for a server's agent, and for each tenant apart. */
const LimitsEntry = Schema.Struct({
  /** Tasks a principal may create per window: `{ limit: 60, per: 1m }`. */
  creations: Schema.optional(Schema.Struct({ limit: Count, per: Duration })),
  maxRunning: Schema.optional(Count),
  maxRunningPerPrincipal: Schema.optional(Count)
})
const FlowControlEntry = Schema.Struct({
  ...LimitsEntry.fields,
  tenants: Schema.optional(Schema.Record({ key: Schema.String, value: LimitsEntry }))
})

const SkillEntry = Schema.Struct({
  id: NonEmpty,
  name: NonEmpty,
  description: NonEmpty,
  tags: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  examples: Schema.optional(Schema.Array(Schema.String))
})
/** What authenticated callers see besides the public card (GetExtendedAgentCard). */
const ExtendedCardEntry = Schema.Struct({
  description: Schema.optional(NonEmpty),
  skills: Schema.optional(Schema.Array(SkillEntry))
})

const AgentEntry = Schema.Struct({
  /** Route name: /agents/{name}/… */
  name: Schema.String.pipe(
    Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,62}$/, { message: () => "must be 1-63 lowercase letters, digits, - or _ (it is a URL path segment)" })
  ),
  /** Which built-in agent runs its tasks. */
  agent: Schema.Literal(...builtinNames),
  description: Schema.optional(NonEmpty),
  maxWorkers: Schema.optional(Schema.Int.pipe(Schema.between(1, 10_000))),
  recovery: Schema.optional(Schema.Literal("rerun", "fail")),
  retention: Schema.optional(Duration),
  /** Its SQLite file (default: `<name>.db` beside the --db file). */
  db: Schema.optional(NonEmpty),
  stepDelayMs: Schema.optional(Schema.Int.pipe(Schema.greaterThanOrEqualTo(0))),
  /** This agent's flow control (the file's top-level `flowControl` is the root agent's). */
  flowControl: Schema.optional(FlowControlEntry),
  /** This agent's extended card (the file's top-level `extendedCard` is the root agent's). */
  extendedCard: Schema.optional(ExtendedCardEntry)
})

/** The server's signing key (docs/signing.md): a PEM file, or a variable that holds the PEM. */
const SigningEntry = Schema.Struct({
  privateKeyFile: Schema.optional(NonEmpty),
  privateKeyEnv: Schema.optional(NonEmpty),
  kid: Schema.optional(NonEmpty),
  issuer: Schema.optional(NonEmpty)
}).pipe(
  Schema.filter((k) => (k.privateKeyFile === undefined) !== (k.privateKeyEnv === undefined) || "give exactly one of privateKeyFile and privateKeyEnv")
)

export const FileConfig = Schema.Struct({
  agents: Schema.optional(
    Schema.Array(AgentEntry).pipe(
      Schema.filter((agents) => {
        const names = agents.map((a) => a.name)
        const dup = names.find((n, i) => names.indexOf(n) !== i)
        return dup === undefined || `the agent name ${dup} is used twice`
      })
    )
  ),
  auth: Schema.optional(
    Schema.Struct({
      apiKeys: Schema.optional(Schema.Array(ApiKeyEntry)),
      jwt: Schema.optional(Jwt),
      /** Principals who may read the operator's endpoints (`/metrics`). */
      admins: Schema.optional(Schema.Array(Schema.NonEmptyString))
    })
  ),
  delegation: Schema.optional(Schema.Struct({ credentials: Schema.optional(Schema.Array(DelegationCredentialEntry)) })),
  /** The single agent's flow control (`serve` without `agents`), and the default of agents without their own. */
  flowControl: Schema.optional(FlowControlEntry),
  /** The single agent's extended card (`serve` without `agents`). */
  extendedCard: Schema.optional(ExtendedCardEntry),
  /** The key the card and the webhook calls are signed with. */
  signing: Schema.optional(SigningEntry)
})
export type FileConfig = typeof FileConfig.Type

const pathText = (path: ReadonlyArray<PropertyKey>) =>
  path.reduce<string>((acc, k) => (typeof k === "number" ? `${acc}[${k}]` : acc === "" ? String(k) : `${acc}.${String(k)}`), "")

/** Read and check the file. The error is one line naming the file and the first bad field. */
export const load = (file: string): Either.Either<FileConfig, string> => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    return Either.left(`cannot read the config file ${file}: ${(e as Error).message}`)
  }
  let raw: unknown
  try {
    raw = YAML.parse(text) ?? {}
  } catch (e) {
    return Either.left(`the config file ${file} is not valid YAML or JSON: ${(e as Error).message.split("\n")[0]}`)
  }
  const decoded = Schema.decodeUnknownEither(FileConfig, { onExcessProperty: "error" })(raw)
  if (Either.isRight(decoded)) return Either.right(decoded.right)
  const [first] = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
  const where = first === undefined ? "" : pathText(first.path)
  return Either.left(
    `the config file ${file}: ${where === "" ? "" : `${where}: `}${first?._tag === "Missing" ? "is required" : (first?.message ?? "is invalid")}`
  )
}

/** API keys from `A2A_API_KEYS` ("alice=key1,bob=key2"). */
export const apiKeysFromEnv = (value: string): Either.Either<ReadonlyArray<ApiKey>, string> => {
  const keys: Array<ApiKey> = []
  for (const entry of value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "")) {
    const at = entry.indexOf("=")
    if (at <= 0 || at === entry.length - 1) return Either.left(`A2A_API_KEYS: "${entry.slice(0, 20)}…" is not principal=key`)
    keys.push({ principal: entry.slice(0, at), key: entry.slice(at + 1) })
  }
  return Either.right(keys)
}

/** The auth options from the file's `auth` section and the environment. */
export const authOptions = (config: FileConfig, env: Record<string, string | undefined>): Either.Either<AuthOptions, string> => {
  const keys: Array<ApiKey> = []
  for (const [i, k] of (config.auth?.apiKeys ?? []).entries()) {
    const key = k.key ?? env[k.keyEnv!]
    if (key === undefined || key === "") return Either.left(`auth.apiKeys[${i}].keyEnv: the environment variable ${k.keyEnv} is not set`)
    keys.push({ principal: k.principal, key, ...(k.tenants !== undefined ? { tenants: k.tenants } : {}) })
  }
  const fromEnv = apiKeysFromEnv(env.A2A_API_KEYS ?? "")
  if (Either.isLeft(fromEnv)) return Either.left(fromEnv.left)
  keys.push(...fromEnv.right)
  const jwt = config.auth?.jwt
  const admins = [
    ...(config.auth?.admins ?? []),
    ...(env.A2A_ADMINS ?? "")
      .split(",")
      .map((a) => a.trim())
      .filter((a) => a !== "")
  ]
  return Either.right({ apiKeys: keys, ...(jwt !== undefined ? { jwt } : {}), ...(admins.length > 0 ? { admins } : {}) })
}

/**
 * The signing key: `--signing-key FILE` (or `A2A_SIGNING_KEY_FILE`), else the file's `signing` (a
 * `privateKeyFile` relative to the config file, or the PEM in `privateKeyEnv`); none when neither says.
 */
export const signingOptions = (
  config: FileConfig,
  configPath: string | undefined,
  keyFile: string | undefined,
  env: Record<string, string | undefined>
): Either.Either<SigningOptions | undefined, string> => {
  const entry = config.signing
  const read = (file: string, field: string) => {
    try {
      return Either.right(fs.readFileSync(file, "utf8"))
    } catch (e) {
      return Either.left(`${field}: cannot read the signing key ${file}: ${(e as Error).message}`)
    }
  }
  const named = { ...(entry?.kid !== undefined ? { kid: entry.kid } : {}), ...(entry?.issuer !== undefined ? { issuer: entry.issuer } : {}) }
  if (keyFile !== undefined) return Either.map(read(keyFile, "--signing-key"), (pem) => ({ privateKeyPem: pem, ...named }))
  if (entry === undefined) return Either.right(undefined)
  if (entry.privateKeyEnv !== undefined) {
    const pem = env[entry.privateKeyEnv]
    return pem === undefined || pem === ""
      ? Either.left(`signing.privateKeyEnv: the environment variable ${entry.privateKeyEnv} is not set`)
      : Either.right({ privateKeyPem: pem, ...named })
  }
  const file = path.resolve(configPath === undefined ? "." : path.dirname(configPath), entry.privateKeyFile!)
  return Either.map(read(file, "signing.privateKeyFile"), (pem) => ({ privateKeyPem: pem, ...named }))
}

/** The file's delegation credentials, their secrets read from the environment where it names a variable. */
export const delegationOptions = (config: FileConfig, env: Record<string, string | undefined>): Either.Either<DelegationOptions, string> => {
  const credentials: Array<DelegationCredential> = []
  for (const [i, c] of (config.delegation?.credentials ?? []).entries()) {
    const named = c.bearerEnv ?? c.apiKeyEnv
    const secret = named !== undefined ? env[named] : (c.bearer ?? c.apiKey)
    if (secret === undefined || secret === "") {
      return Either.left(
        `delegation.credentials[${i}].${c.bearerEnv !== undefined ? "bearerEnv" : "apiKeyEnv"}: the environment variable ${named} is not set`
      )
    }
    credentials.push(c.bearer !== undefined || c.bearerEnv !== undefined ? { host: c.host, bearer: secret } : { host: c.host, apiKey: secret })
  }
  return Either.right({ credentials })
}

const limitsOf = (l: typeof LimitsEntry.Type): Limits => ({
  ...(l.creations !== undefined ? { creations: { limit: l.creations.limit, window: parseDuration(l.creations.per)! } } : {}),
  ...(l.maxRunning !== undefined ? { maxRunning: l.maxRunning } : {}),
  ...(l.maxRunningPerPrincipal !== undefined ? { maxRunningPerPrincipal: l.maxRunningPerPrincipal } : {})
})

/** A `flowControl` entry of the file as the engine's options (durations in ms). */
export const flowControlOptions = (entry: typeof FlowControlEntry.Type | undefined): FlowControlOptions | undefined =>
  entry === undefined
    ? undefined
    : {
        ...limitsOf(entry),
        ...(entry.tenants !== undefined ? { tenants: Object.fromEntries(Object.entries(entry.tenants).map(([t, l]) => [t, limitsOf(l)])) } : {})
      }

export const loadEffect = (file: string | undefined): Effect.Effect<FileConfig, string> =>
  file === undefined ? Effect.succeed({}) : Either.match(load(file), { onLeft: Effect.fail, onRight: Effect.succeed })

/** Where an agent of the config file keeps its tasks: its own `db`, or `<name>.db` beside `--db`. */
export const agentDb = (agent: { readonly name: string; readonly db?: string | undefined }, db: string) =>
  agent.db !== undefined && isPostgresUrl(agent.db) ? agent.db : path.resolve(agent.db ?? path.join(path.dirname(db), `${agent.name}.db`))

/** The config file's `agents` as server options: each a built-in agent with its own store beside --db. */
export const hostedAgents = (
  agents: NonNullable<FileConfig["agents"]>,
  db: string,
  defaults: {
    readonly maxWorkers: number
    readonly recovery: "rerun" | "fail"
    readonly idempotency: "on" | "off"
    readonly idempotencyWindowMs?: number
    readonly retentionMs: number | undefined
    readonly push: Partial<PushOptions>
    readonly leaseMs: number
    readonly storeTimeoutMs?: number
    readonly parkSleepsFromMs?: number
    readonly delegation?: DelegationOptions
    /** The file's top-level flow control: for agents without their own. */
    readonly flowControl?: FlowControlOptions | undefined
  }
): Either.Either<ReadonlyArray<HostedAgent & { readonly maxWorkers: number }>, string> => {
  const onPostgres = isPostgresUrl(db)
  const unplaced = agents.find((a) => a.db === undefined && onPostgres)
  if (unplaced !== undefined) {
    return Either.left(`agents.${unplaced.name}: with a PostgreSQL --db, give each agent its own db (a database URL of its own)`)
  }
  const hosted = agents.map((a) => {
    const base = builtin(a.agent, a.stepDelayMs !== undefined ? { stepDelayMs: a.stepDelayMs } : {})
    return {
      name: a.name,
      agent: {
        ...base,
        ...(a.description !== undefined ? { description: a.description } : {}),
        ...(a.extendedCard !== undefined ? { extendedCard: a.extendedCard } : {})
      },
      db: agentDb(a, db),
      maxWorkers: a.maxWorkers ?? defaults.maxWorkers,
      recovery: a.recovery ?? defaults.recovery,
      idempotency: defaults.idempotency,
      idempotencyWindowMs: defaults.idempotencyWindowMs,
      retentionMs: a.retention !== undefined ? parseDuration(a.retention) : defaults.retentionMs,
      push: defaults.push,
      leaseMs: defaults.leaseMs,
      storeTimeoutMs: defaults.storeTimeoutMs,
      parkSleepsFromMs: defaults.parkSleepsFromMs,
      delegation: defaults.delegation,
      flowControl: flowControlOptions(a.flowControl) ?? defaults.flowControl
    }
  })
  const dbs = hosted.map((h) => h.db)
  const shared = dbs.find((d, i) => dbs.indexOf(d) !== i)
  return shared === undefined ? Either.right(hosted) : Either.left(`two agents would share the store ${shared}; give each its own db`)
}
