import { SqlClient } from "@effect/sql"
import { Duration, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { expect, it } from "vitest"
import { EventLog, tailStart } from "../../src/eventlog/EventLog"
import { LeaseStore } from "../../src/eventlog/LeaseStore"
import * as Store from "../../src/eventlog/Store"
import { describePg, freshSchema, pgStoreLayer } from "../support/pg"
import { eventLogContract } from "./contract"

await describePg("PostgreSQL store", () => {
  eventLogContract("PostgreSQL", pgStoreLayer)

  it("renewing leases never deadlocks with a commit that holds some of them (FOR SHARE) and then locks another", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          const leases = yield* LeaseStore
          const far = Date.now() + 600_000
          yield* sql`INSERT INTO a2a_leases (task_id, owner, epoch, expires_at) VALUES ('a', 'me', 1, ${far}), ('b', 'me', 1, ${far})`
          const now = Date.now()
          // A fenced commit: checks lease b, works a while, then checks lease a, inside one transaction.
          const commit = sql.withTransaction(
            Effect.gen(function* () {
              expect(yield* leases.holds("me", { taskId: "b", epoch: 1 }, now)).toBe(true)
              yield* Effect.sleep("400 millis")
              expect(yield* leases.holds("me", { taskId: "a", epoch: 1 }, now)).toBe(true)
            })
          )
          // Meanwhile the heartbeat renews both.
          const renewal = Effect.sleep("100 millis").pipe(Effect.zipRight(leases.renew("me", ["a", "b"], now, 60_000)))
          const [committed, renewed] = yield* Effect.all([Effect.either(commit), Effect.either(renewal)], { concurrency: 2 })
          // PostgreSQL would break a deadlock by failing one of them.
          expect(committed._tag).toBe("Right")
          expect(renewed._tag === "Right" ? renewed.right.map((l) => l.taskId).sort() : renewed.left).toEqual(["a", "b"])
        }).pipe(Effect.provide(pgStoreLayer()))
      )
    )
  })

  it("migrations are safe when several instances start at the same moment: all succeed, each runs once", async () => {
    const schema = await freshSchema()
    try {
      const start = () => Effect.runPromise(Effect.scoped(Layer.build(Store.layerPg(schema.url, { maxConnections: 2 }))))
      await Promise.all([start(), start(), start(), start()])
      const rows = await Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql<{ migration_id: number }>`SELECT migration_id FROM a2a_migrations ORDER BY migration_id`
          ).pipe(Effect.provide(Store.layerPg(schema.url)))
        )
      )
      expect(rows.map((r) => r.migration_id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    } finally {
      await schema.drop()
    }
  })

  it("several processes may open one store at once (they share it by leases)", async () => {
    const schema = await freshSchema()
    try {
      const scope = Effect.runSync(Scope.make())
      await Effect.runPromise(Layer.buildWithScope(Store.layerPg(schema.url), scope))
      await Effect.runPromise(Effect.scoped(Layer.build(Store.layerPg(schema.url))))
      await Effect.runPromise(Scope.close(scope, Exit.void))
    } finally {
      await schema.drop()
    }
  })

  it("a tail never skips an event whose transaction commits after a later position's (sequence values commit out of order)", async () => {
    const schema = await freshSchema()
    try {
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const sql = yield* SqlClient.SqlClient
            const log = yield* EventLog
            const at = "2026-01-01T00:00:00.000Z"
            const row = (taskId: string) =>
              `INSERT INTO a2a_events (task_id, version, type, schema_version, payload, metadata, created_at)
               VALUES ('${taskId}', 1, 'TaskStarted', 1, '{"at":"${at}","instanceId":"i"}', '{"instanceId":"i"}', '${at}')`
            // A transaction takes a position and stays open...
            const slow = yield* sql.reserve
            yield* slow.executeRaw("BEGIN", [])
            yield* slow.executeRaw(row("early"), [])
            // ...while a later one takes a higher position and commits.
            yield* sql.unsafe(row("late"))
            const seen: Array<string> = []
            let cursor = tailStart
            const follow = Effect.gen(function* () {
              const r = yield* log.tail(cursor, 100)
              seen.push(...r.events.map((e) => e.taskId))
              cursor = r.cursor
            })
            yield* follow
            // A position-order reader would have returned "late" and moved past "early" for good.
            expect(seen).toEqual([])
            yield* slow.executeRaw("COMMIT", [])
            // Both once no older transaction runs: other tests' transactions on this server may hold the
            // horizon back a moment, and the tail rightly waits for them (a bounded wait, not a sleep).
            yield* follow.pipe(
              Effect.repeat({ until: () => seen.length >= 2, schedule: Schedule.spaced(Duration.millis(20)) }),
              Effect.timeout(Duration.seconds(10))
            )
            expect(seen).toEqual(["early", "late"])
            yield* follow
            expect(seen).toEqual(["early", "late"])
          }).pipe(Effect.provide(Store.layerPg(schema.url)))
        )
      )
    } finally {
      await schema.drop()
    }
  })
})
