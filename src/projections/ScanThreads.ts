import { Data, Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Worker } from "node:worker_threads"
import type { FoldedPage, PageJudge, ScanReport } from "./Refold.js"

/**
 * Threads that judge the pages of a `verify` or a `rebuild` of a SQLite
 * file side by side (scanThread.ts), each on a read-only connection of its
 * own; the scan's own thread lists the pages, takes the results in page
 * order and does every write. Reading, decoding and folding the events is
 * nearly all of a scan's time, and one thread does it at 80,000–100,000
 * events a second (docs/performance.md).
 */
export class ScanThreadFailed extends Data.TaggedError("ScanThreadFailed")<{ readonly message: string }> {}

export interface ScanRequest {
  readonly id: number
  readonly kind: "verify" | "fold"
  readonly after: string
  readonly ids: ReadonlyArray<string>
  readonly keysSince: number
}

export type ScanReply =
  | { readonly id: number; readonly result: ScanReport | FoldedPage }
  | { readonly id: number; readonly error: string }
  | { readonly ready: true }
  | { readonly failed: string }

const builtThread = new URL("./scanThread.js", import.meta.url)
const runsBuilt = () => fs.existsSync(fileURLToPath(builtThread))

/**
 * A thread running scanThread: the build's file beside this module, or, from the TypeScript sources
 * (tests, `tsx`), the source file loaded through tsx, which a worker thread does not inherit.
 */
const startThread = (filename: string) => {
  const workerData = { filename }
  if (runsBuilt()) return new Worker(builtThread, { workerData })
  const source = JSON.stringify(new URL("./scanThread.ts", import.meta.url).href)
  return new Worker(`import(${JSON.stringify(tsxApi())}).then((tsx) => { tsx.register(); return import(${source}) })`, { eval: true, workerData })
}

/** tsx's ESM API, as an import resolves it (`require.resolve` would give its CommonJS twin, which cannot register hooks here). */
const tsxApi = () => {
  const manifest = createRequire(import.meta.url).resolve("tsx/package.json")
  const entry = (JSON.parse(fs.readFileSync(manifest, "utf8")) as { exports: Record<string, { import: { default: string } }> }).exports["./esm/api"]!
  return pathToFileURL(path.join(path.dirname(manifest), entry.import.default)).href
}

/**
 * How many threads a scan uses when none is asked for: one per core, at most four, when this runs from
 * the build; none on one core (one scan thread there only adds the hand-over), and none from the
 * TypeScript sources, where each thread would compile them again.
 */
export const defaultThreads = () => {
  const cores = os.availableParallelism()
  return runsBuilt() && cores > 1 ? Math.min(4, cores) : 0
}

interface Thread {
  readonly worker: Worker
  outstanding: number
}

/**
 * Pages in flight per thread. While the main thread writes a rebuild's transaction (5,000 tasks, about
 * 100 ms), it neither takes results nor hands out pages: each thread needs that many pages queued to keep
 * working meanwhile. Two per thread made a wiped rebuild of 1,000,000 events take 12.5 s, 32 took 10.2 s;
 * a verify, which writes nothing, is the same either way.
 */
const pagesPerThread = 32

/** `count` scan threads on the SQLite file `filename`, stopped when the scope closes. */
export const make = (filename: string, count: number) =>
  Effect.gen(function* () {
    // The pages asked for and not answered yet: how to answer each.
    const waiting = new Map<number, (result: Effect.Effect<unknown, ScanThreadFailed>) => void>()
    let nextId = 0
    let broken: ScanThreadFailed | undefined
    const breakAll = (why: string) => {
      broken ??= new ScanThreadFailed({ message: `a scan thread stopped: ${why}` })
      for (const [id, resume] of waiting) {
        waiting.delete(id)
        resume(Effect.fail(broken))
      }
    }

    const start = (): Effect.Effect<Thread, ScanThreadFailed> =>
      Effect.async<Thread, ScanThreadFailed>((resume) => {
        const worker = startThread(filename)
        const thread: Thread = { worker, outstanding: 0 }
        let ready = false
        let settled = false
        const settle = (result: Effect.Effect<Thread, ScanThreadFailed>) => {
          if (settled) return
          settled = true
          resume(result)
        }
        worker.on("message", (reply: ScanReply) => {
          if ("ready" in reply) {
            ready = true
            return settle(Effect.succeed(thread))
          }
          if ("failed" in reply)
            return settle(Effect.fail(new ScanThreadFailed({ message: `a scan thread could not open ${filename}: ${reply.failed}` })))
          const answer = waiting.get(reply.id)
          if (answer === undefined) return
          waiting.delete(reply.id)
          thread.outstanding--
          answer("error" in reply ? Effect.fail(new ScanThreadFailed({ message: reply.error })) : Effect.succeed(reply.result))
        })
        worker.on("error", (error) => {
          if (!ready) settle(Effect.fail(new ScanThreadFailed({ message: `a scan thread could not start: ${error.message}` })))
          else breakAll(error.message)
        })
        worker.on("exit", (code) => {
          if (!ready) settle(Effect.fail(new ScanThreadFailed({ message: `a scan thread exited with code ${code} before it started` })))
          else breakAll(`exited with code ${code}`)
        })
      })

    const threads = yield* Effect.acquireRelease(Effect.all(Array.from({ length: count }, start), { concurrency: "unbounded" }), (started) =>
      Effect.promise(() => Promise.all(started.map((t) => t.worker.terminate())))
    )

    const ask = <A>(kind: ScanRequest["kind"], after: string, ids: ReadonlyArray<string>, keysSince: number) =>
      Effect.async<A, ScanThreadFailed>((resume) => {
        if (broken !== undefined) return resume(Effect.fail(broken))
        const thread = threads.reduce((a, b) => (b.outstanding < a.outstanding ? b : a))
        const id = nextId++
        thread.outstanding++
        waiting.set(id, resume as (result: Effect.Effect<unknown, ScanThreadFailed>) => void)
        thread.worker.postMessage({ id, kind, after, ids, keysSince } satisfies ScanRequest)
      })

    return {
      concurrency: count * pagesPerThread,
      verify: (after, ids, keysSince) => ask<ScanReport>("verify", after, ids, keysSince),
      fold: (after, ids, keysSince) => ask<FoldedPage>("fold", after, ids, keysSince)
    } satisfies PageJudge
  })
