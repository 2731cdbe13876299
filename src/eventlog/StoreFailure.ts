import { Data, Effect } from "effect"
import { SqlError } from "@effect/sql/SqlError"

/**
 * The store failed (disk, database, connection) or did not answer in time:
 * nothing the failing call was to do is acknowledged. The one error the
 * engine's store fails with, whatever the database: its `cause` is the
 * driver's error (its code tells the fault), its `message` what the store was
 * doing (for the logs), its `description` what went wrong in a few words.
 */
export class StoreFailure extends Data.TaggedError("StoreFailure")<{
  readonly cause: unknown
  /** What to tell a client instead of the fault's description (a timeout, a shutdown). */
  readonly reason?: string
  readonly message?: string
}> {
  /** What went wrong, in a few words fit for a client: "SQLite: the disk is full". */
  get description(): string {
    return this.reason ?? describeStoreFault(this.cause)
  }
}

/** A SqlError as the store's failure: the driver's error is its cause. */
const fromSqlError = (error: SqlError): StoreFailure => new StoreFailure({ cause: error.cause, message: error.message })

const sqlAsStore = (error: unknown) => (error instanceof SqlError ? fromSqlError(error) : error)

/** `effect`, its SqlErrors as StoreFailures (its other errors as they are). */
export const storeFailing = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, Exclude<E, SqlError> | StoreFailure, R> =>
  Effect.mapError(effect, sqlAsStore) as Effect.Effect<A, Exclude<E, SqlError> | StoreFailure, R>

type Failing<T> =
  T extends Effect.Effect<infer A, infer E, infer R>
    ? Effect.Effect<A, Exclude<E, SqlError> | StoreFailure, R>
    : T extends (...args: infer P) => Effect.Effect<infer A, infer E, infer R>
      ? (...args: P) => Effect.Effect<A, Exclude<E, SqlError> | StoreFailure, R>
      : T

type StoreFailing<S> = { readonly [K in keyof S]: Failing<S[K]> }

/**
 * A store service written on @effect/sql, failing with StoreFailure instead of SqlError: each effect and
 * each method's effect is mapped at this boundary, so nothing of the driver's API leaks to the callers.
 */
export const storeService = <S extends object>(service: S): StoreFailing<NoInfer<S>> => {
  const wrapped: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(service)) {
    wrapped[key] = Effect.isEffect(value)
      ? storeFailing(value)
      : typeof value === "function"
        ? (...args: Array<unknown>) => {
            const result = value(...args)
            return Effect.isEffect(result) ? storeFailing(result) : result
          }
        : value
  }
  return wrapped as StoreFailing<S>
}

/**
 * What went wrong with the store, in a few words a client or an operator can
 * act on: which store, and what kind of fault. Driver errors are recognised
 * by their codes (better-sqlite3's `SQLITE_*`, PostgreSQL's SQLSTATE, Node's
 * socket errors), wherever they sit in the chain of causes. Nothing of the
 * query, the data or the host is repeated.
 */
/** The error and its causes, outermost first (a StoreFailure or a SqlError wraps the driver's error). */
const chainOf = (cause: unknown): ReadonlyArray<{ readonly code?: unknown; readonly message?: unknown }> => {
  const chain: Array<{ readonly code?: unknown; readonly message?: unknown }> = []
  let current: unknown = cause
  for (let depth = 0; depth < 6 && current !== null && typeof current === "object"; depth++) {
    chain.push(current as { code?: unknown; message?: unknown })
    current = (current as { cause?: unknown }).cause
  }
  return chain
}

const sqlite: Record<string, string> = {
  SQLITE_FULL: "SQLite: the disk is full",
  SQLITE_BUSY: "SQLite: the database file is locked by another process",
  SQLITE_LOCKED: "SQLite: the database file is locked",
  SQLITE_READONLY: "SQLite: the database file is read-only",
  SQLITE_IOERR: "SQLite: an I/O error on the database file",
  SQLITE_CANTOPEN: "SQLite: the database file cannot be opened",
  SQLITE_CORRUPT: "SQLite: the database file is damaged",
  SQLITE_NOTADB: "SQLite: the database file is damaged",
  A2A_SQLITE_FILE_GONE: "SQLite: the database file was removed or replaced while the server ran"
}

const network: Record<string, string> = {
  ECONNREFUSED: "PostgreSQL: the server refuses connections",
  ECONNRESET: "PostgreSQL: the connection was lost",
  EPIPE: "PostgreSQL: the connection was lost",
  ETIMEDOUT: "PostgreSQL: the server did not answer",
  ENOTFOUND: "PostgreSQL: the server's host name is unknown",
  EAI_AGAIN: "PostgreSQL: the server's host name cannot be resolved"
}

/** A short description of a store fault, e.g. "SQLite: the disk is full". */
export const describeStoreFault = (cause: unknown): string => {
  if (cause instanceof StoreFailure) return cause.description
  const chain = chainOf(cause)
  for (const { code } of chain) {
    if (typeof code !== "string") continue
    // Extended result codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT) describe as their primary code.
    const primary = Object.keys(sqlite).find((k) => code === k || code.startsWith(`${k}_`))
    const known = (primary !== undefined ? sqlite[primary] : undefined) ?? network[code]
    if (known !== undefined) return known
    // SQLSTATE classes: 08 connection exception, 57 operator intervention (shutdown, terminated backend), 53 insufficient resources.
    if (/^08[0-9A-Z]{3}$/.test(code)) return "PostgreSQL: the connection failed"
    if (/^57P0[1-3]$/.test(code)) return "PostgreSQL: the server closed the connection (restart or failover)"
    if (/^53[0-9A-Z]{3}$/.test(code)) return "PostgreSQL: the server is out of resources"
  }
  const text = chain.map((e) => String(e.message ?? "")).join(" | ") || String(cause)
  if (/Connection terminated|not queryable|Connection error|Failed to acquire connection/i.test(text)) return "PostgreSQL: the connection was lost"
  if (/timed? ?out|did not answer/i.test(text)) return "the store did not answer in time"
  return "the store failed"
}
