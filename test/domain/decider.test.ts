import { describe, expect, it } from "vitest"
import { type AnySnapshot, type Command, decide, decideAll, detach, fold, foldTask, sleepingUntil } from "../../src/domain/Task"
import type { TaskEvent } from "../../src/domain/TaskEvent"
import { agentMessage, at, sampleEvents, userMessage } from "../support/fixtures"

/** Given past facts, When a command, Then these new facts (or this refusal). */
const given = (...events: ReadonlyArray<TaskEvent>) => {
  const state: AnySnapshot = fold(events)
  return {
    when: (command: Command | ReadonlyArray<Command>) => {
      const decision = Array.isArray(command) ? decideAll(state, command, at(50)) : decide(state, command as Command, at(50))
      return {
        // biome-ignore lint/suspicious/noThenProperty: Given / When / Then; the object is never awaited
        then: (expected: ReadonlyArray<Partial<TaskEvent>>) => {
          expect(decision.ok).toBe(true)
          if (decision.ok) {
            expect(decision.events).toHaveLength(expected.length)
            for (const [i, e] of decision.events.entries()) expect(e).toMatchObject(expected[i]!)
            // The state a decision hands back is the fold of its facts: the writer saves it as the task's row.
            expect(decision.state).toEqual(foldTask(decision.events, state))
          }
        },
        thenRefused: (tag: string) => {
          expect(decision.ok).toBe(false)
          if (!decision.ok) expect(decision.refusal._tag).toBe(tag)
        }
      }
    }
  }
}

const submitted = sampleEvents[0]!
const started: TaskEvent = { type: "TaskStarted", at: at(1), instanceId: "i1" }

