import { Duration, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { PgClient } from "@effect/sql-pg"
import * as Reactivity from "@effect/experimental/Reactivity"
import * as fs from "node:fs"
import * as path from "node:path"
import * as MessageIndex from "../projections/MessageIndex.js"
import * as TaskReadModel from "../projections/TaskReadModel.js"
import * as PushStore from "../push/PushStore.js"
import * as Durability from "./Durability.js"
import * as LeaseStore from "./LeaseStore.js"
import * as PgMaintenanceLock from "./PgMaintenanceLock.js"
import * as Pruner from "./Pruner.js"
import type { EventLog } from "./EventLog.js"
import * as Migrations from "./migrations.js"
import * as SqlEventLog from "./SqlEventLog.js"
import { SqlReader } from "./SqlReader.js"
import * as PgCommits from "./PgCommits.js"
import * as SqliteCommits from "./SqliteCommits.js"
import * as SqliteRows from "./SqliteRows.js"
import * as SqliteOwnership from "./SqliteOwnership.js"
import * as StoreFile from "./StoreFile.js"
import * as StoreKind from "./StoreKind.js"
import * as Transactions from "./Transactions.js"

/**
 * The store: the event log, the read model and the push configs and outbox on one SQL client, with the
 * migrations run as part of building the layer (so nothing can use a store
 * whose schema is not there yet).
 */
export type StoreServices =
  | SqlClient.SqlClient
  | EventLog
  | TaskReadModel.TaskReadModel
  | PushStore.PushStore
  | Pruner.Pruner
  | LeaseStore.LeaseStore
  | MessageIndex.MessageIndex
  | StoreFile.StoreFile
  | Durability.Durability
  | StoreKind.StoreKind

const schema = Layer.effectDiscard(Migrations.run)

const services = Layer.mergeAll(SqlEventLog.layer, TaskReadModel.layer, PushStore.layer, Pruner.layer, LeaseStore.layer, MessageIndex.layer)

/** Log + read model over whatever SqlClient is provided; reads share that client. */
export const layerFromClient = Layer.mergeAll(services.pipe(Layer.provide(schema)), StoreFile.layerNone, Durability.layerNone, StoreKind.layerSqlite)

/** The driver's services, with its SqlClient replaced by one whose transactions fail cleanly (see Transactions). */
const withRobustTransactions = <A, E, R>(driver: Layer.Layer<A, E, R>) =>
  Layer.merge(driver, Layer.provide(Transactions.layer, driver as Layer.Layer<SqlClient.SqlClient, E, R>))

/** A second, read-only connection to the same file (WAL is a property of the file, set by the writer). */
const sqliteReader = (filename: string) =>
  Layer.scoped(SqlReader, SqliteClient.make({ filename, readonly: true, disableWAL: true })).pipe(Layer.provide(Reactivity.layer))

/**
 * How hard a commit waits for the disk. `full` (default): every commit is on
 * disk before it is acknowledged, even across a power loss. `normal`: safe
 * against a crash of the process but not of the machine, and faster.
 * (better-sqlite3 would default to `normal` in WAL mode.)
 */
export type SqliteSynchronous = "full" | "normal"

export interface SqliteOptions {
  readonly synchronous?: SqliteSynchronous
  /** Own the file exclusively (default true): what an engine needs; read-only tools pass false. */
  readonly exclusive?: boolean
  /** How long a sync of the disk may take before the commits it holds fail (default 10 s). */
  readonly storeTimeoutMs?: number
}

/** A SQLite file (WAL) with a write connection and a read connection. The directory is created when missing. */
export const layerSqlite = (filename: string, options: SqliteOptions = {}): Layer.Layer<StoreServices, unknown> => {
  const directory = Layer.effectDiscard(
    Effect.try({
      try: () => {
        if (filename !== ":memory:") fs.mkdirSync(path.dirname(path.resolve(filename)), { recursive: true })
      },
      catch: (cause) => new Error(`cannot create the directory of ${filename}: ${(cause as Error).message}`)
    })
  )
  const owned = filename !== ":memory:" && options.exclusive !== false
  // The directory first, then the ownership lock, then the connection: nothing starts on a file another engine owns.
  const before = owned ? Layer.provide(SqliteOwnership.layer(filename), directory) : directory
  const client = withRobustTransactions(SqliteClient.layer({ filename }).pipe(Layer.provide(before)))
  // An engine's `full` is NORMAL plus a sync of the WAL by the writer's thread before each acknowledgement
  // (Durability); a tool beside it leaves the syncing to SQLite.
  const syncsItself = owned && options.synchronous !== "normal"
  const synchronous = Layer.effectDiscard(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Effect.zipRight(
        sql.unsafe(`PRAGMA synchronous = ${options.synchronous === "normal" || syncsItself ? "NORMAL" : "FULL"}`),
        // better-sqlite3 waits for a lock by sleeping on the main thread (5 s by default): a server
        // would stop meanwhile. The engine's connection fails at once instead, and its writer tries
        // again without blocking (TaskWriter). A tool beside it (prune, redeliver) keeps the default
        // wait: it blocks nobody but itself, and the server holds the lock for milliseconds.
        owned ? sql.unsafe("PRAGMA busy_timeout = 0") : Effect.void
      )
    )
  )
  const tuned = Layer.provideMerge(synchronous, client)
  if (filename === ":memory:") return Layer.provideMerge(layerFromClient, tuned)
  // schema first, then the reader (it needs the tables to exist), then the services
  const reader = Layer.merge(sqliteReader(filename), SqliteRows.layer(filename)).pipe(Layer.provide(schema))
  // An engine's writer gets a connection of its own, in a thread of its own (SqliteCommits); a tool has no writer.
  if (!owned)
    return Layer.mergeAll(services.pipe(Layer.provide(reader)), StoreFile.layer(filename), Durability.layerNone, StoreKind.layerSqlite).pipe(
      Layer.provideMerge(tuned)
    )
  const commits = SqliteCommits.layer(filename, { sync: syncsItself ? "wal" : "none", timeoutMs: options.storeTimeoutMs ?? 10_000 }).pipe(
    Layer.provide(schema)
  )
  const durability = syncsItself ? Durability.layerThread : Durability.layerNone
  return Layer.mergeAll(
    services.pipe(Layer.provide(reader)),
    StoreFile.layer(filename),
    Layer.provideMerge(durability, commits),
    StoreKind.layerSqlite
  ).pipe(Layer.provideMerge(tuned))
}

