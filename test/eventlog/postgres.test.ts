import { SqlClient } from "@effect/sql"
import { Effect, Exit, Layer, Scope } from "effect"
import { expect, it } from "vitest"
import * as Store from "../../src/eventlog/Store"
import { describePg, freshSchema, pgStoreLayer } from "../support/pg"
import { eventLogContract } from "./contract"

await describePg("PostgreSQL store", () => {
  eventLogContract("PostgreSQL", pgStoreLayer)

  it("migrations are safe when several instances start at the same moment: all succeed, each runs once", async () => {
    const schema = await freshSchema()
    try {
      const start = () => Effect.runPromise(Effect.scoped(Layer.build(Store.layerPg(schema.url, { maxConnections: 2 }))))
      await Promise.all([start(), start(), start(), start()])
      const rows = await Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ migration_id: number }>`SELECT migration_id FROM a2a_migrations ORDER BY migration_id`).pipe(
            Effect.provide(Store.layerPg(schema.url))
          )
        )
      )
      expect(rows.map((r) => r.migration_id)).toEqual([1, 2, 3, 4])
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
})
