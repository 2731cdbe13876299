import { describe, expect, it } from "vitest"
import { apply, initialState, type TaskSnapshot } from "../../src/domain/Task"
import type { TaskEvent } from "../../src/domain/TaskEvent"
import * as TaskView from "../../src/domain/TaskView"
import { agentMessage, at, userMessage } from "../support/fixtures"

/** A deterministic pseudo-random source (the same lives every run). */
const random = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
  return seed / 2_147_483_648
}

/** A legal life of many facts: each step a fact picked at random among those the machine accepts. */
const life = (seed: number, length: number): ReadonlyArray<TaskEvent> => {
  const next = random(seed)
  const submitted: TaskEvent = {
    type: "TaskSubmitted",
    at: at(0),
    taskId: `t${seed}`,
    contextId: "c",
    tenant: "",
    owner: "",
    message: userMessage("go")
  }
  const events: Array<TaskEvent> = [submitted]
  let s: TaskSnapshot = apply(initialState, submitted)!
  for (let n = 1; events.length < length && n < length * 20; n++) {
    const id = `a${Math.floor(next() * 3)}`
    const progress: TaskEvent = { type: "StatusMessageAdded", at: at(n), message: agentMessage(`step ${n}`) }
    const chunk: TaskEvent = {
      type: "ArtifactAdded",
      at: at(n),
      artifact: { artifactId: id, name: `name ${n}`, parts: [{ text: `part ${n}` }] },
      append: next() < 0.7,
      lastChunk: next() < 0.05
    }
    // Mostly work (messages and chunks), now and then a pause or a requeue.
    const candidates: ReadonlyArray<TaskEvent> = [
      { type: "TaskStarted", at: at(n), instanceId: "i" },
      progress,
      progress,
      progress,
      progress,
      chunk,
      chunk,
      chunk,
      chunk,
      chunk,
      { type: "InputRequested", at: at(n), message: agentMessage(`which ${n}?`) },
      { type: "AuthRequested", at: at(n), message: agentMessage(`sign in ${n}`) },
      { type: "InputProvided", at: at(n), message: userMessage(`answer ${n}`) },
      { type: "TaskRequeued", at: at(n), reason: "restart" },
      // Rarely the end: lives run long.
      ...(next() < 0.02 ? [{ type: "TaskCompleted", at: at(n), ...(next() < 0.5 ? { message: agentMessage("done") } : {}) } as TaskEvent] : [])
    ]
    const event = candidates[Math.floor(next() * candidates.length)]!
    const after = apply(s, event)
    if (after === undefined) continue
    events.push(event)
    s = after
  }
  return events
}

describe("a task assembled from its facts in one pass", () => {
  it("has exactly the history and artifacts that folding the facts one by one builds, key order included", () => {
    const seen: Array<TaskEvent> = []
    for (let seed = 1; seed <= 40; seed++) {
      const events = life(seed, 200)
      let folded: TaskView.Task | undefined
      for (const e of events) folded = TaskView.evolve(folded, e)
      const head = { ...folded!, history: [], artifacts: [] }
      const assembled = TaskView.assemble(head, events)
      expect(JSON.stringify(assembled)).toBe(JSON.stringify(folded))
      seen.push(...events)
    }
    // Appended chunks, artifacts replaced whole and every kind of fact were exercised.
    const chunks = seen.filter((e) => e.type === "ArtifactAdded")
    expect(chunks.filter((e) => e.append).length).toBeGreaterThan(100)
    expect(chunks.filter((e) => !e.append).length).toBeGreaterThan(100)
    expect(new Set(seen.map((e) => e.type)).size).toBe(9)
  })
})
