import { Effect, Layer } from "effect"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as fs from "node:fs"
import * as path from "node:path"
import * as TaskReadModel from "../projections/TaskReadModel"
import * as Migrations from "./migrations"
import * as SqlEventLog from "./SqlEventLog"

/**
 * The store: the event log and the read model on one SQL client, with the
 * migrations run as part of building the layer (so nothing can use a store
 * whose schema is not there yet).
 */
const migrated = Layer.effectDiscard(Migrations.run)

/** Log + read model over whatever SqlClient is provided. */
export const layerFromClient = Layer.mergeAll(SqlEventLog.layer, TaskReadModel.layer).pipe(Layer.provide(migrated))

/** A SQLite file (WAL). The directory is created when missing. */
export const layerSqlite = (filename: string) => {
  const client = Layer.unwrapEffect(
    Effect.sync(() => {
      if (filename !== ":memory:") fs.mkdirSync(path.dirname(path.resolve(filename)), { recursive: true })
      return SqliteClient.layer({ filename })
    })
  )
  return Layer.provideMerge(layerFromClient, client) as Layer.Layer<
    SqlClient.SqlClient | import("./EventLog").EventLog | import("../projections/TaskReadModel").TaskReadModel,
    unknown
  >
}
