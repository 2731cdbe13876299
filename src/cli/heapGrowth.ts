import { Effect } from "effect"
import * as v8 from "node:v8"

/**
 * How far V8 lets a server's old generation grow past what survived its last collection: 2.5 times. Left to
 * itself under load, V8 chose about 4 times (some 18 MiB live, 66 MiB before the next collection), which
 * held the server's resident memory above 200 MiB at c=16; at 2.5 it stays near 165 MiB, for a little more
 * collecting (docs/performance.md, step 33). Only for the `serve` command, whose process this is: an
 * application that embeds the engine keeps its own settings. A `--heap-growing-percent` given on node's
 * command line wins (node refuses it in NODE_OPTIONS).
 */
export const limitHeapGrowth = Effect.sync(() => {
  const given = process.execArgv.some((a) => a.startsWith("--heap-growing-percent"))
  if (!given) v8.setFlagsFromString("--heap-growing-percent=150")
})