/** Any fixed number: the key of the advisory lock that serialises migrations across instances. */
const migrationLockKey = 727_361_001

/**
 * Migrations on PostgreSQL, safe when several instances start at once: one
 * transaction holds an advisory lock while the migrations table is created
 * and the migrator runs (its own transaction becomes a savepoint), so the
 * others wait and then find nothing left to do.
 */
const pgSchema = Layer.effectDiscard(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.withTransaction(
      Effect.gen(function* () {
        yield* sql`SELECT pg_advisory_xact_lock(${migrationLockKey})`
        yield* sql`CREATE TABLE IF NOT EXISTS a2a_migrations (
          migration_id integer PRIMARY KEY,
          created_at timestamp with time zone NOT NULL DEFAULT now(),
          name text NOT NULL
        )`
        yield* Migrations.run
      })
    )
  )
)

export interface PgOptions {
  /** Connections in the pool (default 10). */
  readonly maxConnections?: number
  /**
   * The store's maintenance lock (PgMaintenanceLock): a server shares it
   * (default), a maintenance command (rebuild) takes it whole, a tool that
   * only reads or appends beside running servers takes none.
   */
  readonly maintenance?: "shared" | "exclusive" | "none"
}

/**
 * A PostgreSQL database. Any number of processes may share it: work goes by
 * leases, streams cross processes by LISTEN/NOTIFY (see the engine).
 */
export const layerPg = (url: string, options: PgOptions = {}): Layer.Layer<StoreServices | PgClient.PgClient, unknown> => {
  const client = withRobustTransactions(
    PgClient.layer({
      url: Redacted.make(url),
      maxConnections: options.maxConnections ?? 10,
      applicationName: "a2a-ledger",
      // Also bounds the wait for a free pooled connection, which is otherwise unbounded.
      connectTimeout: Duration.seconds(5)
    })
  )
  const maintenance = options.maintenance ?? "shared"
  const lock =
    maintenance === "shared" ? PgMaintenanceLock.layerShared(url) : maintenance === "exclusive" ? PgMaintenanceLock.layerExclusive(url) : Layer.empty
  // The lock first: a server waits for a running rebuild, and a rebuild is refused before it migrates anything.
  // The writer's batches: one statement each (PgCommits, migration 0008).
  const kind = Layer.effect(
    StoreKind.StoreKind,
    Effect.map(PgClient.PgClient, (client): StoreKind.Kind => ({ _tag: "postgres", client }))
  )
  return Layer.mergeAll(services, PgCommits.layer, StoreFile.layerNone, Durability.layerNone, kind).pipe(
    Layer.provide(pgSchema),
    Layer.provideMerge(client),
    Layer.provide(lock)
  )
}

/** `postgres://…` and `postgresql://…` name a PostgreSQL database; anything else is a SQLite file. */
export const isPostgresUrl = (db: string) => /^postgres(ql)?:\/\//i.test(db)

/**
 * The store `db` names: a PostgreSQL URL, or a SQLite file. SQLite options
 * apply to files only; a PostgreSQL database may be shared by many processes.
 */
export const layer = (db: string, options: SqliteOptions & PgOptions = {}): Layer.Layer<StoreServices, unknown> =>
  isPostgresUrl(db)
    ? layerPg(db, {
        ...options,
        // `exclusive` as SQLite reads it: an engine (default), a tool beside it (false), or maintenance (true).
        maintenance: options.maintenance ?? (options.exclusive === true ? "exclusive" : options.exclusive === false ? "none" : "shared")
      })
    : layerSqlite(db, options)

/** A store named in a message: a PostgreSQL URL without its password. */
export const describe = (db: string) => (isPostgresUrl(db) ? db.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:…@") : db)
