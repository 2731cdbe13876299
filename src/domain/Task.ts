import { type AnyActorScope, createActor, initialTransition } from "xstate"
import { extend } from "./extend.js"
import type { Artifact, JsonValue, Message } from "./Message.js"
import { type TaskEvent, TaskEventTypes } from "./TaskEvent.js"
import { taskMachine, type MachineContext, type MachineStateName, type TaskMachineSnapshot } from "./taskMachine.js"
import { isTerminal, type TaskState } from "./TaskState.js"
import * as TaskView from "./TaskView.js"

/**
 * The task decider (Emmett style): `initialState`, `evolve`, `decide`.
 * Pure: the engine supplies time (`at`) and fresh ids inside the commands.
 */

/** What every snapshot of a task has, before its first fact and after. */
interface SnapshotFields {
  readonly version: number
  /** @internal What the task's machine keeps besides its state (open artifacts); the engine's own. */
  readonly machine: MachineContext
  readonly tenant: string
  /** The principal the task belongs to; "" without authentication. */
  readonly owner: string
  readonly createdAt: string
  /** The user message the next (or current) worker turn answers. */
  readonly turnInput?: Message
  /** The W3C trace context the message that began the next (or current) turn came with: its turn's spans join that trace. */
  readonly traceparent?: string
  /**
   * The task holds only its head: its history and artifacts are left out (they are in its events, in
   * order). A big task's writer keeps it so (see `detach`); whoever shows the task completes it first.
   */
  readonly detached?: true
}

/** A task before its first fact: what a decision to submit it starts from (`initialState`). */
export interface NewTaskSnapshot extends SnapshotFields {
  readonly version: 0
  readonly state: "NEW"
  readonly task: undefined
}

/** Everything the writer needs to decide the next facts of a task that has some: it always has its `task`. */
export interface TaskSnapshot extends SnapshotFields {
  readonly state: TaskState
  readonly task: TaskView.Task
}

/** What the decider works on: a task before its first fact, or after. */
export type AnySnapshot = NewTaskSnapshot | TaskSnapshot

export const initialState: NewTaskSnapshot = {
  version: 0,
  state: "NEW",
  machine: { artifacts: {} },
  tenant: "",
  owner: "",
  createdAt: "",
  turnInput: undefined,
  task: undefined
}

export type Command =
  | {
      readonly type: "Submit"
      readonly taskId: string
      readonly contextId: string
      readonly tenant: string
      readonly owner: string
      readonly message: Message
      /** The trace the sending request was part of (tracing on). */
      readonly traceparent?: string
    }
  | { readonly type: "Start"; readonly instanceId: string; readonly leaseEpoch?: number }
  | { readonly type: "Progress"; readonly message: Message }
  | { readonly type: "EmitArtifact"; readonly artifact: Artifact; readonly append: boolean; readonly lastChunk: boolean }
  | { readonly type: "RequestInput"; readonly message: Message }
  | { readonly type: "RequestAuth"; readonly message: Message }
  | { readonly type: "ProvideInput"; readonly message: Message; readonly traceparent?: string }
  | { readonly type: "Requeue"; readonly reason: string }
  | { readonly type: "Complete"; readonly message?: Message }
  | { readonly type: "Fail"; readonly reason: string; readonly message: Message }
  | { readonly type: "Cancel"; readonly reason?: string }
  | { readonly type: "Reject"; readonly reason: string; readonly message: Message }
  // The step journal (`ctx.step`): the worker says which turn and step; the machine checks the order.
  | { readonly type: "RecordStep"; readonly turn: number; readonly sequence: number; readonly name: string; readonly result?: JsonValue }
  | {
      readonly type: "RecordStepAttempt"
      readonly turn: number
      readonly sequence: number
      readonly name: string
      readonly attempt: number
      readonly error: string
      readonly retryAt?: string
    }
  | { readonly type: "ResetSteps"; readonly turn: number; readonly reason: string }
  // Durable timers (`ctx.sleep`): a timer takes the turn's next place; firing it goes on with the pending one.
  | { readonly type: "StartTimer"; readonly turn: number; readonly sequence: number; readonly dueAt: string }
  // `sequence`: the sleep that fires it in its worker names its own place; a supervisor waking the task fires the pending one.
  | { readonly type: "FireTimer"; readonly sequence?: number; readonly instanceId?: string; readonly leaseEpoch?: number }
  // A delegation's remote task, recorded within its step (the step's place is taken by its final record).
  | {
      readonly type: "RecordDelegation"
      readonly turn: number
      readonly sequence: number
      readonly attempt: number
      readonly url: string
      readonly remoteTaskId: string
      readonly remoteContextId: string
    }

