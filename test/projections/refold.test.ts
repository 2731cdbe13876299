import { describe, expect, it } from "vitest"
import type { TaskEvent, VersionedEvent } from "../../src/domain/TaskEvent"
import { walk } from "../../src/projections/Refold"
import { agentMessage, at, userMessage } from "../support/fixtures"

const versioned = (events: ReadonlyArray<TaskEvent>): ReadonlyArray<VersionedEvent> =>
  events.map((event, i) => ({ taskId: "t", version: i + 1, event }))
const submitted: TaskEvent = { type: "TaskSubmitted", at: at(0), taskId: "t", contextId: "c", tenant: "", owner: "", message: userMessage("go") }
const started: TaskEvent = { type: "TaskStarted", at: at(1), instanceId: "i" }

/** What `verify` finds in a log beyond the machine's own law: the step journal's (docs/events.md). */
describe("verify: the step journal's invariants", () => {
  it("a journal whose records name their turn and whose timer fired when due is sound", () => {
    const log = versioned([
      submitted,
      started,
      { type: "StepCompleted", at: at(2), turn: 1, sequence: 1, name: "ask" },
      { type: "InputRequested", at: at(3), message: agentMessage("which?") },
      { type: "InputProvided", at: at(4), message: userMessage("that") },
      started,
      { type: "TimerStarted", at: at(5), turn: 2, sequence: 1, dueAt: at(9) },
      { type: "TimerFired", at: at(9), sequence: 1, instanceId: "i" },
      { type: "TaskCompleted", at: at(10) }
    ])
    const walked = walk("t", log)
    expect(walked.problem).toBeUndefined()
    expect(walked.snapshots).toHaveLength(log.length)
  })

  it("a record naming another turn than the one it was made in is a fault", () => {
    const walked = walk("t", versioned([submitted, started, { type: "StepCompleted", at: at(2), turn: 2, sequence: 1, name: "ask" }]))
    expect(walked.problem).toEqual({ taskId: "t", problem: "version 3: StepCompleted names turn 2, recorded in turn 1" })
  })

  it("a timer that fired before it was due is a fault", () => {
    const walked = walk(
      "t",
      versioned([
        submitted,
        started,
        { type: "TimerStarted", at: at(2), turn: 1, sequence: 1, dueAt: at(9) },
        { type: "TimerFired", at: at(8), sequence: 1 }
      ])
    )
    expect(walked.problem).toEqual({
      taskId: "t",
      problem: `version 4: the timer of step 1 fired at ${at(8)}, before it was due (${at(9)})`
    })
  })

  it("a timer fired without one pending is refused by the machine itself", () => {
    const walked = walk("t", versioned([submitted, started, { type: "TimerFired", at: at(8), sequence: 1 }]))
    expect(walked.problem).toEqual({ taskId: "t", problem: "version 3: TimerFired is not legal in TASK_STATE_WORKING" })
  })
})
