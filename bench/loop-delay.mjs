// A preload for a bench's server (`node --import ./bench/loop-delay.mjs …`; bench/process.ts, loopDelayProbe):
// how long the server's own event loop stalled, measured inside it (perf_hooks' event-loop delay histogram,
// 10 ms resolution). On SIGUSR2 it writes the longest delay since the last report and its 99th percentile, in
// ms ("max p99"), to the file named by BENCH_LOOP_DELAY_FILE and starts again. A client's wait for an answer
// also counts the time the client, the kernel and other processes on the same cores took; this counts only
// the server's loop.
import * as fs from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"

const file = process.env.BENCH_LOOP_DELAY_FILE
if (file !== undefined) {
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  histogram.enable()
  process.on("SIGUSR2", () => {
    fs.writeFileSync(file, `${Math.round(histogram.max / 1e6)} ${Math.round(histogram.percentile(99) / 1e6)}`)
    histogram.reset()
  })
}
