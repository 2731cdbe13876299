// An application using the installed package (test/package/tarball.test.ts type-checks and runs it in a
// project of its own; the repository's tsconfig leaves it out). It prints what it saw as JSON.
import { Effect } from "effect"
import { type Agent, createLedger, layer, Outcome, type PromiseAgent, type Task, TaskEngine, anonymous, TaskNotFoundError } from "a2a-ledger"
import { createTestLedger } from "a2a-ledger/testing"

const db = process.argv[2]!

const echo: PromiseAgent = {
  name: "Echo",
  description: "says it back",
  version: "1.0.0",
  run: async (ctx) => {
    await ctx.progress("thinking")
    await ctx.artifact({ artifactId: "reply", parts: [{ text: `echo: ${ctx.input.parts[0]?.text ?? ""}` }] })
    return { state: "completed" }
  }
}

const ledger = await createLedger({ db, agent: echo, logLevel: "none" })
const task: Task = await ledger.send({ text: "from a consumer" })
const notFound = await ledger.get("missing").catch((e: unknown) => e)
await ledger.close()

const testLedger = await createTestLedger({ agent: echo })
const tested = await testLedger.send("in memory")
await testLedger.close()

// An Effect agent and the engine as a layer, run with the application's own `effect`.
const effectAgent: Agent = {
  name: "Effect echo",
  description: "an Effect agent",
  version: "1.0.0",
  skills: [],
  run: (ctx) => Effect.as(ctx.progress("effect"), Outcome.complete("done"))
}
const viaEffect = await Effect.runPromise(
  Effect.scoped(
    Effect.flatMap(TaskEngine, (engine) =>
      engine.sendAndSettle({ caller: anonymous, message: { messageId: "m-1", role: "ROLE_USER", parts: [{ text: "hi" }] } })
    ).pipe(Effect.provide(layer({ agent: effectAgent, db: ":memory:" })))
  )
)

let deepImport = "imported"
try {
  await import("a2a-ledger/dist/lib/engine/TaskEngine.js" as string)
} catch (e) {
  deepImport = (e as { code?: string }).code ?? String(e)
}

console.log(
  JSON.stringify({
    promise: {
      state: task.status.state,
      artifact: task.artifacts[0]?.parts[0]?.text,
      history: task.history.map((m) => m.parts[0]?.text)
    },
    testing: tested.status.state,
    effect: viaEffect._tag === "Task" ? viaEffect.snapshot.task?.status.state : "message",
    notFound: notFound instanceof TaskNotFoundError ? { name: notFound.name, code: notFound.code } : String(notFound),
    deepImport
  })
)
