/**
 * Big tasks (issue 11): one task with 10,000 progress messages and 1,000
 * artifact chunks. Does the 10,000th commit cost what the 10th does?
 *
 * The engine runs in this process (the embedded layer, SQLite file, default
 * durability); the agent times each emission, which returns once its event is
 * committed. Printed: the mean time per emission over windows of the run
 * (progress messages 1–100, …, 9,901–10,000, then artifact chunks), the
 * ratio of the last window to the first, then the time a read of the
 * finished task takes (the engine's get, the whole task). Nothing is asserted.
 *
 *   npm run bench:big                              # 10,000 progress messages, 1,000 chunks
 *   BENCH_PROGRESS=2000 BENCH_CHUNKS=200 npx tsx bench/big-task.ts
 */
import { Effect, Exit, Layer, Logger, LogLevel, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type Agent, Outcome } from "../src/agent/Agent"
import { anonymous, TaskEngine } from "../src/engine/TaskEngine"
import { isTerminal } from "../src/domain/TaskState"
import * as Embedded from "../src/layers/Embedded"

const progressCount = Number(process.env.BENCH_PROGRESS ?? 10_000)
const chunkCount = Number(process.env.BENCH_CHUNKS ?? 1_000)
const textBytes = Number(process.env.BENCH_TEXT_BYTES ?? 200)
const windowSize = Math.max(1, Math.floor(progressCount / 100))

const progressMs: Array<number> = []
const chunkMs: Array<number> = []
const filler = "x".repeat(textBytes)

const big: Agent = {
  name: "big",
  description: "",
  version: "1",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      for (let i = 1; i <= progressCount; i++) {
        const t0 = performance.now()
        yield* ctx.progress(`step ${i} ${filler}`)
        progressMs.push(performance.now() - t0)
      }
      for (let i = 1; i <= chunkCount; i++) {
        const t0 = performance.now()
        yield* ctx.artifact(
          { artifactId: `a${i % 10}`, name: "chunks", parts: [{ text: `chunk ${i} ${filler}` }] },
          { append: i > 10, lastChunk: i > chunkCount - 10 }
        )
        chunkMs.push(performance.now() - t0)
      }
      return Outcome.complete("done")
    })
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "a2a-ledger-big-task-"))
const scope = Effect.runSync(Scope.make())
const layer = Embedded.layerSqlite({ agent: big, db: path.join(dir, "big.db") }).pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)))
const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
const run = <A, E>(effect: Effect.Effect<A, E, TaskEngine>) => Effect.runPromise(Effect.provide(effect, context))

const started = performance.now()
const taskId = await run(
  Effect.gen(function* () {
    const engine = yield* TaskEngine
    const outcome = yield* engine.send({
      caller: anonymous,
      message: { messageId: "big-1", role: "ROLE_USER", parts: [{ text: "go" }] }
    })
    if (outcome._tag !== "Task") throw new Error("expected a task")
    const taskId = outcome.snapshot.task!.id
    yield* engine.watch(taskId, { stopAt: isTerminal }).pipe(Stream.runDrain)
    return taskId
  })
)
const totalS = (performance.now() - started) / 1000

const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
const fmt = (ms: number) => `${(ms * 1000).toFixed(0)} µs`
console.log(`big task: ${progressCount} progress messages, ${chunkCount} artifact chunks, ${textBytes}-byte texts; ${totalS.toFixed(1)} s in all`)
const windows = [0, 1, 9, 49, 99].filter((w) => (w + 1) * windowSize <= progressCount)
for (const w of windows) {
  const from = w * windowSize
  console.log(`  progress ${from + 1}–${from + windowSize}: ${fmt(mean(progressMs.slice(from, from + windowSize)))} per commit`)
}
const firstProgress = mean(progressMs.slice(0, windowSize))
const lastProgress = mean(progressMs.slice(-windowSize))
console.log(`  last ÷ first window: ${(lastProgress / firstProgress).toFixed(2)}`)
if (chunkCount > 0) {
  const chunkWindow = Math.max(1, Math.floor(chunkCount / 10))
  console.log(
    `  artifact chunks 1–${chunkWindow}: ${fmt(mean(chunkMs.slice(0, chunkWindow)))}, last ${chunkWindow}: ${fmt(mean(chunkMs.slice(-chunkWindow)))} per commit`
  )
}

const timeGet = () =>
  run(
    Effect.gen(function* () {
      const engine = yield* TaskEngine
      const t0 = performance.now()
      const rounds = 20
      let size = 0
      for (let i = 0; i < rounds; i++) {
        const s = yield* engine.get(taskId, anonymous)
        const task = s.task!
        size = JSON.stringify(task).length
      }
      return { ms: (performance.now() - t0) / rounds, size }
    })
  )
const whole = await timeGet()
console.log(`  GetTask of the finished task: ${whole.ms.toFixed(2)} ms (${(whole.size / 1e6).toFixed(1)} MB as JSON)`)
console.log(`  database file: ${(fs.statSync(path.join(dir, "big.db")).size / 1e6).toFixed(1)} MB`)

await Effect.runPromise(Scope.close(scope, Exit.void))
fs.rmSync(dir, { recursive: true, force: true })