/** The metadata key of a message that starts a turn, for its priority (an integer, higher first; default 0). */
export const priorityKey = "a2a-ledger/priority"

/** The priority a task's current turn asks for: its input message's (0 when it asks for none). */
export const priorityOf = (message: { readonly metadata?: Readonly<Record<string, unknown>> } | undefined): number => {
  const p = message?.metadata?.[priorityKey]
  return typeof p === "number" && Number.isInteger(p) ? p : 0
}

/** The turn, in the task's count: its submission is turn 1, each answer to a question one more. */
export const turnOf = (history: ReadonlyArray<{ readonly role: string }>): number => Math.max(1, history.filter((m) => m.role === "ROLE_USER").length)

/**
 * When a task sleeping on a durable timer is due: its turn stopped at `ctx.sleep` (WORKING, its timer
 * pending and the last place of its journal: nothing recorded since), so no worker runs it until then.
 * Undefined for any other task, a turn whose timer was passed by later steps (one that raced it) included.
 */
export const sleepingUntil = (s: TaskSnapshot): string | undefined => {
  const timer = s.machine.timer
  return timer !== undefined && s.state === "TASK_STATE_WORKING" && s.machine.steps === timer.sequence ? timer.dueAt : undefined
}

/** Why a command was refused. `state` is where the task stood. */
export type Refusal =
  | { readonly _tag: "TaskIsTerminal"; readonly state: TaskState }
  | { readonly _tag: "IllegalTransition"; readonly state: MachineStateName; readonly event: TaskEvent["type"]; readonly detail: string }

/** The facts a command leads to and the state they fold to, or why it was refused. */
export type Decision =
  | { readonly ok: true; readonly events: ReadonlyArray<TaskEvent>; readonly state: TaskSnapshot }
  | { readonly ok: false; readonly refusal: Refusal }

// Every task starts from the same machine snapshot (XState snapshots are immutable): made once.
let initialMachine: TaskMachineSnapshot | undefined

// The machine snapshot each folded state came from: the next decision on it starts there (a memo; a
// state read from the store is resolved from its state name and context instead).
const machineOf = new WeakMap<AnySnapshot, TaskMachineSnapshot>()

const toSnapshot = (s: AnySnapshot): TaskMachineSnapshot =>
  s.state === "NEW"
    ? (initialMachine ??= initialTransition(taskMachine)[0])
    : (machineOf.get(s) ?? taskMachine.resolveState({ value: s.state, context: s.machine }))

/**
 * The transitions the machine makes on the state's name and the event's type alone: no guard, no action,
 * and no entry or exit action on the way (every transition of this machine but an artifact's). Read once
 * from the machine's own definition, by state and event type: the next state's name, or null where the
 * machine has no transition for the type (it refuses the event). A pair not in the table (a guarded or
 * assigning transition) is judged by running the machine. So the machine stays the only judge (invariant
 * 1), and a fold runs it only where the context matters: a transition costs about 2.4 µs, a look-up nothing.
 */
