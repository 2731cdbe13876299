/**
 * What went wrong with the store, in a few words a client or an operator can
 * act on: which store, and what kind of fault. Driver errors are recognised
 * by their codes (better-sqlite3's `SQLITE_*`, PostgreSQL's SQLSTATE, Node's
 * socket errors), wherever they sit in the chain of causes. Nothing of the
 * query, the data or the host is repeated.
 */
/** The error and its causes, outermost first (a SqlError wraps the driver's error). */
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
