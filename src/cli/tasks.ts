import { Args, Command, Options } from "@effect/cli"
import { Config, Console, Effect, Option, Stream } from "effect"
import { createPublicKey, randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as jose from "jose"
import * as A2AClient from "../client/A2AClient.js"
import * as GrpcClient from "../client/GrpcClient.js"
import { age, stateName } from "../domain/eventText.js"
import { type KeySource, verifyCard } from "../protocol/cardSignature.js"
import { CommandFailed } from "./CommandFailed.js"

/**
 * `a2a-ledger tasks get | list | cancel | send | subscribe`: a client for any
 * A2A v1.0 server. Text for people by default; `--json` prints the server's
 * answers (one JSON value per line when streaming).
 */
const url = Options.text("url").pipe(
  Options.withFallbackConfig(Config.string("A2A_URL")),
  Options.withDefault("http://127.0.0.1:9292"),
  Options.withDescription("the agent's base URL (its card is read from /.well-known/agent-card.json), or a JSON-RPC endpoint (env A2A_URL)")
)
const token = Options.text("token").pipe(
  Options.withFallbackConfig(Config.string("A2A_TOKEN")),
  Options.optional,
  Options.withDescription("sent as Authorization: Bearer (env A2A_TOKEN)")
)
const tenant = Options.text("tenant").pipe(Options.optional, Options.withDescription("the tenant to address"))
const json = Options.boolean("json").pipe(Options.withDescription("print the server's JSON answers instead of text"))
const transport = Options.choice("transport", ["jsonrpc", "grpc"] as const).pipe(
  Options.withFallbackConfig(Config.literal("jsonrpc", "grpc")("A2A_TRANSPORT")),
  Options.withDefault("jsonrpc" as const),
  Options.withDescription("the binding to use: jsonrpc, or grpc (the card's GRPC interface, or --url host:port) (env A2A_TRANSPORT)")
)
const common = { url, token, tenant, json, transport }

type Common = {
  readonly url: string
  readonly token: Option.Option<string>
  readonly tenant: Option.Option<string>
  readonly json: boolean
  readonly transport: "jsonrpc" | "grpc"
}

const withTenant = (o: Common, params: Record<string, unknown>) => (Option.isSome(o.tenant) ? { ...params, tenant: o.tenant.value } : params)

/** Run against the server; its refusals and network failures are one line and exit 1. */
const withClient = <A, R>(o: Common, f: (client: A2AClient.A2AClient) => Effect.Effect<A, A2AClient.ClientError | A2AClient.RemoteError, R>) =>
  (o.transport === "grpc" ? GrpcClient.make : A2AClient.make)({ url: o.url, ...(Option.isSome(o.token) ? { token: o.token.value } : {}) }).pipe(
    Effect.flatMap(f),
    Effect.mapError((e) => new CommandFailed({ message: e._tag === "RemoteError" ? `the server refused: ${e.code} ${e.message}` : e.message }))
  )

const textOfParts = (parts: ReadonlyArray<any> | undefined) =>
  (parts ?? [])
    .map((p) => p.text ?? (p.data !== undefined ? JSON.stringify(p.data) : (p.url ?? (p.raw !== undefined ? `<${p.filename ?? "file"}>` : ""))))
    .join(" ")

const describeTask = (t: any): Array<string> => {
  const when = t.status?.timestamp ? ` (${age(Date.now() - Date.parse(t.status.timestamp))} ago)` : ""
  const lines = [`task ${t.id}  ${stateName(t.status?.state ?? "?")}${when}  context ${t.contextId}`]
  if (t.status?.message) lines.push(`  agent: ${textOfParts(t.status.message.parts)}`)
  for (const a of t.artifacts ?? []) lines.push(`  artifact ${a.name ?? a.artifactId}: ${textOfParts(a.parts)}`)
  return lines
}

const describeEvent = (r: any): string => {
  if (r.task !== undefined) return describeTask(r.task).join("\n")
  if (r.message !== undefined) return `message (${r.message.role === "ROLE_AGENT" ? "agent" : "user"}): ${textOfParts(r.message.parts)}`
  if (r.statusUpdate !== undefined) {
    const s = r.statusUpdate.status
    return `status ${stateName(s.state)}${s.message ? `: ${textOfParts(s.message.parts)}` : ""}`
  }
  if (r.artifactUpdate !== undefined) {
    const a = r.artifactUpdate.artifact
    return `artifact ${a.name ?? a.artifactId}${r.artifactUpdate.append ? " (chunk)" : ""}: ${textOfParts(a.parts)}`
  }
  return JSON.stringify(r)
}

const print = (o: Common, value: unknown, text: () => string) => Console.log(o.json ? JSON.stringify(value) : text())

const id = Args.text({ name: "taskId" })
const historyLength = Options.integer("history-length").pipe(Options.optional, Options.withDescription("at most this many history messages"))

const get = Command.make("get", { ...common, id, historyLength }, (o) =>
  withClient(o, (c) =>
    Effect.gen(function* () {
      const params = withTenant(o, { id: o.id, ...(Option.isSome(o.historyLength) ? { historyLength: o.historyLength.value } : {}) })
      const t = yield* c.call("GetTask", params)
      yield* print(o, t, () => [...describeTask(t), `  history: ${(t.history ?? []).length} message(s)`].join("\n"))
    })
  )
).pipe(Command.withDescription("Show a task (GetTask)"))

const contextId = Options.text("context").pipe(Options.optional, Options.withDescription("only this context's tasks"))
const state = Options.text("state").pipe(Options.optional, Options.withDescription("only tasks in this state, e.g. working or TASK_STATE_WORKING"))
const pageSize = Options.integer("page-size").pipe(Options.optional, Options.withDescription("tasks per page (1-100)"))
const pageToken = Options.text("page-token").pipe(Options.optional, Options.withDescription("the nextPageToken of a previous page"))

const toState = (s: string) => (s.toUpperCase().startsWith("TASK_STATE_") ? s.toUpperCase() : `TASK_STATE_${s.toUpperCase().replace(/-/g, "_")}`)

const list = Command.make("list", { ...common, contextId, state, pageSize, pageToken }, (o) =>
  withClient(o, (c) =>
    Effect.gen(function* () {
      const params = withTenant(o, {
        ...(Option.isSome(o.contextId) ? { contextId: o.contextId.value } : {}),
        ...(Option.isSome(o.state) ? { status: toState(o.state.value) } : {}),
        ...(Option.isSome(o.pageSize) ? { pageSize: o.pageSize.value } : {}),
        ...(Option.isSome(o.pageToken) ? { pageToken: o.pageToken.value } : {})
      })
      const page = yield* c.call("ListTasks", params)
      yield* print(o, page, () =>
        [
          ...(page.tasks ?? []).map(
            (t: any) => `${t.id}  ${stateName(t.status?.state ?? "?").padEnd(14)} ${t.status?.timestamp ?? ""}  context ${t.contextId}`
          ),
          `${(page.tasks ?? []).length} of ${page.totalSize ?? "?"} task(s)${page.nextPageToken ? `; next page: --page-token ${page.nextPageToken}` : ""}`
        ].join("\n")
      )
    })
  )
).pipe(Command.withDescription("List tasks, newest first (ListTasks)"))

const cancel = Command.make("cancel", { ...common, id }, (o) =>
  withClient(o, (c) => Effect.flatMap(c.call("CancelTask", withTenant(o, { id: o.id })), (t) => print(o, t, () => describeTask(t).join("\n"))))
).pipe(Command.withDescription("Cancel a task (CancelTask)"))

const text = Args.text({ name: "text" }).pipe(Args.withDescription("the message's text"))
const taskOption = Options.text("task").pipe(Options.optional, Options.withDescription("continue this task (answer its question)"))
const messageId = Options.text("message-id").pipe(
  Options.optional,
  Options.withDescription("the message's id (default: a new UUID); sending the same id again is answered with the same task")
)
const streamOption = Options.boolean("stream").pipe(Options.withDescription("SendStreamingMessage: print each event as it comes"))
const immediate = Options.boolean("immediate").pipe(Options.withDescription("return at once instead of waiting for the task to settle"))

const send = Command.make("send", { ...common, text, taskOption, contextId, messageId, streamOption, immediate }, (o) =>
  withClient(o, (c) =>
    Effect.gen(function* () {
      const message = {
        messageId: Option.getOrElse(o.messageId, () => randomUUID()),
        role: "ROLE_USER",
        parts: [{ text: o.text }],
        ...(Option.isSome(o.taskOption) ? { taskId: o.taskOption.value } : {}),
        ...(Option.isSome(o.contextId) ? { contextId: o.contextId.value } : {})
      }
      const params = withTenant(o, { message, ...(o.immediate ? { configuration: { returnImmediately: true } } : {}) })
      if (o.streamOption) {
        return yield* c.stream("SendStreamingMessage", params).pipe(Stream.runForEach((r) => print(o, r, () => describeEvent(r))))
      }
      const r = yield* c.call("SendMessage", params)
      yield* print(o, r, () => describeEvent(r))
    })
  )
).pipe(Command.withDescription("Send a message (SendMessage, or SendStreamingMessage with --stream)"))

const subscribe = Command.make("subscribe", { ...common, id }, (o) =>
  withClient(o, (c) => c.stream("SubscribeToTask", withTenant(o, { id: o.id })).pipe(Stream.runForEach((r) => print(o, r, () => describeEvent(r)))))
).pipe(Command.withDescription("Follow a task's events until it finishes or pauses (SubscribeToTask)"))

const cardFile = Options.file("card", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("read the card from this file instead of the server's /.well-known/agent-card.json")
)
const jwks = Options.text("jwks").pipe(
  Options.optional,
  Options.withDescription("verify the card's signature against this JSON Web Key Set: a URL, or a file")
)
const keyFile = Options.file("key", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("verify the card's signature against this public key (PEM or a JWK in JSON)")
)

/** Where a card's signature is checked against: a JWKS (URL or file) or one public key (PEM or JWK file). */
const keySource = (o: { readonly jwks: Option.Option<string>; readonly keyFile: Option.Option<string> }) =>
  Effect.tryPromise({
    try: async (): Promise<KeySource | undefined> => {
      if (Option.isSome(o.jwks)) {
        const where = o.jwks.value
        if (/^https?:\/\//.test(where)) return jose.createRemoteJWKSet(new URL(where))
        return jose.createLocalJWKSet(JSON.parse(fs.readFileSync(where, "utf8")))
      }
      if (Option.isSome(o.keyFile)) {
        const text = fs.readFileSync(o.keyFile.value, "utf8")
        return text.trim().startsWith("{") ? createPublicKey({ key: JSON.parse(text), format: "jwk" }) : createPublicKey(text)
      }
      return undefined
    },
    catch: (e) => new CommandFailed({ message: `the verification key cannot be read: ${(e as Error).message}` })
  })

const card = Command.make("card", { url, token, json, cardFile, jwks, keyFile }, (o) =>
  Effect.gen(function* () {
    const keys = yield* keySource(o)
    const read: Record<string, unknown> = yield* Option.match(o.cardFile, {
      onSome: (file) =>
        Effect.try({
          try: () => JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>,
          catch: (e) => new CommandFailed({ message: `${file} is not a JSON agent card: ${(e as Error).message}` })
        }),
      onNone: () =>
        Effect.tryPromise({
          try: async () => {
            const res = await fetch(`${o.url.replace(/\/+$/, "")}/.well-known/agent-card.json`, {
              headers: { accept: "application/json", ...(Option.isSome(o.token) ? { authorization: `Bearer ${o.token.value}` } : {}) }
            })
            if (!res.ok) throw new Error(`HTTP ${res.status}`)
            return (await res.json()) as Record<string, unknown>
          },
          catch: (e) => new CommandFailed({ message: `cannot read the agent card from ${o.url}: ${(e as Error).message}` })
        })
    })
    const signatures = Array.isArray(read.signatures) ? read.signatures.length : 0
    let verdict = signatures === 0 ? "unsigned" : `${signatures} signature(s), not checked (give --jwks or --key)`
    if (keys !== undefined) {
      const kid = yield* Effect.tryPromise({
        try: () => verifyCard(read, keys),
        catch: (e) => new CommandFailed({ message: `the card's signature does not verify: ${(e as Error).message}` })
      })
      verdict = `signature verified (key ${kid})`
    }
    yield* o.json
      ? Console.log(JSON.stringify(read, null, 2))
      : Console.log(
          [
            `${read.name} ${read.version ?? ""}`.trim(),
            ...(Array.isArray(read.supportedInterfaces)
              ? read.supportedInterfaces.map((i: any) => `  ${i.protocolBinding} ${i.protocolVersion ?? ""}  ${i.url}`)
              : []),
            `  skills: ${Array.isArray(read.skills) ? read.skills.map((k: any) => k.id).join(", ") : ""}`,
            `  ${verdict}`
          ].join("\n")
        )
  })
).pipe(Command.withDescription("Show an agent's card; with --jwks or --key, verify its signature (spec §8.4) and exit 1 when it does not verify"))

export const tasks = Command.make("tasks").pipe(
  Command.withDescription("A client for any A2A v1.0 server: get, list, cancel, send, subscribe, card"),
  Command.withSubcommands([get, list, cancel, send, subscribe, card])
)