const plainTransitions: ReadonlyMap<string, MachineStateName | null> = (() => {
  const table = new Map<string, MachineStateName | null>()
  const nodes = taskMachine.root.states as Record<string, StateNodeLike>
  // Any entry or exit action, or a transition on the machine's root, and every pair is the machine's to run.
  if (Object.keys(taskMachine.root.on).length > 0 || Object.values(nodes).some((n) => n.entry.length > 0 || n.exit.length > 0)) return table
  for (const [name, node] of Object.entries(nodes)) {
    for (const type of TaskEventTypes) {
      const transitions = node.on[type]
      if (transitions === undefined || transitions.length === 0) table.set(plainKey(name, type), null)
      else if (
        transitions.length === 1 &&
        transitions[0]!.guard === undefined &&
        transitions[0]!.actions.length === 0 &&
        transitions[0]!.target?.length === 1
      ) {
        table.set(plainKey(name, type), transitions[0]!.target[0]!.key as MachineStateName)
      }
    }
  }
  return table
})()

interface StateNodeLike {
  readonly entry: ReadonlyArray<unknown>
  readonly exit: ReadonlyArray<unknown>
  readonly on: Record<
    string,
    ReadonlyArray<{ readonly guard?: unknown; readonly actions: ReadonlyArray<unknown>; readonly target?: ReadonlyArray<{ readonly key: string }> }>
  >
}

function plainKey(state: string, type: string): string {
  return `${state} ${type}`
}

/**
 * The machine's judgement of a fact: the state after it, and the machine snapshot when the machine ran
 * (a guarded or assigning transition); undefined when it is refused.
 */
const judge = (s: AnySnapshot, event: TaskEvent): { readonly state: MachineStateName; readonly after?: TaskMachineSnapshot } | undefined => {
  const plain = plainTransitions.get(plainKey(s.state, event.type))
  if (plain === null) return undefined
  if (plain !== undefined) return { state: plain }
  const before = toSnapshot(s)
  if (!before.can(event)) return undefined
  const after = taskMachine.transition(before, event, inertScope())
  return { state: after.value as MachineStateName, after }
}

/** Is this fact legal now? The machine is the only judge (invariant 1). */
export const canApply = (s: AnySnapshot, event: TaskEvent): boolean => {
  const plain = plainTransitions.get(plainKey(s.state, event.type))
  return plain !== undefined ? plain !== null : toSnapshot(s).can(event)
}

/**
 * The event types the machine accepts next, by state (a guarded one, such as
 * an appended artifact chunk, may still be refused for its content).
 */
export const nextEvents = (s: AnySnapshot): ReadonlyArray<TaskEvent["type"]> =>
  Object.keys((taskMachine.states as Record<string, { on?: object }>)[s.state]?.on ?? {}) as Array<TaskEvent["type"]>

/** Fold one fact if the machine allows it now (one judgement, one transition); undefined if it does not. */
export const apply = (s: AnySnapshot, event: TaskEvent): TaskSnapshot | undefined => {
  const judged = judge(s, event)
  return judged === undefined ? undefined : step(s, judged, event)
}

/** Fold one fact. Throws on an illegal fact: callers check `canApply` first. */
export const evolve = (s: AnySnapshot, event: TaskEvent): TaskSnapshot => {
  const judged = judge(s, event)
  if (judged === undefined) {
    throw new Error(`illegal event ${event.type} in state ${s.state} at version ${s.version}`)
  }
  return step(s, judged, event)
}

/**
 * XState's pure `transition()` builds a new actor, and its initial snapshot, for every call (8 µs here,
 * more than the rest of a decision). The machine spawns nothing and runs no actions but its assigns,
 * so one inert scope, made once, serves every transition: 2 µs.
 */
let inert: AnyActorScope | undefined
const inertScope = (): AnyActorScope => {
  if (inert !== undefined) return inert
  const self = createActor(taskMachine)
  const nothing = () => {}
  inert = {
    self,
    system: self.system,
    id: "",
    sessionId: "",
    defer: nothing,
    logger: nothing,
    stopChild: nothing,
    emit: nothing,
    actionExecutor: nothing
  }
  return inert
}

/**
 * The snapshot without its task's history and artifacts, which its events hold. Deciding and folding on
 * it go on as on the whole one (the machine's context and the task's status are all a decision needs), and
 * keep it detached: a big task's next fact then costs the same at its 10,000th as at its 20th, where the
 * whole task copies its history at every fact, and a writer keeping many tasks holds their heads only.
 */
