import { Args, Command, Options } from "@effect/cli"
import { Config, Console, Effect, Option, Stream } from "effect"
import { randomUUID } from "node:crypto"
import * as A2AClient from "../client/A2AClient.js"
import { age, stateName } from "../domain/eventText.js"
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
const common = { url, token, tenant, json }

type Common = { readonly url: string; readonly token: Option.Option<string>; readonly tenant: Option.Option<string>; readonly json: boolean }

const withTenant = (o: Common, params: Record<string, unknown>) => (Option.isSome(o.tenant) ? { ...params, tenant: o.tenant.value } : params)

/** Run against the server; its refusals and network failures are one line and exit 1. */
const withClient = <A, R>(o: Common, f: (client: A2AClient.A2AClient) => Effect.Effect<A, A2AClient.ClientError | A2AClient.RemoteError, R>) =>
  A2AClient.make({ url: o.url, ...(Option.isSome(o.token) ? { token: o.token.value } : {}) }).pipe(
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

export const tasks = Command.make("tasks").pipe(
  Command.withDescription("A client for any A2A v1.0 server: get, list, cancel, send, subscribe"),
  Command.withSubcommands([get, list, cancel, send, subscribe])
)
