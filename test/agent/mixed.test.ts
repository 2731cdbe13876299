import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { mixed } from "../../src/agent/builtins"
import { call, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

/** The `mixed` built-in agent: the kind of work by the message's first word. */
let server: RunningServer
beforeAll(async () => {
  server = await startServer({ agent: mixed({ stepDelayMs: 10 }) })
})
afterAll(() => server.close())

const send = (text: string, extra: Record<string, unknown> = {}) =>
  call(server.url, "SendMessage", { message: userMessage(text, extra) }).then((r) => r.task)

describe("mixed agent", () => {
  it("fast completes at once; so does anything it does not know", async () => {
    for (const text of ["fast", "whatever"]) {
      const t = await send(text)
      expect(t.status.state).toBe("TASK_STATE_COMPLETED")
      expect(t.status.message.parts[0].text).toBe("Done.")
    }
  })

  it("slow reports four steps, then a result artifact", async () => {
    const t = await send("slow report please")
    expect(t.status.state).toBe("TASK_STATE_COMPLETED")
    expect(t.history.filter((m: any) => m.role === "ROLE_AGENT").map((m: any) => m.parts[0].text)).toEqual([
      "Step 1/4",
      "Step 2/4",
      "Step 3/4",
      "Step 4/4"
    ])
    expect(t.artifacts[0]).toMatchObject({ artifactId: "result", parts: [{ text: "Done: slow report please" }] })
  })

  it("slow with a number reports that many steps (a big task past 16 facts comes back whole)", async () => {
    const t = await send("slow 25")
    expect(t.status.state).toBe("TASK_STATE_COMPLETED")
    const steps = Array.from({ length: 25 }, (_, i) => `Step ${i + 1}/25`)
    expect(t.history.filter((m: any) => m.role === "ROLE_AGENT").map((m: any) => m.parts[0].text)).toEqual(steps)
    const got = await call(server.url, "GetTask", { id: t.id })
    expect(got.history.map((m: any) => m.parts[0].text)).toEqual(["slow 25", ...steps])
    expect(got.artifacts).toEqual(t.artifacts)
    const listed = await call(server.url, "ListTasks", { includeArtifacts: true, historyLength: 3 })
    const mine = listed.tasks.find((x: any) => x.id === t.id)
    expect(mine.history.map((m: any) => m.parts[0].text)).toEqual(steps.slice(-3))
    expect(mine.artifacts[0].artifactId).toBe("result")
  })

  it("ask asks, and the answer completes it", async () => {
    const asked = await send("ask me")
    expect(asked.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    expect(asked.status.message.parts[0].text).toBe("Which one?")
    const done = await send("the blue one", { taskId: asked.id })
    expect(done.status.state).toBe("TASK_STATE_COMPLETED")
    expect(done.status.message.parts[0].text).toBe("Thanks for: the blue one")
  })

  it("fail fails", async () => {
    const t = await send("FAIL now")
    expect(t.status.state).toBe("TASK_STATE_FAILED")
  })
})
