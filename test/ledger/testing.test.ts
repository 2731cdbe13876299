import { Context, Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { type Agent, Outcome } from "../../src/index"
import { createTestLedger, makeTestContext, runAgentOnce } from "../../src/testing"

/** `a2a-ledger/testing` (issue 12): what a user's agent tests are written with. */
class Shout extends Context.Tag("test/Shout")<Shout, (text: string) => string>() {}

const shouter: Agent<Shout> = {
  name: "Shouter",
  description: "shouts back",
  version: "1.0.0",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      const text = ctx.input.parts[0]?.text ?? ""
      if (text === "") return Outcome.requireInput("Say something")
      const shout = yield* Shout
      yield* ctx.progress("inhaling")
      yield* ctx.artifact({ artifactId: "loud", parts: [{ text: shout(text) }] })
      return Outcome.complete("done")
    })
}

const ShoutLive = Layer.succeed(Shout, (text: string) => `${text.toUpperCase()}!`)

describe("a2a-ledger/testing", () => {
  it("runAgentOnce runs one task through a real engine in memory: the settled task and its updates in order", async () => {
    const run = await Effect.runPromise(runAgentOnce(shouter, "hello").pipe(Effect.provide(ShoutLive)))
    expect(run.task.status.state).toBe("TASK_STATE_COMPLETED")
    expect(run.task.artifacts).toEqual([{ artifactId: "loud", parts: [{ text: "HELLO!" }] }])
    const kinds = run.updates.map((u) => ("statusUpdate" in u ? u.statusUpdate.status.state : "artifactUpdate" in u ? "artifact" : "task"))
    expect(kinds).toEqual(["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"])

    const asked = await Effect.runPromise(runAgentOnce(shouter, "").pipe(Effect.provide(ShoutLive)))
    expect(asked.task.status).toMatchObject({ state: "TASK_STATE_INPUT_REQUIRED", message: { parts: [{ text: "Say something" }] } })
  })

  it("makeTestContext runs one turn as a plain Effect, recording what it reports", async () => {
    const { ctx, reports } = makeTestContext("hey")
    const outcome = await Effect.runPromise(shouter.run(ctx).pipe(Effect.provide(ShoutLive)))
    expect(outcome).toEqual(Outcome.complete("done"))
    expect(reports).toEqual([{ progress: [{ text: "inhaling" }] }, { artifact: { artifactId: "loud", parts: [{ text: "HEY!" }] } }])
    expect(ctx.task.history).toEqual([ctx.input])
  })

  it("createTestLedger is a ledger in memory: two of them share nothing", async () => {
    const agent = { name: "a", description: "b", version: "1", run: async () => ({ state: "completed" as const }) }
    const [one, two] = await Promise.all([createTestLedger({ agent }), createTestLedger({ agent })])
    const task = await one.send("only here")
    expect((await one.list()).totalSize).toBe(1)
    expect((await two.list()).totalSize).toBe(0)
    await expect(two.get(task.id)).rejects.toMatchObject({ code: -32001 })
    await Promise.all([one.close(), two.close()])
  })
})
