import { Layer } from "effect"
import * as Store from "../eventlog/Store"
import * as Engine from "./Engine"

/**
 * The engine as a layer for an application's own Effect program: a
 * `TaskEngine` (send, get, list, cancel, watch) over a SQLite file, no HTTP.
 */
export const layer = (options: Engine.EngineLayerOptions & { readonly db: string }) =>
  Engine.layer(options).pipe(Layer.provideMerge(Store.layer(options.db)))

/** The same, named for the SQLite file it was first written for. */
export const layerSqlite = layer
