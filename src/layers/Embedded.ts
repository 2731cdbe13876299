import { Layer } from "effect"
import * as Store from "../eventlog/Store.js"
import * as Engine from "./Engine.js"

export interface EmbeddedOptions<R = never> extends Engine.EngineLayerOptions<R> {
  /** The store: a SQLite file (created with its directory when missing), a `postgres://` URL, or `":memory:"`. */
  readonly db: string
  /** SQLite: `"full"` (default) puts every commit on disk before it is acknowledged; `"normal"` survives a crash of the process only. */
  readonly synchronous?: Store.SqliteSynchronous
}

/**
 * The engine as a layer for an application's own Effect program: a `TaskEngine` (send, get, list, cancel,
 * watch) over a store, no HTTP. Building it opens the store (running its migrations), recovers unfinished
 * tasks and starts the agent's workers; closing its scope interrupts them. It requires what the agent
 * requires (`R`): provide the application's services to it, and every turn runs with them.
 */
export const layer = <R = never>(options: EmbeddedOptions<R>) =>
  Engine.layer(options).pipe(
    Layer.provideMerge(
      Store.layer(options.db, {
        ...(options.synchronous !== undefined ? { synchronous: options.synchronous } : {}),
        ...(options.storeTimeoutMs !== undefined ? { storeTimeoutMs: options.storeTimeoutMs } : {})
      })
    )
  )

/** The same, named for the SQLite file it was first written for. */
export const layerSqlite = layer
