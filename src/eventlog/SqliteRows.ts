import Database from "better-sqlite3"
import { Context, Effect, Layer } from "effect"
import { StoreFailure } from "./StoreFailure.js"

/**
 * The read model's hottest reads on a SQLite file (GetTask, a stream's start,
 * a poll), as statements prepared once on a read-only connection of their
 * own: one synchronous call each, where a query through @effect/sql compiles
 * its SQL, opens a span and a scope, and takes a connection every time. WAL
 * lets this connection read committed rows while the writer writes.
 */
export class SqliteRows extends Context.Tag("a2a-ledger/SqliteRows")<
  SqliteRows,
  {
    /** The task's snapshot JSON, if it exists (and, with a scope, if it belongs to that tenant and owner). */
    readonly snapshot: (
      taskId: string,
      scope?: { readonly tenant: string; readonly owner: string }
    ) => Effect.Effect<string | undefined, StoreFailure>
    readonly version: (taskId: string) => Effect.Effect<number | undefined, StoreFailure>
  }
>() {}

const storeFailure = (cause: unknown) => new StoreFailure({ cause, message: "a read of the task's row failed" })

/** The connection, opened on a store whose schema is in place. */
export const layer = (filename: string) =>
  Layer.scoped(
    SqliteRows,
    Effect.gen(function* () {
      const db = yield* Effect.acquireRelease(Effect.try({ try: () => new Database(filename, { readonly: true }), catch: storeFailure }), (db) =>
        Effect.sync(() => db.close())
      )
      const statements = yield* Effect.try({
        try: () => ({
          snapshot: db.prepare<[string], { snapshot: string }>("SELECT snapshot FROM a2a_tasks WHERE task_id = ?"),
          visible: db.prepare<[string, string, string], { snapshot: string }>(
            "SELECT snapshot FROM a2a_tasks WHERE task_id = ? AND tenant = ? AND owner = ?"
          ),
          version: db.prepare<[string], { version: number }>("SELECT version FROM a2a_tasks WHERE task_id = ?")
        }),
        catch: storeFailure
      })
      return SqliteRows.of({
        snapshot: (taskId, scope) =>
          Effect.try({
            try: () => (scope === undefined ? statements.snapshot.get(taskId) : statements.visible.get(taskId, scope.tenant, scope.owner))?.snapshot,
            catch: storeFailure
          }),
        version: (taskId) => Effect.try({ try: () => statements.version.get(taskId)?.version, catch: storeFailure })
      })
    })
  )