export const detach = (s: TaskSnapshot): TaskSnapshot =>
  s.detached === true ? s : extend(s, { task: TaskView.head(s.task), detached: true as const })

/** The next turn's trace context: the new message's, or none (never the previous turn's). */
const withTrace = (s: TaskSnapshot, traceparent: string | undefined): TaskSnapshot => {
  if (traceparent !== undefined) return extend(s, { traceparent })
  if (s.traceparent === undefined) return s
  const { traceparent: _previous, ...rest } = s
  return rest
}

/** Fold one fact the machine allowed (`judged`: the state it moves to, and the machine's snapshot if it ran). */
const step = (s: AnySnapshot, judged: { readonly state: MachineStateName; readonly after?: TaskMachineSnapshot }, event: TaskEvent): TaskSnapshot => {
  const task = s.detached === true ? TaskView.evolveHead(s.task, event) : TaskView.evolve(s.task, event)
  // The machine judged the fact legal: only a submission starts a task, and every state after it is one of A2A's.
  if (task === undefined || judged.state === "NEW") throw new Error(`a ${event.type} the machine allowed left no task`)
  const version = s.version + 1
  const base: TaskSnapshot = extend(s as TaskSnapshot, {
    version,
    state: judged.state,
    // A plain transition leaves the context as it was.
    machine: judged.after !== undefined ? judged.after.context : s.machine,
    task
  })
  const next: TaskSnapshot =
    event.type === "TaskSubmitted"
      ? extend(
          base,
          event.traceparent === undefined
            ? { tenant: event.tenant, owner: event.owner, createdAt: event.at, turnInput: event.message }
            : { tenant: event.tenant, owner: event.owner, createdAt: event.at, turnInput: event.message, traceparent: event.traceparent }
        )
      : event.type === "InputProvided"
        ? withTrace(extend(base, { turnInput: event.message }), event.traceparent)
        : base
  if (judged.after !== undefined) machineOf.set(next, judged.after)
  return next
}

export const fold = (events: Iterable<TaskEvent>, from: AnySnapshot = initialState): AnySnapshot => {
  let s: AnySnapshot = from
  for (const e of events) s = evolve(s, e)
  return s
}

/** The task its facts fold to; it must have some (a task's log starts with its submission). */
export const foldTask = (events: Iterable<TaskEvent>, from: AnySnapshot = initialState): TaskSnapshot => {
  const s = fold(events, from)
  if (s.state === "NEW") throw new Error("a task with no facts to fold")
  return s
}

/** Messages recorded on a task name its task and context (the proto requires it of agent messages). */
const stamp = (s: AnySnapshot, message: Message): Message =>
  s.task === undefined ? message : extend(message, { taskId: s.task.id, contextId: s.task.contextId })

