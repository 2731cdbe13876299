import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { textOf } from "../../src/domain/Message"
import { call, stream, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { verifyStore } from "../support/verifyStore"

/** An agent that asks for auth until it hears "token", and streams a chunked artifact. */
const agent: Agent = {
  name: "gatekeeper",
  description: "Needs credentials, then streams a report in chunks.",
  version: "1.0.0",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      if (!textOf(ctx.input).includes("token")) return Outcome.requireAuth("Please sign in, then send your token.")
      yield* ctx.artifact({ artifactId: "report", name: "report", parts: [{ text: "part 1;" }] })
      yield* ctx.artifact({ artifactId: "report", parts: [{ text: "part 2;" }] }, { append: true })
      yield* ctx.artifact({ artifactId: "report", parts: [{ text: "end" }] }, { append: true, lastChunk: true })
      return Outcome.complete("Signed in and done.")
    })
}

let server: RunningServer
beforeAll(async () => {
  server = await startServer({ agent })
})
afterAll(async () => {
  // Invariant 4: every stored task equals the fold of its events.
  expect(await verifyStore(server.db)).toBeGreaterThan(0)
  await server.close()
})

const results = (events: ReadonlyArray<any>) => events.map((e) => e.data.result)
const stateOf = (r: any) => r.task?.status.state ?? r.statusUpdate?.status.state

describe("AUTH_REQUIRED (spec §7.6)", () => {
  it("a blocking send returns at AUTH_REQUIRED with the agent's explanation", async () => {
    const { task } = await call(server.url, "SendMessage", { message: userMessage("hello") })
    expect(task.status.state).toBe("TASK_STATE_AUTH_REQUIRED")
    expect(task.status.message.parts[0].text).toMatch(/sign in/)
  })

  it("a SendStreamingMessage stream stays open through AUTH_REQUIRED and follows the task to the end", async () => {
    const s = await stream(server.url, "SendStreamingMessage", { message: userMessage("hello") })
    const first = await s.next()
    const taskId = first!.data.result.task.id
    const seen = [first!.data.result]
    for (;;) {
      const e = await s.next()
      seen.push(e!.data.result)
      if (stateOf(e!.data.result) === "TASK_STATE_AUTH_REQUIRED") break
    }
    // The credentials arrive as a message on the task; the open stream sees the rest.
    const done = await call(server.url, "SendMessage", { message: userMessage("my token", { taskId }) })
    expect(done.task.status.state).toBe("TASK_STATE_COMPLETED")
    const rest = results(await s.rest())
    expect([...seen, ...rest].map((r) => stateOf(r) ?? "artifact")).toEqual([
      "TASK_STATE_SUBMITTED",
      "TASK_STATE_WORKING",
      "TASK_STATE_AUTH_REQUIRED",
      "TASK_STATE_SUBMITTED",
      "TASK_STATE_WORKING",
      "artifact",
      "artifact",
      "artifact",
      "TASK_STATE_COMPLETED"
    ])
  })
})

describe("artifacts in chunks", () => {
  it("streams each chunk with append/lastChunk, and GetTask holds the whole artifact", async () => {
    const events = results(await (await stream(server.url, "SendStreamingMessage", { message: userMessage("token please") })).rest())
    const chunks = events.filter((r) => r.artifactUpdate).map((r) => r.artifactUpdate)
    expect(chunks.map((c) => [c.artifact.parts[0].text, c.append ?? false, c.lastChunk ?? false])).toEqual([
      ["part 1;", false, false],
      ["part 2;", true, false],
      ["end", true, true]
    ])
    const task = await call(server.url, "GetTask", { id: events[0].task.id })
    expect(task.artifacts).toHaveLength(1)
    expect(task.artifacts[0].name).toBe("report")
    expect(task.artifacts[0].parts.map((p: any) => p.text).join("")).toBe("part 1;part 2;end")
  })
})
