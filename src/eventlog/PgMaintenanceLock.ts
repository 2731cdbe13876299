import { Data, Deferred, Duration, Effect, Layer, Redacted } from "effect"
import { PgClient } from "@effect/sql-pg"
import * as Reactivity from "@effect/experimental/Reactivity"

/**
 * Servers and maintenance on one PostgreSQL store. Every server holds a
 * shared advisory lock for its whole life; `rebuild`, which rewrites the
 * read model under the servers' feet, needs the lock exclusively, so it is
 * refused while any server runs (as SQLite refuses it through the owner's
 * file lock), and a server that starts meanwhile waits until it is done.
 *
 * The lock is keyed by the schema (`hashtext(current_schema())`), so stores
 * in different schemas of one database do not block each other. A session
 * lock lives as long as its connection: the lock has a connection of its
 * own (outside the store's pool, which it would otherwise shrink), and a
 * server takes the lock again on a new one if that connection dies (a
 * restart, a terminated backend).
 */
const lockClass = 727_361_002

/** Servers run on this store: a maintenance command must wait until they stop. */
export class ServersRunning extends Data.TaggedError("ServersRunning")<{ readonly message: string }> {}

const key = "$1, hashtext(current_schema())"

/** A pool of one connection, for the lock alone. */
const lockClient = (url: string) =>
  PgClient.make({ url: Redacted.make(url), maxConnections: 1, applicationName: "a2a-ledger", connectTimeout: Duration.seconds(5) })

/** A server's share of the lock on the store at `url`, held until the layer is released. */
export const layerShared = (url: string) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const sql = yield* lockClient(url)
      // Succeeds when the lock is first held; fails if the first attempt does (the server must not start then).
      const held = yield* Deferred.make<void, unknown>()
      const holdOnce = Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* sql.reserve
          yield* conn.executeUnprepared(`SELECT pg_advisory_lock_shared(${key})`, [lockClass], undefined)
          yield* Deferred.succeed(held, undefined)
          // Fails when the connection dies, and the lock with it: then it is taken again.
          for (;;) {
            yield* Effect.sleep(Duration.seconds(2))
            yield* conn.executeUnprepared("SELECT 1", [], undefined)
          }
        })
      )
      yield* holdOnce.pipe(
        Effect.catchAllCause((cause) =>
          Effect.zipRight(
            Deferred.failCause(held, cause),
            Effect.logWarning("the connection holding the maintenance lock was lost; taking the lock again", cause)
          )
        ),
        Effect.zipRight(Effect.sleep(Duration.seconds(1))),
        Effect.forever,
        Effect.forkScoped
      )
      yield* Deferred.await(held)
    })
  ).pipe(Layer.provide(Reactivity.layer))

/** The whole lock on the store at `url`, for a maintenance command, or ServersRunning at once. */
export const layerExclusive = (url: string) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const sql = yield* lockClient(url)
      const conn = yield* sql.reserve
      const rows = (yield* conn.executeUnprepared(`SELECT pg_try_advisory_lock(${key}) AS locked`, [lockClass], undefined)) as ReadonlyArray<{
        readonly locked: boolean
      }>
      if (rows[0]?.locked !== true) {
        return yield* new ServersRunning({
          message: "a2a-ledger servers are running on this database (they hold its maintenance lock); stop them first"
        })
      }
    })
  ).pipe(Layer.provide(Reactivity.layer))
