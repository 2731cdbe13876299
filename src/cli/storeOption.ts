import { Options } from "@effect/cli"
import { Config, Effect, Option } from "effect"
import { parseDuration } from "../engine/Retention.js"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Store from "../eventlog/Store.js"
import { CommandFailed } from "./CommandFailed.js"

const defaultDbPath = "./data/a2a-ledger.db"

/** `--db` for the commands that work on a store, as `serve` reads it. */
export const db = Options.text("db").pipe(
  Options.withFallbackConfig(Config.string("A2A_DB").pipe(Config.orElse(() => Config.string("DATABASE_URL")))),
  Options.withDefault(defaultDbPath),
  Options.withDescription("the store: a SQLite file or a postgres:// URL (env A2A_DB, then DATABASE_URL)")
)

/**
 * Run `effect` on the store `file`, opened without taking it over (so beside
 * a running server) unless `exclusive`. A SQLite file that does not exist is
 * an error, not a new empty store, unless `create` (import); any failure is
 * one line naming the store.
 */
export const withStore = <A, E, R>(
  file: string,
  effect: Effect.Effect<A, E, R>,
  options: { readonly exclusive?: boolean; readonly create?: boolean } = {}
) =>
  Store.isPostgresUrl(file) || options.create === true || fs.existsSync(file)
    ? effect.pipe(
        Effect.provide(Store.layer(file, { exclusive: options.exclusive ?? false })),
        Effect.scoped,
        Effect.mapError((e) =>
          e instanceof CommandFailed ? e : new CommandFailed({ message: `${Store.describe(file)}: ${(e as Error)?.message ?? String(e)}` })
        )
      )
    : Effect.fail(new CommandFailed({ message: missingStore(file) }))

/** Why there is no store, saying what was actually looked for. */
const missingStore = (file: string) =>
  file === defaultDbPath
    ? `no store at ${file}, the default; name yours with --db (or A2A_DB): a SQLite file or a postgres:// URL`
    : `no SQLite file at ${path.resolve(file)}; check the path (a PostgreSQL store is named by a postgres:// URL)`

/** The idempotency window: `serve` keeps message keys this long; `verify` and `rebuild` expect them for as long. */
export const idempotencyWindow = Options.text("idempotency-window").pipe(
  Options.withFallbackConfig(Config.string("A2A_IDEMPOTENCY_WINDOW")),
  Options.withDefault("24h"),
  Options.filterMap((text) => Option.fromNullable(parseDuration(text)), "--idempotency-window must be a duration such as 24h, 7d or 90m"),
  Options.withDescription(
    "how long a messageId stays an idempotency key: a repeat within it returns the original task, after it is a new message (env A2A_IDEMPOTENCY_WINDOW)"
  )
)
