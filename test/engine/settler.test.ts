import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { TaskEvent } from "../../src/domain/TaskEvent"
import type { Committed } from "../../src/engine/EventHub"
import { Settler } from "../../src/engine/Settler"

/** A blocking send's wait: only commits after the send's own version count, in version order. */
const ev = (type: string): TaskEvent => ({ type }) as unknown as TaskEvent
const c = (version: number, type = "StatusMessageAdded"): Committed => ({ taskId: "t", contextId: "c", version, event: ev(type) })
const settles = (e: TaskEvent) => e.type === "TaskCompleted"

describe("Settler", () => {
  it("finds the first settling commit after the send's version, heard before or after it learns that version", async () => {
    const s = new Settler(settles)
    s.hear(c(1, "TaskSubmitted"))
    s.hear(c(2, "TaskStarted"))
    s.after(1)
    s.hear(c(3))
    s.hear(c(4, "TaskCompleted"))
    s.hear(c(5, "TaskCompleted"))
    const found = await Effect.runPromise(s.wait)
    expect(found).toMatchObject({ _tag: "Settled", committed: { version: 4 } })
  })

  it("ignores what came before the send (an earlier turn's completion does not answer this send)", async () => {
    const s = new Settler(settles)
    s.hear(c(3, "TaskCompleted"))
    s.after(3)
    const waiting = Effect.runPromise(s.wait)
    s.hear(c(4))
    s.hear(c(5, "TaskCompleted"))
    expect(await waiting).toMatchObject({ _tag: "Settled", committed: { version: 5 } })
  })

  it("a version it did not hear is a gap, handed over once; after it the wait goes on from the commit after the gap", async () => {
    const s = new Settler(settles)
    s.after(1)
    s.hear(c(2))
    s.hear(c(4))
    s.hear(c(5, "TaskCompleted"))
    const gap = await Effect.runPromise(s.wait)
    expect(gap).toMatchObject({ _tag: "Gap", from: 3, to: 3, next: { version: 4 } })
    s.after(3)
    expect(await Effect.runPromise(s.wait)).toMatchObject({ _tag: "Settled", committed: { version: 5 } })
  })
})
