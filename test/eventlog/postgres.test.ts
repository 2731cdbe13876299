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
      const start = () => Effect.runPromise(Effect.scoped(Layer.build(Store.layerPg(schema.url, { exclusive: false, maxConnections: 2 }))))
      await Promise.all([start(), start(), start(), start()])
      const rows = await Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ migration_id: number }>`SELECT migration_id FROM a2a_migrations ORDER BY migration_id`).pipe(
            Effect.provide(Store.layerPg(schema.url, { exclusive: false }))
          )
        )
      )
      expect(rows.map((r) => r.migration_id)).toEqual([1, 2, 3, 4])
    } finally {
      await schema.drop()
    }
  })

  it("one engine per store: a second owner is refused at once with a clear message; a released store can be owned again", async () => {
    const schema = await freshSchema()
    try {
      const scope = Effect.runSync(Scope.make())
      await Effect.runPromise(Layer.buildWithScope(Store.layerPg(schema.url), scope))
      const second = await Effect.runPromise(Effect.flip(Effect.scoped(Layer.build(Store.layerPg(schema.url)))))
      expect(second).toMatchObject({ _tag: "StoreInUse" })
      expect((second as { message: string }).message).toMatch(/another a2a-ledger process is running on postgres:/)
      // Tools that do not claim ownership may open it meanwhile; another schema is another store.
      await Effect.runPromise(Effect.scoped(Layer.build(Store.layerPg(schema.url, { exclusive: false }))))
      const other = await freshSchema()
      await Effect.runPromise(Effect.scoped(Layer.build(Store.layerPg(other.url))))
      await other.drop()
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await Effect.runPromise(Effect.scoped(Layer.build(Store.layerPg(schema.url))))
    } finally {
      await schema.drop()
    }
  })
})