const toEvent = (s: AnySnapshot, command: Command, at: string): TaskEvent => {
  switch (command.type) {
    case "Submit": {
      const message = extend(command.message, { taskId: command.taskId, contextId: command.contextId })
      const { taskId, contextId, tenant, owner, traceparent } = command
      return traceparent === undefined
        ? { type: "TaskSubmitted", at, taskId, contextId, tenant, owner, message }
        : { type: "TaskSubmitted", at, taskId, contextId, tenant, owner, message, traceparent }
    }
    case "Start":
      return command.leaseEpoch === undefined
        ? { type: "TaskStarted", at, instanceId: command.instanceId }
        : { type: "TaskStarted", at, instanceId: command.instanceId, leaseEpoch: command.leaseEpoch }
    case "Progress":
      return { type: "StatusMessageAdded", at, message: stamp(s, command.message) }
    case "EmitArtifact":
      return { type: "ArtifactAdded", at, artifact: command.artifact, append: command.append, lastChunk: command.lastChunk }
    case "RequestInput":
      return { type: "InputRequested", at, message: stamp(s, command.message) }
    case "RequestAuth":
      return { type: "AuthRequested", at, message: stamp(s, command.message) }
    case "ProvideInput":
      return command.traceparent === undefined
        ? { type: "InputProvided", at, message: stamp(s, command.message) }
        : { type: "InputProvided", at, message: stamp(s, command.message), traceparent: command.traceparent }
    case "Requeue":
      return { type: "TaskRequeued", at, reason: command.reason }
    case "Complete":
      return command.message === undefined ? { type: "TaskCompleted", at } : { type: "TaskCompleted", at, message: stamp(s, command.message) }
    case "Fail":
      return { type: "TaskFailed", at, reason: command.reason, message: stamp(s, command.message) }
    case "Cancel":
      return command.reason === undefined ? { type: "TaskCanceled", at } : { type: "TaskCanceled", at, reason: command.reason }
    case "Reject":
      return { type: "TaskRejected", at, reason: command.reason, message: stamp(s, command.message) }
    case "RecordStep": {
      const { turn, sequence, name, result } = command
      return result === undefined ? { type: "StepCompleted", at, turn, sequence, name } : { type: "StepCompleted", at, turn, sequence, name, result }
    }
    case "RecordStepAttempt": {
      const { turn, sequence, name, attempt, error, retryAt } = command
      return retryAt === undefined
        ? { type: "StepAttemptFailed", at, turn, sequence, name, attempt, error }
        : { type: "StepAttemptFailed", at, turn, sequence, name, attempt, error, retryAt }
    }
    case "ResetSteps":
      return { type: "StepsReset", at, turn: command.turn, reason: command.reason }
    case "StartTimer":
      return { type: "TimerStarted", at, turn: command.turn, sequence: command.sequence, dueAt: command.dueAt }
    case "RecordDelegation": {
      const { turn, sequence, attempt, url, remoteTaskId, remoteContextId } = command
      return { type: "DelegationStarted", at, turn, sequence, attempt, url, remoteTaskId, remoteContextId }
    }
    case "FireTimer": {
      // The pending timer's place (0 when none is pending: the machine refuses it).
      const sequence = command.sequence ?? s.machine.timer?.sequence ?? 0
      const { instanceId, leaseEpoch } = command
      if (instanceId === undefined) return { type: "TimerFired", at, sequence }
      return leaseEpoch === undefined
        ? { type: "TimerFired", at, sequence, instanceId }
        : { type: "TimerFired", at, sequence, instanceId, leaseEpoch }
    }
  }
}

export const decide = (s: AnySnapshot, command: Command, at: string): Decision => {
  if (s.state !== "NEW" && isTerminal(s.state)) {
    return { ok: false, refusal: { _tag: "TaskIsTerminal", state: s.state } }
  }
  const event = toEvent(s, command, at)
  // The machine judges the fact once, and its judgement folds it.
  const judged = judge(s, event)
  if (judged === undefined) {
    const detail =
      event.type === "ArtifactAdded" && event.append
        ? `no open artifact ${event.artifact.artifactId} to append to`
        : (event.type === "StepCompleted" ||
              event.type === "StepAttemptFailed" ||
              event.type === "TimerStarted" ||
              event.type === "DelegationStarted") &&
            s.state === "TASK_STATE_WORKING"
          ? `step ${event.sequence} is not the turn's next (it has recorded ${s.machine.steps ?? 0})`
          : event.type === "TimerFired" && s.state === "TASK_STATE_WORKING"
            ? "the turn has no pending timer"
            : `${event.type} is not allowed in ${s.state}`
    return { ok: false, refusal: { _tag: "IllegalTransition", state: s.state, event: event.type, detail } }
  }
  return { ok: true, events: [event], state: step(s, judged, event) }
}

/**
 * Several commands as one decision, each judged on the state the ones before
 * it leave (a turn's start with its first emission): all their events, or
 * the first refusal and none.
 */
export const decideAll = (s: AnySnapshot, commands: ReadonlyArray<Command>, at: string): Decision => {
  const events: Array<TaskEvent> = []
  let current: AnySnapshot = s
  for (const command of commands) {
    const decision = decide(current, command, at)
    if (!decision.ok) return decision
    events.push(...decision.events)
    current = decision.state
  }
  if (current.state === "NEW") throw new Error("decideAll was given no command")
  return { ok: true, events, state: current }
}
