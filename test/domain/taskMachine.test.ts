import { describe, expect, it } from "vitest"
import { type AnySnapshot, canApply, evolve, fold, initialState } from "../../src/domain/Task"
import type { TaskEvent } from "../../src/domain/TaskEvent"
import { TaskEventTypes } from "../../src/domain/TaskEvent"
import { initialTransition, transition } from "xstate"
import { type MachineStateName, taskMachine } from "../../src/domain/taskMachine"
import { sampleEvents } from "../support/fixtures"

const ev = (type: TaskEvent["type"]) => sampleEvents.find((e) => e.type === type)!

/** A path of events that reaches each state from scratch. */
const pathTo: Record<MachineStateName, ReadonlyArray<TaskEvent["type"]>> = {
  NEW: [],
  TASK_STATE_SUBMITTED: ["TaskSubmitted"],
  TASK_STATE_WORKING: ["TaskSubmitted", "TaskStarted"],
  TASK_STATE_INPUT_REQUIRED: ["TaskSubmitted", "TaskStarted", "InputRequested"],
  TASK_STATE_AUTH_REQUIRED: ["TaskSubmitted", "TaskStarted", "AuthRequested"],
  TASK_STATE_COMPLETED: ["TaskSubmitted", "TaskStarted", "TaskCompleted"],
  TASK_STATE_FAILED: ["TaskSubmitted", "TaskStarted", "TaskFailed"],
  TASK_STATE_CANCELED: ["TaskSubmitted", "TaskCanceled"],
  TASK_STATE_REJECTED: ["TaskSubmitted", "TaskRejected"]
}

/** The whole transition table: state -> event -> resulting state (absent = refused). */
const legal: Record<MachineStateName, Partial<Record<TaskEvent["type"], MachineStateName>>> = {
  NEW: { TaskSubmitted: "TASK_STATE_SUBMITTED" },
  TASK_STATE_SUBMITTED: {
    TaskStarted: "TASK_STATE_WORKING",
    TaskFailed: "TASK_STATE_FAILED",
    TaskCanceled: "TASK_STATE_CANCELED",
    TaskRejected: "TASK_STATE_REJECTED"
  },
  TASK_STATE_WORKING: {
    StatusMessageAdded: "TASK_STATE_WORKING",
    ArtifactAdded: "TASK_STATE_WORKING",
    InputRequested: "TASK_STATE_INPUT_REQUIRED",
    AuthRequested: "TASK_STATE_AUTH_REQUIRED",
    TaskRequeued: "TASK_STATE_SUBMITTED",
    TaskCompleted: "TASK_STATE_COMPLETED",
    TaskFailed: "TASK_STATE_FAILED",
    TaskCanceled: "TASK_STATE_CANCELED",
    TaskRejected: "TASK_STATE_REJECTED",
    StepCompleted: "TASK_STATE_WORKING",
    StepAttemptFailed: "TASK_STATE_WORKING",
    StepsReset: "TASK_STATE_WORKING",
    // (TimerFired only with a timer pending: below.)
    TimerStarted: "TASK_STATE_WORKING",
    DelegationStarted: "TASK_STATE_WORKING"
  },
  TASK_STATE_INPUT_REQUIRED: {
    InputProvided: "TASK_STATE_SUBMITTED",
    TaskFailed: "TASK_STATE_FAILED",
    TaskCanceled: "TASK_STATE_CANCELED",
    TaskRejected: "TASK_STATE_REJECTED"
  },
  TASK_STATE_AUTH_REQUIRED: {
    InputProvided: "TASK_STATE_SUBMITTED",
    TaskFailed: "TASK_STATE_FAILED",
    TaskCanceled: "TASK_STATE_CANCELED",
    TaskRejected: "TASK_STATE_REJECTED"
  },
  TASK_STATE_COMPLETED: {},
  TASK_STATE_FAILED: {},
  TASK_STATE_CANCELED: {},
  TASK_STATE_REJECTED: {}
}

const reach = (state: MachineStateName): AnySnapshot => fold(pathTo[state].map(ev))

describe("task machine: every (state × event) pair", () => {
  for (const state of Object.keys(legal) as Array<MachineStateName>) {
    for (const type of TaskEventTypes) {
      const target = legal[state][type]
      it(`${state} + ${type} → ${target ?? "refused"}`, () => {
        const s = reach(state)
        expect(s.state).toBe(state)
        expect(canApply(s, ev(type))).toBe(target !== undefined)
        if (target !== undefined) {
          expect(evolve(s, ev(type)).state).toBe(target)
        } else {
          expect(() => evolve(s, ev(type))).toThrow(/illegal event/)
        }
      })
    }
  }
})

describe("the fold's judgement is the machine's own", () => {
  // The fold looks plain transitions up in a table read from the machine's definition; running the machine
  // itself must give the same answer for every pair, and the open-artifact context must carry through them.
  for (const state of Object.keys(legal) as Array<MachineStateName>) {
    it(`${state}: every event type, as the machine runs it`, () => {
      const s = reach(state)
      const machine = state === "NEW" ? initialTransition(taskMachine)[0] : taskMachine.resolveState({ value: state, context: s.machine })
      for (const type of TaskEventTypes) {
        const event = ev(type)
        expect(canApply(s, event)).toBe(machine.can(event))
        if (machine.can(event)) expect(evolve(s, event).state).toBe(transition(taskMachine, machine, event)[0].value)
      }
    })
  }
})

describe("task machine: artifact chunks", () => {
  const working = reach("TASK_STATE_WORKING")
  const chunk = (append: boolean, lastChunk: boolean, id = "a1"): TaskEvent => ({
    type: "ArtifactAdded",
    at: "2026-01-01T00:00:09.000Z",
    artifact: { artifactId: id, parts: [{ text: append ? "more" : "first" }] },
    append,
    lastChunk
  })

  it("an appended chunk needs an earlier chunk of the same artifact", () => {
    expect(canApply(working, chunk(true, false))).toBe(false)
  })

  it("chunks append until the last chunk closes the artifact", () => {
    const s1 = evolve(working, chunk(false, false))
    const s2 = evolve(s1, chunk(true, false))
    const s3 = evolve(s2, chunk(true, true))
    expect(s3.task.artifacts[0]!.parts.map((p) => p.text)).toEqual(["first", "more", "more"])
    expect(canApply(s3, chunk(true, false))).toBe(false)
    // a whole artifact of the same id replaces it
    expect(canApply(s3, chunk(false, true))).toBe(true)
  })

  it("an open artifact stays open through the facts that do not touch it", () => {
    const opened = evolve(working, chunk(false, false))
    const later = evolve(opened, sampleEvents.find((e) => e.type === "StatusMessageAdded")!)
    expect(canApply(later, chunk(true, false))).toBe(true)
    expect(later.machine).toEqual({ artifacts: { a1: false } })
  })

  it("the initial state has no task and version 0", () => {
    expect(initialState.version).toBe(0)
    expect(initialState.task).toBeUndefined()
  })
})
