import { Args, Command, Options } from "@effect/cli"
import { Clock, Console, Effect, Option } from "effect"
import { PushStore } from "../push/PushStore.js"
import { CommandFailed } from "./CommandFailed.js"
import { db, withStore } from "./storeOption.js"

/**
 * `a2a-ledger dead-letters list | redeliver`: webhook deliveries that failed
 * every attempt. Works beside a running server (it opens the store without
 * taking it over); a redelivered row is picked up by the server's next poll,
 * or at its next start.
 */
const json = Options.boolean("json").pipe(Options.withDescription("print JSON (one array) instead of a table"))

const limit = Options.integer("limit").pipe(Options.withDefault(100), Options.withDescription("show at most this many"))

const list = Command.make("list", { db, json, limit }, (o) =>
  withStore(
    o.db,
    Effect.gen(function* () {
      const store = yield* PushStore
      const dead = yield* store.deadLetters(o.limit)
      const rows = yield* Effect.forEach(dead, (d) =>
        Effect.map(store.getConfig(d.taskId, d.configId), (c) => ({ ...d, url: Option.getOrUndefined(Option.map(c, (c) => c.url)) }))
      )
      if (o.json) return yield* Console.log(JSON.stringify(rows, null, 2))
      if (rows.length === 0) return yield* Console.log("no dead letters")
      for (const r of rows) {
        yield* Console.log(
          `${r.id}\ttask ${r.taskId}\tconfig ${r.configId}\tversion ${r.version}\t${r.attempts} attempts\t${r.url ?? "(config deleted)"}\t${r.lastError ?? ""}`
        )
      }
    })
  )
).pipe(Command.withDescription("Show webhook deliveries that failed every attempt"))

const ids = Args.integer({ name: "id" }).pipe(Args.repeated, Args.withDescription("dead letter ids (from `dead-letters list`)"))
const all = Options.boolean("all").pipe(Options.withDescription("redeliver every dead letter"))

const redeliver = Command.make("redeliver", { db, ids, all }, (o) =>
  Effect.gen(function* () {
    if (o.all === o.ids.length > 0) {
      return yield* new CommandFailed({ message: "name the dead letters to redeliver by id, or pass --all (not both)" })
    }
    const now = yield* Clock.currentTimeMillis
    const n = yield* withStore(
      o.db,
      Effect.flatMap(PushStore, (s) => s.redeliver(o.all ? undefined : o.ids, now))
    )
    yield* Console.log(`${n} deliver${n === 1 ? "y" : "ies"} queued again`)
  })
).pipe(Command.withDescription("Queue dead webhook deliveries again, with a fresh set of attempts"))

export const deadLetters = Command.make("dead-letters").pipe(
  Command.withDescription("Webhook deliveries that failed every attempt"),
  Command.withSubcommands([list, redeliver])
)
