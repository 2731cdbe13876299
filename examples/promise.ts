// Example 3: a plain Node script, no Effect: createLedger, a task streamed as it works, another canceled.
//
//   npm run build, then: npx tsx examples/promise.ts [./data/example.db]
import { createLedger, TaskNotCancelableError } from "a2a-ledger"

const ledger = await createLedger({
  db: process.argv[2] ?? "./data/example-promise.db",
  agent: {
    name: "Counter",
    description: "Counts to three, slowly.",
    version: "1.0.0",
    run: async (ctx) => {
      for (let i = 1; i <= 3; i++) {
        // Waits 200 ms, or less if the task is canceled meanwhile.
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, 200)
          const stop = () => {
            clearTimeout(timer)
            resolve(undefined)
          }
          ctx.signal.addEventListener("abort", stop, { once: true })
        })
        if (ctx.signal.aborted) return { state: "failed", message: "canceled" } // ignored: the task is CANCELED
        await ctx.progress(`${i}…`)
      }
      await ctx.artifact({ artifactId: "count", parts: [{ text: "1 2 3" }] })
      return { state: "completed", message: "Counted." }
    }
  }
})

// One task, streamed: the task first, then each update as it is committed, to COMPLETED.
const streamed = await ledger.send({ text: "count" }, { wait: false })
const seen: Array<string> = []
for await (const event of ledger.subscribe(streamed.id)) {
  const said = "statusUpdate" in event ? event.statusUpdate.status.message?.parts[0]?.text : undefined
  if (said !== undefined) seen.push(said)
  if ("artifactUpdate" in event) seen.push(`artifact ${event.artifactUpdate.artifact.artifactId}`)
}

// Another, canceled while it counts.
const other = await ledger.send({ text: "count again" }, { wait: false })
const canceled = await ledger.cancel(other.id)
// A finished task cannot be canceled: the error carries the A2A code.
const finished = await ledger.cancel(streamed.id).catch((e: unknown) => e)

await ledger.close()
console.log(
  JSON.stringify({
    streamed: seen,
    canceled: canceled.status.state,
    cancelFinished: finished instanceof TaskNotCancelableError ? finished.code : String(finished)
  })
)