describe("decider", () => {
  it("Submit on an empty stream records TaskSubmitted and stamps the task and context ids on the message", () =>
    given()
      .when({ type: "Submit", taskId: "t9", contextId: "c9", tenant: "acme", owner: "alice", message: userMessage("go") })
      .then([
        {
          type: "TaskSubmitted",
          taskId: "t9",
          contextId: "c9",
          tenant: "acme",
          owner: "alice",
          at: at(50),
          message: { ...userMessage("go"), taskId: "t9", contextId: "c9" }
        }
      ]))

  it("Start moves a submitted task to work", () =>
    given(submitted)
      .when({ type: "Start", instanceId: "i2" })
      .then([{ type: "TaskStarted", instanceId: "i2" }]))

  it("Progress while working stamps the agent message with the task's ids", () =>
    given(submitted, started)
      .when({ type: "Progress", message: agentMessage("Step 1/4") })
      .then([{ type: "StatusMessageAdded", message: { ...agentMessage("Step 1/4"), taskId: "t1", contextId: "c1" } }]))

  it("Progress before the task started is refused", () =>
    given(submitted)
      .when({ type: "Progress", message: agentMessage("early") })
      .thenRefused("IllegalTransition"))

  it("ProvideInput answers an input-required task and queues it again", () =>
    given(submitted, started, { type: "InputRequested", at: at(2), message: agentMessage("which?") })
      .when({ type: "ProvideInput", message: userMessage("that") })
      .then([{ type: "InputProvided" }]))

  it("ProvideInput to a working task is refused (one worker per task)", () =>
    given(submitted, started)
      .when({ type: "ProvideInput", message: userMessage("again") })
      .thenRefused("IllegalTransition"))

  it("Start with a first emission, decided as one: both facts, each judged on the state the one before leaves", () =>
    given(submitted)
      .when([
        { type: "Start", instanceId: "i2" },
        { type: "Progress", message: agentMessage("Step 1/4") }
      ])
      .then([
        { type: "TaskStarted", instanceId: "i2" },
        { type: "StatusMessageAdded", message: { ...agentMessage("Step 1/4"), taskId: "t1" } }
      ]))

  it("a refused command in a list refuses the whole list: none of its facts", () =>
    given(submitted)
      .when([
        { type: "Start", instanceId: "i2" },
        { type: "EmitArtifact", artifact: { artifactId: "a", parts: [{ text: "x" }] }, append: true, lastChunk: false }
      ])
      .thenRefused("IllegalTransition"))

  it("Cancel of a submitted task records TaskCanceled", () =>
    given(submitted)
      .when({ type: "Cancel" })
      .then([{ type: "TaskCanceled" }]))

  for (const terminal of sampleEvents.filter((e) => ["TaskCompleted", "TaskFailed", "TaskCanceled", "TaskRejected"].includes(e.type))) {
    it(`nothing is decided after ${terminal.type} (terminal is final)`, () => {
      const history = terminal.type === "TaskCanceled" || terminal.type === "TaskRejected" ? [submitted, terminal] : [submitted, started, terminal]
      for (const command of [
        { type: "Cancel" },
        { type: "Complete" },
        { type: "Progress", message: agentMessage("late") },
        { type: "ProvideInput", message: userMessage("late") }
      ] as const) {
        given(...history)
          .when(command)
          .thenRefused("TaskIsTerminal")
      }
    })
  }

  it("the folded view keeps every message in history and the latest status", () => {
    const s = foldTask([
      submitted,
      started,
      { type: "StatusMessageAdded", at: at(2), message: agentMessage("Step 1/4") },
      { type: "ArtifactAdded", at: at(3), artifact: { artifactId: "r", name: "report", parts: [{ text: "R" }] }, append: false, lastChunk: true },
      { type: "TaskCompleted", at: at(4), message: agentMessage("done") }
    ])
    expect(s.version).toBe(5)
    expect(s.task.status).toEqual({ state: "TASK_STATE_COMPLETED", timestamp: at(4), message: agentMessage("done") })
    expect(s.task.history.map((m) => m.parts[0]!.text)).toEqual(["hi", "Step 1/4", "done"])
    expect(s.task.artifacts.map((a) => a.name)).toEqual(["report"])
  })

  it("a detached snapshot (its head only) decides as the whole one does, and its states are the whole ones' heads", () => {
    const artifact = (id: string, text: string) => ({ artifactId: id, parts: [{ text }] })
    const commands: ReadonlyArray<Command> = [
      { type: "Progress", message: agentMessage("Step 1") },
      { type: "EmitArtifact", artifact: artifact("a", "one"), append: false, lastChunk: false },
      { type: "EmitArtifact", artifact: artifact("a", "two"), append: true, lastChunk: true },
      // The artifact is closed: a chunk more is refused, on the head as on the whole task.
      { type: "EmitArtifact", artifact: artifact("a", "three"), append: true, lastChunk: false },
      { type: "EmitArtifact", artifact: artifact("b", "b"), append: false, lastChunk: true },
      { type: "RequestInput", message: agentMessage("which one?") },
      { type: "Progress", message: agentMessage("refused: not working") },
      { type: "ProvideInput", message: userMessage("b") },
      { type: "Start", instanceId: "i2" },
      { type: "Progress", message: agentMessage("Step 2") },
      { type: "Complete", message: agentMessage("done") },
      { type: "Cancel" }
    ]
    let whole = foldTask([submitted, started])
    let head = detach(whole)
    let refused = 0
    for (const [i, command] of commands.entries()) {
      const a = decide(whole, command, at(10 + i))
      const b = decide(head, command, at(10 + i))
      expect(b.ok).toBe(a.ok)
      if (!a.ok || !b.ok) {
        refused++
        expect(b).toEqual(a)
        continue
      }
      expect(b.events).toEqual(a.events)
      expect(b.state.detached).toBe(true)
      expect(b.state.task.history).toEqual([])
      expect(b.state.task.artifacts).toEqual([])
      // What the writer stores of either is the same text (TaskReadModel's row of a big task).
      expect(JSON.stringify(b.state)).toBe(JSON.stringify(detach(a.state)))
      whole = a.state
      head = b.state
    }
    expect(refused).toBe(3)
    expect(whole.task.history.length).toBe(6)
    expect(whole.task.artifacts.map((x) => x.parts.length)).toEqual([2, 1])
  })
})

