import { Args, Command, Options } from "@effect/cli"
import { Config, Console, Effect, Option } from "effect"
import { randomUUID } from "node:crypto"
import * as path from "node:path"
import type { TaskSnapshot } from "../domain/Task.js"
import { isTerminal } from "../domain/TaskState.js"
import { CommandRefused, TaskWriter } from "../engine/TaskWriter.js"
import * as Store from "../eventlog/Store.js"
import * as Engine from "../layers/Engine.js"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { presentTask } from "../protocol/present.js"
import { CommandFailed } from "./CommandFailed.js"
import * as ConfigFile from "./configFile.js"
import { db, withStore } from "./storeOption.js"

/**
 * `a2a-ledger task get | cancel <agent> <task-id>`: Hector's task commands, verbatim. Client mode (`--url`,
 * `--token`) asks a server through its `/v1/agents/{agent}/…` routes; local mode (`--config FILE`) reads
 * and writes the configured agent's store directly, no server needed. Text like Hector's by default,
 * `--json` for the task itself.
 */
const agent = Args.text({ name: "agent" }).pipe(Args.withDescription("the agent's name (its route name; in local mode, its name in the config file)"))
const taskId = Args.text({ name: "task-id" }).pipe(Args.withDescription("the task's id"))
const url = Options.text("url").pipe(
  Options.withFallbackConfig(Config.string("A2A_URL")),
  Options.optional,
  Options.withDescription("client mode: the server's base URL (env A2A_URL; default http://127.0.0.1:9292)")
)
const token = Options.text("token").pipe(
  Options.withFallbackConfig(Config.string("A2A_TOKEN")),
  Options.optional,
  Options.withDescription("client mode: sent as Authorization: Bearer (env A2A_TOKEN)")
)
const config = Options.file("config", { exists: "yes" }).pipe(
  Options.optional,
  Options.withDescription("local mode: the server's config file; the agent's store is read (and written) directly, with no server")
)
const json = Options.boolean("json").pipe(Options.withDescription("print the task as JSON instead of text"))
const options = { agent, taskId, url, token, config, db, json }

interface TaskOptions {
  readonly agent: string
  readonly taskId: string
  readonly url: Option.Option<string>
  readonly token: Option.Option<string>
  readonly config: Option.Option<string>
  readonly db: string
  readonly json: boolean
}

/** A task as Hector prints it: `Created` only where the store says (a remote A2A task carries no creation time). */
const describe = (task: any, createdAt?: string) =>
  [
    `Task ID: ${task.id}`,
    `Status: ${task.status?.state ?? "?"}`,
    `Context ID: ${task.contextId}`,
    ...(createdAt !== undefined && createdAt !== "" ? [`Created: ${createdAt}`] : []),
    ...(task.status?.timestamp !== undefined ? [`Updated: ${task.status.timestamp}`] : [])
  ].join("\n")

// ---------------------------------------------------------------- client mode

/** One call to a server's Hector route; its Status error as one line. */
const remote = (o: TaskOptions, method: "GET" | "POST", suffix: string) =>
  Effect.tryPromise({
    try: async () => {
      const base = Option.getOrElse(o.url, () => "http://127.0.0.1:9292").replace(/\/+$/, "")
      const target = `${base}/v1/agents/${encodeURIComponent(o.agent)}/tasks/${encodeURIComponent(o.taskId)}${suffix}`
      const response = await fetch(target, {
        method,
        headers: {
          accept: "application/json",
          ...(method === "POST" ? { "content-type": "application/json" } : {}),
          ...(Option.isSome(o.token) ? { authorization: `Bearer ${o.token.value}` } : {})
        },
        ...(method === "POST" ? { body: "{}" } : {})
      })
      const text = await response.text()
      let body: any
      try {
        body = JSON.parse(text)
      } catch {
        body = undefined
      }
      return { status: response.status, body, text }
    },
    catch: (e) => new CommandFailed({ message: `cannot reach ${Option.getOrElse(o.url, () => "http://127.0.0.1:9292")}: ${(e as Error).message}` })
  }).pipe(
    Effect.flatMap(({ status, body, text }) =>
      status >= 200 && status < 300 && body !== undefined
        ? Effect.succeed(body)
        : Effect.fail(
            new CommandFailed({
              message:
                body?.error !== undefined
                  ? `the server refused: ${body.error.code} ${body.error.status}: ${body.error.message}`
                  : `the server answered ${status}: ${text.slice(0, 200)}`
            })
          )
    )
  )

// ---------------------------------------------------------------- local mode

