/**
 * Helpers for testing agents and code that embeds a2a-ledger (`a2a-ledger/testing`).
 *
 * - {@link createTestLedger}: the Promise API on a store in memory.
 * - {@link runAgentOnce}: one task of an Effect agent through a real engine (in memory): its final task
 *   and the updates a client would have streamed.
 * - {@link makeTestContext}: an `AgentContext` that records what a turn reports, to run one turn of an
 *   Effect agent as a plain function, without an engine.
 *
 * @packageDocumentation
 */
import { Effect, Layer, Logger, LogLevel, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { type Agent, type AgentContext, partsOf, userMessage } from "./agent/Agent.js"
import type { Artifact, JsonValue, Message, Part } from "./domain/Message.js"
import type { Task } from "./domain/TaskView.js"
import type { EngineError } from "./engine/errors.js"
import { emptyJournal, stepRunner } from "./engine/steps.js"
import { delegator } from "./engine/delegation.js"
import * as RemoteAgents from "./engine/RemoteAgents.js"
import type { Command } from "./domain/Task.js"
import { anonymous, TaskEngine } from "./engine/TaskEngine.js"
import { EventLog } from "./eventlog/EventLog.js"
import * as Embedded from "./layers/Embedded.js"
import { createLedger, type Ledger, type LedgerOptions, type StreamResponse } from "./ledger/createLedger.js"
import { streamResponseFor } from "./protocol/present.js"

/** The remote agents test contexts delegate to: made once, for the process (its background cancels included). */
let remoteAgents: typeof RemoteAgents.RemoteAgents.Service | undefined
const testRemoteAgents = () => {
  remoteAgents ??= Effect.runSync(Effect.flatMap(Scope.make(), (scope) => Scope.extend(RemoteAgents.make(), scope)))
  return remoteAgents
}

/** The store that lives in memory and is gone when the ledger closes: fast, for tests. */
export const memoryStore = ":memory:"

/** A ledger on a store in memory: `createLedger` with `db: ":memory:"` and nothing logged. */
export const createTestLedger = (options: Omit<LedgerOptions, "db"> & { readonly db?: string }): Promise<Ledger> =>
  createLedger({ logLevel: "none", ...options, db: options.db ?? memoryStore })

const messageOf = (input: string | Message): Message => (typeof input === "string" ? userMessage(input) : input)

/** What `runAgentOnce` saw: the task as it settled, and every update of it, in order, as a stream shows them. */
export interface AgentRun {
  readonly task: Task
  readonly updates: ReadonlyArray<StreamResponse>
}

/**
 * Send `message` to `agent` on a fresh engine over a store in memory, wait until its task is terminal or
 * interrupted (input-required, auth-required), and answer the task with its updates. The engine is closed
 * afterwards. Requires what the agent requires.
 */
export const runAgentOnce = <R>(agent: Agent<R>, message: string | Message): Effect.Effect<AgentRun, EngineError, R> =>
  Effect.scoped(
    Effect.gen(function* () {
      const engine = yield* TaskEngine
      const outcome = yield* engine.sendAndSettle({ caller: anonymous, message: messageOf(message) })
      if (outcome._tag === "Message") return yield* Effect.dieMessage("the agent answered with a message (its reply), not a task")
      const taskId = outcome.snapshot.task.id
      const task = (yield* engine.get(taskId, anonymous)).task
      const events = yield* Effect.orDie((yield* EventLog).read(taskId))
      // As a client sees them: the step journal is not among them.
      const updates = events.flatMap((e) => {
        const update = streamResponseFor(taskId, task.contextId, e.event)
        return update === undefined ? [] : [update as StreamResponse]
      })
      return { task, updates }
    }).pipe(
      // A store in memory that cannot be opened is a defect of the test's machine, not an error of the agent.
      Effect.provide(Embedded.layer({ agent, db: memoryStore }).pipe(Layer.orDie, Layer.provide(Logger.minimumLogLevel(LogLevel.None))))
    )
  )

/** What a turn reported through a test context, in order. */
export type Report =
  | { readonly progress: ReadonlyArray<Part> }
  | { readonly artifact: Artifact; readonly append?: boolean; readonly lastChunk?: boolean }
  /** A step's record: its result as the journal keeps it. */
  | { readonly step: string; readonly result?: JsonValue }
  /** A step's failed attempt (`retryAt` when another follows). */
  | { readonly step: string; readonly attempt: number; readonly error: string; readonly retryAt?: string }
  /** A durable timer (`ctx.sleep`) and when it was due (it waits in the test's fiber: a TestClock moves it on). */
  | { readonly sleepUntil: string }
  /** A delegation's remote task (`ctx.delegate`), once it exists. */
  | { readonly delegated: string; readonly remoteTaskId: string }

/**
 * An `AgentContext` for one turn without an engine: `reports` receives every `progress` and `artifact`
 * call. The task is the one a first message makes (SUBMITTED, the message in its history) unless `task`
 * is given.
 */
export const makeTestContext = (
  input: string | Message,
  options: { readonly task?: Task } = {}
): { readonly ctx: AgentContext; readonly reports: ReadonlyArray<Report> } => {
  const message = messageOf(input)
  const task: Task = options.task ?? {
    id: message.taskId ?? randomUUID(),
    contextId: message.contextId ?? randomUUID(),
    status: { state: "TASK_STATE_SUBMITTED", timestamp: new Date().toISOString() },
    artifacts: [],
    history: [message]
  }
  const reports: Array<Report> = []
  // The engine's own steps and timers, recording into `reports` instead of a log: a first run of the turn.
  const commit = (command: Command) =>
    Effect.sync(() => {
      if (command.type === "RecordStep")
        reports.push(command.result === undefined ? { step: command.name } : { step: command.name, result: command.result })
      else if (command.type === "RecordStepAttempt") {
        const { name, attempt, error, retryAt } = command
        reports.push(retryAt === undefined ? { step: name, attempt, error } : { step: name, attempt, error, retryAt })
      } else if (command.type === "StartTimer") reports.push({ sleepUntil: command.dueAt })
      else if (command.type === "RecordDelegation") reports.push({ delegated: command.url, remoteTaskId: command.remoteTaskId })
    })
  const runner = stepRunner({ turn: 1, journal: emptyJournal, onMismatch: "fail", commit })
  const ctx: AgentContext = {
    taskId: task.id,
    contextId: task.contextId,
    input: message,
    task,
    progress: (m) => Effect.sync(() => void reports.push({ progress: partsOf(m) })),
    artifact: (artifact, o) =>
      Effect.sync(
        () => void reports.push({ artifact, ...(o?.append === true ? { append: true } : {}), ...(o?.lastChunk === true ? { lastChunk: true } : {}) })
      ),
    step: runner.step,
    sleep: runner.sleep,
    // A real remote agent is asked (the URL given), with no credentials.
    delegate: delegator({
      taskId: task.id,
      turn: 1,
      journal: emptyJournal,
      remote: testRemoteAgents(),
      record: commit,
      progress: (text) => Effect.sync(() => void reports.push({ progress: [{ text }] })),
      stepWith: runner.stepWith
    })
  }
  return { ctx, reports }
}
