import { Effect, Layer } from "effect"
import { SqlClient } from "@effect/sql"
import { StoreInUse } from "./SqliteOwnership"

/** Any fixed number: with the schema's hash, the key of the lock an engine holds on its PostgreSQL store. */
const ownerLockKey = 727_361_002

/**
 * One engine per PostgreSQL store (database and schema), for now: until work
 * is shared between instances by leases, a second engine would recover the
 * first one's running tasks and run them twice. The owner holds a
 * session-level advisory lock on a reserved connection for its whole life;
 * PostgreSQL releases it when that session ends, also when the process is
 * killed, so a crashed server never blocks its own restart.
 */
export const layer = (described: string) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const conn = yield* sql.reserve
      const rows = (yield* conn.execute(
        "SELECT pg_try_advisory_lock($1, hashtext(current_schema())) AS locked",
        [ownerLockKey],
        undefined
      )) as ReadonlyArray<{ locked: boolean }>
      if (rows[0]?.locked !== true) {
        return yield* new StoreInUse({
          filename: described,
          message: `another a2a-ledger process is running on ${described}; stop it, or use another --db (several instances per database come with leases)`
        })
      }
      yield* Effect.addFinalizer(() =>
        conn.execute("SELECT pg_advisory_unlock($1, hashtext(current_schema()))", [ownerLockKey], undefined).pipe(Effect.ignore)
      )
    })
  )