describe("decider: the step journal", () => {
  const step = (sequence: number, name = `s${sequence}`): Command => ({ type: "RecordStep", turn: 1, sequence, name, result: sequence })
  const completed = (sequence: number): TaskEvent => ({
    type: "StepCompleted",
    at: at(20 + sequence),
    turn: 1,
    sequence,
    name: `s${sequence}`,
    result: sequence
  })

  it("RecordStep in a working turn records StepCompleted, the next step in order", () =>
    given(submitted, started, completed(1))
      .when(step(2))
      .then([{ type: "StepCompleted", turn: 1, sequence: 2, name: "s2", result: 2 }]))

  it("a step out of order (skipped or recorded twice) is refused, naming the turn's count", () => {
    given(submitted, started, completed(1)).when(step(3)).thenRefused("IllegalTransition")
    given(submitted, started, completed(1)).when(step(1)).thenRefused("IllegalTransition")
    const decision = decide(fold([submitted, started, completed(1)]), step(1), at(50))
    expect(!decision.ok && decision.refusal._tag === "IllegalTransition" && decision.refusal.detail).toBe(
      "step 1 is not the turn's next (it has recorded 1)"
    )
  })

  it("a failed attempt with a next one keeps the step's place; the final failure takes it", () => {
    const attempt = (retryAt?: string): Command => ({
      type: "RecordStepAttempt",
      turn: 1,
      sequence: 1,
      name: "s1",
      attempt: 1,
      error: "boom",
      ...(retryAt === undefined ? {} : { retryAt })
    })
    given(submitted, started)
      .when([attempt(at(30)), step(1)])
      .then([
        { type: "StepAttemptFailed", retryAt: at(30) },
        { type: "StepCompleted", sequence: 1 }
      ])
    given(submitted, started)
      .when([attempt(), step(2)])
      .then([{ type: "StepAttemptFailed" }, { type: "StepCompleted", sequence: 2 }])
  })

  it("steps are recorded only while WORKING", () => {
    given(submitted).when(step(1)).thenRefused("IllegalTransition")
    given(submitted, started, { type: "InputRequested", at: at(3), message: agentMessage("which?") })
      .when(step(1))
      .thenRefused("IllegalTransition")
  })

  it("an answer to a question starts a new turn: its journal starts at step 1 again; so does a reset", () => {
    const asked: TaskEvent = { type: "InputRequested", at: at(30), message: agentMessage("which?") }
    const answered: TaskEvent = { type: "InputProvided", at: at(31), message: userMessage("that") }
    given(submitted, started, completed(1), asked, answered, started)
      .when(step(1))
      .then([{ type: "StepCompleted", sequence: 1 }])
    given(submitted, started, completed(1))
      .when([{ type: "ResetSteps", turn: 1, reason: "changed" }, step(1)])
      .then([
        { type: "StepsReset", reason: "changed" },
        { type: "StepCompleted", sequence: 1 }
      ])
  })

  it("a task that never kept a journal folds as it did before steps existed (its rows stay as they were)", () => {
    const asked: TaskEvent = { type: "InputRequested", at: at(30), message: agentMessage("which?") }
    const answered: TaskEvent = { type: "InputProvided", at: at(31), message: userMessage("that") }
    const s = foldTask([submitted, started, asked, answered])
    expect(JSON.stringify(s.machine)).toBe(JSON.stringify({ artifacts: {} }))
  })
})

