import { Effect } from "effect"
import * as v8 from "node:v8"

const MiB = 1024 * 1024
/** Past this much heap in use, V8 chooses its old generation's growth again; below `tightBelow`, 2.5 again. */
const looseAbove = 256 * MiB
const tightBelow = 128 * MiB

/**
 * How far V8 lets a server's old generation grow past what survived its last collection. Left to itself
 * under load, V8 chose about 4 times (some 18 MiB live, 66 MiB before the next collection), which held the
 * server's resident memory above 200 MiB at c=16; at 2.5 times it stays near 165 MiB, for a little more
 * collecting. With a big heap (thousands of running tasks) a full collection takes tens of milliseconds,
 * and collecting more often raised the p99 of 10,000 long-running tasks' deliveries by half: past 256 MiB
 * in use V8 chooses again, and below 128 MiB the factor is 2.5 again (docs/performance.md, step 33).
 *
 * Only for the `serve` command, whose process this is: an application that embeds the engine keeps its own
 * settings. A `--heap-growing-percent` given on node's command line wins (node refuses it in NODE_OPTIONS).
 */
export const limitHeapGrowth = Effect.sync(() => {
  if (process.execArgv.some((a) => a.startsWith("--heap-growing-percent"))) return
  let tight = false
  const tighten = (on: boolean) => {
    if (on === tight) return
    tight = on
    // 0 is V8's own choice.
    v8.setFlagsFromString(`--heap-growing-percent=${on ? 150 : 0}`)
  }
  tighten(true)
  setInterval(() => {
    const used = v8.getHeapStatistics().used_heap_size
    if (tight && used > looseAbove) tighten(false)
    else if (!tight && used < tightBelow) tighten(true)
  }, 2_000).unref()
})
