import { Effect, Exit, Layer, Option } from "effect"
import { SqlClient, type SqlConnection } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"

/**
 * Transactions that fail like any other statement. @effect/sql's own
 * `withTransaction` turns a failed COMMIT or ROLLBACK into a defect, and a
 * defect in the ROLLBACK replaces the error that caused it. On a store fault
 * that is the usual case: SQLite rolls a transaction back by itself on
 * SQLITE_FULL, so the ROLLBACK that follows fails ("no transaction is
 * active"), and a connection PostgreSQL terminated fails both. The writer
 * then saw an unexplained defect instead of "disk full", and died of it.
 *
 * Here a failed COMMIT is the transaction's SqlError, a failed ROLLBACK (or
 * ROLLBACK TO SAVEPOINT) is ignored, and the error the caller sees is the one
 * that made the transaction fail. Nested calls use savepoints, as before.
 * On SQLite a transaction begins IMMEDIATE (see below).
 */
type Client = SqlClient.SqlClient

type Transaction = readonly [conn: SqlConnection.Connection, depth: number]

const exec = (tx: Transaction, statement: string) => tx[0].executeUnprepared(statement, [], undefined)

/** `effect` with its statements on the transaction's connection. */
const within = <A, E, R>(effect: Effect.Effect<A, E, R>, tx: Transaction): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, SqlClient.TransactionConnection, tx) as Effect.Effect<A, E, R>

const withTransaction = (sql: Client) => {
  // SQLite: take the write lock at once, so a lock another process holds fails the BEGIN (and the
  // writer retries it) instead of the first write after reads. PostgreSQL: a plain BEGIN.
  const begin = sql.onDialectOrElse({ sqlite: () => "BEGIN IMMEDIATE", orElse: () => "BEGIN" })
  /** End a failed transaction; a failed ROLLBACK (SQLite already rolled back) changes nothing. */
  const abandon = <A, E>(tx: Transaction, statement: string, exit: Exit.Exit<A, E>) => Effect.zipRight(Effect.ignore(exec(tx, statement)), exit)

  return <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (outer): Effect.Effect<A, E | SqlError, R> => {
        if (Option.isSome(outer)) {
          const depth = outer.value[1] + 1
          const inner: Transaction = [outer.value[0], depth]
          const name = `a2a_savepoint_${depth}`
          return exec(inner, `SAVEPOINT ${name}`).pipe(
            Effect.zipRight(Effect.exit(restore(within(effect, inner)))),
            Effect.flatMap((exit) => (Exit.isSuccess(exit) ? exit : abandon(inner, `ROLLBACK TO SAVEPOINT ${name}`, exit)))
          )
        }
        return Effect.scoped(
          Effect.flatMap(restore(sql.reserve), (conn) => {
            const tx: Transaction = [conn, 0]
            return exec(tx, begin).pipe(
              Effect.zipRight(Effect.exit(restore(within(effect, tx)))),
              Effect.flatMap((exit) =>
                Exit.isFailure(exit)
                  ? abandon(tx, "ROLLBACK", exit)
                  : Effect.matchCauseEffect(exec(tx, "COMMIT"), {
                      onSuccess: () => exit,
                      // SQLite keeps the transaction open after some failed COMMITs (SQLITE_BUSY): end it here.
                      onFailure: (cause) => abandon(tx, "ROLLBACK", Exit.failCause(cause))
                    })
              )
            )
          })
        )
      })
    )
}

/** The same client, with `withTransaction` as described above. */
export const robust = (sql: Client): Client => {
  // The client is a tagged-template function carrying its helpers as properties: copy them onto a new one.
  const call = (...args: Array<any>) => (sql as any)(...args)
  const client: any = Object.assign(call, sql)
  client.withTransaction = withTransaction(client)
  client.safe = client
  return client
}

/** Replaces the SqlClient it is given with the robust one (provide the driver's layer to it). */
export const layer = Layer.effect(SqlClient.SqlClient, Effect.map(SqlClient.SqlClient, robust))
