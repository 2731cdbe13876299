import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { adminRun } from "./pg"

/** Fault injection for store-fault tests: real locks and real terminated connections, nothing mocked. */

/** Another process's write lock on a SQLite file (a connection of this test process), held until `release`. */
export const holdWriteLock = async (file: string) => {
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(SqliteClient.layer({ filename: file }), scope))
  const sql = Context.get(context, SqlClient.SqlClient)
  await Effect.runPromise(sql.unsafe("BEGIN IMMEDIATE"))
  let held = true
  return {
    release: async () => {
      if (!held) return
      held = false
      await Effect.runPromise(sql.unsafe("ROLLBACK").pipe(Effect.zipRight(Scope.close(scope, Exit.void))))
    }
  }
}

/**
 * Terminate every PostgreSQL backend with this application name, as a restart
 * or a failover does; a server under test gets a name of its own (URL
 * parameter `application_name`), so nothing else on the database is touched.
 */
export const terminateBackends = (applicationName: string) =>
  adminRun(
    (sql) => sql<{ n: number }>`SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = ${applicationName}`
  ).then((rows) => rows[0]!.n)

/** How many sessions of this application hold a share of a store's maintenance lock (PgMaintenanceLock). */
export const sharedMaintenanceLocks = (applicationName: string) =>
  adminRun(
    (sql) => sql<{ n: number }>`SELECT COUNT(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid = 727361002 AND l.mode = 'ShareLock' AND l.granted
        AND a.application_name = ${applicationName}`
  ).then((rows) => rows[0]!.n)

/** An answer within `ms`, or a failure saying the request hung: a fault test's own deadline, not vitest's. */
export const answered = <A>(what: string, promise: Promise<A>, ms = 15_000): Promise<A> =>
  Promise.race([promise, new Promise<A>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))])