/** The store of the config file's agent `name`: its own `db`, or `<name>.db` beside `--db`; without `agents`, `--db` itself. */
const localStore = (o: TaskOptions, file: string) =>
  Effect.gen(function* () {
    const loaded = yield* ConfigFile.loadEffect(file).pipe(Effect.mapError((message) => new CommandFailed({ message })))
    const agents = loaded.agents ?? []
    if (agents.length === 0) return o.db
    const entry = agents.find((a) => a.name === o.agent)
    if (entry === undefined) {
      return yield* new CommandFailed({
        message: `the config file ${path.basename(file)} has no agent named ${JSON.stringify(o.agent)}: it has ${agents.map((a) => a.name).join(", ")}`
      })
    }
    return ConfigFile.agentDb(entry, o.db)
  })

const notFound = (o: TaskOptions) => new CommandFailed({ message: `Task ${o.taskId} not found in agent ${o.agent}'s store` })

const localTask = (o: TaskOptions) =>
  Effect.gen(function* () {
    const readModel = yield* TaskReadModel
    const found = yield* readModel.get(o.taskId)
    if (Option.isNone(found)) return yield* notFound(o)
    return found.value
  })

/**
 * Cancel in the store itself: the writer commits CANCELED as CancelTask would. A SQLite file needs no
 * server on it (its server would not know); a task's worker on a PostgreSQL store is stopped by its
 * instance, which sees the commit as any other instance's cancel.
 */
const localCancel = (o: TaskOptions) =>
  Effect.gen(function* () {
    const current = yield* localTask(o)
    const state = current.task.status.state
    if (state === "TASK_STATE_CANCELED") return current
    if (isTerminal(state)) return yield* new CommandFailed({ message: `Task ${o.taskId} is ${state} and cannot be canceled` })
    const writer = yield* TaskWriter
    const committed = yield* writer.commit(o.taskId, { type: "Cancel", reason: "canceled with a2a-ledger task cancel" }).pipe(
      Effect.catchIf(
        (e): e is CommandRefused => e instanceof CommandRefused,
        () => Effect.fail(new CommandFailed({ message: `Task ${o.taskId} finished meanwhile and cannot be canceled` }))
      )
    )
    return committed.snapshot
  }).pipe(Effect.provide(Engine.layerWriter(`cli-${randomUUID()}`)))

// ---------------------------------------------------------------- commands

const show = (o: TaskOptions, task: unknown, createdAt: string | undefined, done?: string) =>
  Console.log(o.json ? JSON.stringify(task, null, 2) : [...(done !== undefined ? [done] : []), describe(task, createdAt)].join("\n"))

const presented = (s: TaskSnapshot) => Effect.flatMap(TaskReadModel, (readModel) => Effect.map(readModel.whole(s), (w) => presentTask(w.task)))

/** Local mode (`--config`) or client mode; both at once is a mistake worth saying. */
const mode = <A, E, R>(o: TaskOptions, local: (file: string) => Effect.Effect<A, E, R>, client: Effect.Effect<A, E, R>) =>
  Option.isSome(o.config) && Option.isSome(o.url)
    ? Effect.fail(new CommandFailed({ message: "give --url (ask a server) or --config (read the store directly), not both" }))
    : Option.isSome(o.config)
      ? local(o.config.value)
      : client

const get = Command.make("get", options, (o) =>
  mode(
    o,
    (file) =>
      Effect.flatMap(localStore(o, file), (store) =>
        withStore(
          store,
          Effect.flatMap(localTask(o), (s) => Effect.flatMap(presented(s), (task) => show(o, task, s.createdAt)))
        )
      ),
    Effect.flatMap(remote(o, "GET", ""), (task) => show(o, task, undefined))
  )
).pipe(Command.withDescription("Show a task: client mode (--url) asks the server, local mode (--config) reads the agent's store"))

const cancel = Command.make("cancel", options, (o) =>
  mode(
    o,
    (file) =>
      Effect.flatMap(localStore(o, file), (store) =>
        withStore(
          store,
          Effect.flatMap(localCancel(o), (s) => Effect.flatMap(presented(s), (task) => show(o, task, s.createdAt, "Task cancelled successfully"))),
          // SQLite: the file is taken over, so a server running on it refuses this (and keeps its worker).
          { exclusive: !Store.isPostgresUrl(store) }
        )
      ),
    Effect.flatMap(remote(o, "POST", ":cancel"), (task) => show(o, task, undefined, "Task cancelled successfully"))
  )
).pipe(Command.withDescription("Cancel a task: client mode (--url) through the server, local mode (--config) in the agent's store"))

export const task = Command.make("task").pipe(
  Command.withDescription("Hector-style task commands: get and cancel one task of a named agent"),
  Command.withSubcommands([get, cancel])
)