describe("decider: durable timers", () => {
  const startTimer = (sequence: number, dueAt = at(40)): Command => ({ type: "StartTimer", turn: 1, sequence, dueAt })
  const timerStarted = (sequence: number, dueAt = at(40)): TaskEvent => ({ type: "TimerStarted", at: at(20 + sequence), turn: 1, sequence, dueAt })
  const completed = (sequence: number): TaskEvent => ({ type: "StepCompleted", at: at(20 + sequence), turn: 1, sequence, name: `s${sequence}` })

  it("StartTimer records TimerStarted at the turn's next place, and the task sleeps until it is due", () => {
    given(submitted, started, completed(1))
      .when(startTimer(2))
      .then([{ type: "TimerStarted", turn: 1, sequence: 2, dueAt: at(40) }])
    const sleeping = foldTask([submitted, started, completed(1), timerStarted(2)])
    expect(sleeping.machine.timer).toEqual({ sequence: 2, dueAt: at(40) })
    expect(sleepingUntil(sleeping)).toBe(at(40))
    given(submitted, started).when(startTimer(2)).thenRefused("IllegalTransition")
  })

  it("FireTimer fires the pending timer (a supervisor waking the task names itself); the task no longer sleeps", () => {
    given(submitted, started, timerStarted(1))
      .when({ type: "FireTimer", instanceId: "i-9", leaseEpoch: 3 })
      .then([{ type: "TimerFired", sequence: 1, instanceId: "i-9", leaseEpoch: 3 }])
    const woken = foldTask([submitted, started, timerStarted(1), { type: "TimerFired", at: at(40), sequence: 1 }])
    expect(woken.machine.timer).toBeUndefined()
    expect(sleepingUntil(woken)).toBeUndefined()
  })

  it("a timer fires once, and only the pending one: a sleep naming another place, or none pending, is refused", () => {
    const decision = decide(fold([submitted, started]), { type: "FireTimer" }, at(50))
    expect(!decision.ok && decision.refusal._tag === "IllegalTransition" && decision.refusal.detail).toBe("the turn has no pending timer")
    given(submitted, started, timerStarted(1), { type: "TimerFired", at: at(40), sequence: 1 })
      .when({ type: "FireTimer", sequence: 1 })
      .thenRefused("IllegalTransition")
    // A later timer replaced the first (the agent's code stopped waiting for it): the first cannot fire.
    given(submitted, started, timerStarted(1), timerStarted(2, at(45)))
      .when({ type: "FireTimer", sequence: 1 })
      .thenRefused("IllegalTransition")
    given(submitted, started, timerStarted(1), timerStarted(2, at(45)))
      .when({ type: "FireTimer", sequence: 2 })
      .then([{ type: "TimerFired", sequence: 2 }])
  })

  it("a turn whose journal moved past its timer (a step recorded after it) is running, not sleeping", () => {
    const s = foldTask([submitted, started, timerStarted(1), completed(2)])
    expect(s.machine.timer).toEqual({ sequence: 1, dueAt: at(40) })
    expect(sleepingUntil(s)).toBeUndefined()
  })

  it("only a WORKING task sleeps: a cancel ends the sleep, and a reset sets the timer aside", () => {
    expect(sleepingUntil(foldTask([submitted, started, timerStarted(1), { type: "TaskCanceled", at: at(30) }]))).toBeUndefined()
    given(submitted, started, { type: "TaskCanceled", at: at(30) })
      .when(startTimer(1))
      .thenRefused("TaskIsTerminal")
    given(submitted).when(startTimer(1)).thenRefused("IllegalTransition")
    const reset = foldTask([submitted, started, timerStarted(1), { type: "StepsReset", at: at(30), turn: 1, reason: "changed" }])
    expect(sleepingUntil(reset)).toBeUndefined()
    expect(reset.machine.timer).toBeUndefined()
  })
})

describe("decider: delegations", () => {
  const record = (sequence: number, attempt = 1): Command => ({
    type: "RecordDelegation",
    turn: 1,
    sequence,
    attempt,
    url: "https://remote.example",
    remoteTaskId: `r-${attempt}`,
    remoteContextId: "rc"
  })

  it("RecordDelegation records DelegationStarted at its step's place, which the step's own record then takes", () => {
    given(submitted, started)
      .when([
        record(1),
        { type: "RecordStepAttempt", turn: 1, sequence: 1, name: "ask", attempt: 1, error: "FAILED", retryAt: at(30) },
        record(1, 2),
        { type: "RecordStep", turn: 1, sequence: 1, name: "ask" }
      ])
      .then([
        { type: "DelegationStarted", sequence: 1, attempt: 1, remoteTaskId: "r-1" },
        { type: "StepAttemptFailed", sequence: 1 },
        { type: "DelegationStarted", sequence: 1, attempt: 2, remoteTaskId: "r-2" },
        { type: "StepCompleted", sequence: 1 }
      ])
  })

  it("a delegation at another place than the turn's next is refused", () => {
    given(submitted, started).when(record(2)).thenRefused("IllegalTransition")
    given(submitted).when(record(1)).thenRefused("IllegalTransition")
  })
})
