import { type AnyActorScope, createActor, initialTransition } from "xstate"
import type { Artifact, Message } from "./Message"
import type { TaskEvent } from "./TaskEvent"
import { taskMachine, type MachineContext, type MachineStateName, type TaskMachineSnapshot } from "./taskMachine"
import { isTerminal, type TaskState } from "./TaskState"
import * as TaskView from "./TaskView"

/**
 * The task decider (Emmett style): `initialState`, `evolve`, `decide`.
 * Pure: the engine supplies time (`at`) and fresh ids inside the commands.
 */

/** Everything the writer needs to decide the next facts of one task. */
export interface TaskSnapshot {
  readonly version: number
  readonly state: MachineStateName
  readonly machine: MachineContext
  readonly tenant: string
  /** The principal the task belongs to; "" without authentication. */
  readonly owner: string
  readonly createdAt: string
  /** The user message the next (or current) worker turn answers. */
  readonly turnInput: Message | undefined
  readonly task: TaskView.Task | undefined
}

export const initialState: TaskSnapshot = {
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
    }
  | { readonly type: "Start"; readonly instanceId: string; readonly leaseEpoch?: number }
  | { readonly type: "Progress"; readonly message: Message }
  | { readonly type: "EmitArtifact"; readonly artifact: Artifact; readonly append: boolean; readonly lastChunk: boolean }
  | { readonly type: "RequestInput"; readonly message: Message }
  | { readonly type: "RequestAuth"; readonly message: Message }
  | { readonly type: "ProvideInput"; readonly message: Message }
  | { readonly type: "Requeue"; readonly reason: string }
  | { readonly type: "Complete"; readonly message?: Message }
  | { readonly type: "Fail"; readonly reason: string; readonly message: Message }
  | { readonly type: "Cancel"; readonly reason?: string }
  | { readonly type: "Reject"; readonly reason: string; readonly message: Message }

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
const machineOf = new WeakMap<TaskSnapshot, TaskMachineSnapshot>()

const toSnapshot = (s: TaskSnapshot): TaskMachineSnapshot =>
  s.state === "NEW"
    ? (initialMachine ??= initialTransition(taskMachine)[0])
    : (machineOf.get(s) ?? taskMachine.resolveState({ value: s.state, context: s.machine }))

/** Is this fact legal now? The machine is the only judge (invariant 1). */
export const canApply = (s: TaskSnapshot, event: TaskEvent): boolean => toSnapshot(s).can(event)

/**
 * The event types the machine accepts next, by state (a guarded one, such as
 * an appended artifact chunk, may still be refused for its content).
 */
export const nextEvents = (s: TaskSnapshot): ReadonlyArray<TaskEvent["type"]> =>
  Object.keys((taskMachine.states as Record<string, { on?: object }>)[s.state]?.on ?? {}) as Array<TaskEvent["type"]>

/** Fold one fact if the machine allows it now (one judgement, one transition); undefined if it does not. */
export const apply = (s: TaskSnapshot, event: TaskEvent): TaskSnapshot | undefined => {
  const before = toSnapshot(s)
  return before.can(event) ? step(s, before, event) : undefined
}

/** Fold one fact. Throws on an illegal fact: callers check `canApply` first. */
export const evolve = (s: TaskSnapshot, event: TaskEvent): TaskSnapshot => {
  const before = toSnapshot(s)
  if (!before.can(event)) {
    throw new Error(`illegal event ${event.type} in state ${s.state} at version ${s.version}`)
  }
  return step(s, before, event)
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
  inert = { self, system: self.system, id: "", sessionId: "", defer: nothing, logger: nothing, stopChild: nothing, emit: nothing, actionExecutor: nothing }
  return inert
}

/** Fold one fact the machine (in `before`, the machine snapshot of `s`) already allowed. */
const step = (s: TaskSnapshot, before: TaskMachineSnapshot, event: TaskEvent): TaskSnapshot => {
  const after = taskMachine.transition(before, event, inertScope())
  const version = s.version + 1
  const base: TaskSnapshot = {
    ...s,
    version,
    state: after.value as MachineStateName,
    machine: after.context,
    task: TaskView.evolve(s.task, event)
  }
  const next =
    event.type === "TaskSubmitted"
      ? { ...base, tenant: event.tenant, owner: event.owner, createdAt: event.at, turnInput: event.message }
      : event.type === "InputProvided"
        ? { ...base, turnInput: event.message }
        : base
  machineOf.set(next, after)
  return next
}

export const fold = (events: Iterable<TaskEvent>, from: TaskSnapshot = initialState): TaskSnapshot => {
  let s = from
  for (const e of events) s = evolve(s, e)
  return s
}

/** Messages recorded on a task name its task and context (the proto requires it of agent messages). */
const stamp = (s: TaskSnapshot, message: Message): Message =>
  s.task === undefined ? message : { ...message, taskId: s.task.id, contextId: s.task.contextId }

const toEvent = (s: TaskSnapshot, command: Command, at: string): TaskEvent => {
  switch (command.type) {
    case "Submit": {
      const message = { ...command.message, taskId: command.taskId, contextId: command.contextId }
      const { taskId, contextId, tenant, owner } = command
      return { type: "TaskSubmitted", at, taskId, contextId, tenant, owner, message }
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
      return { type: "InputProvided", at, message: stamp(s, command.message) }
    case "Requeue":
      return { type: "TaskRequeued", at, reason: command.reason }
    case "Complete":
      return command.message === undefined
        ? { type: "TaskCompleted", at }
        : { type: "TaskCompleted", at, message: stamp(s, command.message) }
    case "Fail":
      return { type: "TaskFailed", at, reason: command.reason, message: stamp(s, command.message) }
    case "Cancel":
      return command.reason === undefined ? { type: "TaskCanceled", at } : { type: "TaskCanceled", at, reason: command.reason }
    case "Reject":
      return { type: "TaskRejected", at, reason: command.reason, message: stamp(s, command.message) }
  }
}

export const decide = (s: TaskSnapshot, command: Command, at: string): Decision => {
  if (s.state !== "NEW" && isTerminal(s.state)) {
    return { ok: false, refusal: { _tag: "TaskIsTerminal", state: s.state } }
  }
  const event = toEvent(s, command, at)
  // The machine judges the fact once, and the same machine snapshot folds it.
  const before = toSnapshot(s)
  if (!before.can(event)) {
    const detail =
      event.type === "ArtifactAdded" && event.append
        ? `no open artifact ${event.artifact.artifactId} to append to`
        : `${event.type} is not allowed in ${s.state}`
    return { ok: false, refusal: { _tag: "IllegalTransition", state: s.state, event: event.type, detail } }
  }
  return { ok: true, events: [event], state: step(s, before, event) }
}

/**
 * Several commands as one decision, each judged on the state the ones before
 * it leave (a turn's start with its first emission): all their events, or
 * the first refusal and none.
 */
export const decideAll = (s: TaskSnapshot, commands: ReadonlyArray<Command>, at: string): Decision => {
  const events: Array<TaskEvent> = []
  let current = s
  for (const command of commands) {
    const decision = decide(current, command, at)
    if (!decision.ok) return decision
    events.push(...decision.events)
    current = decision.state
  }
  return { ok: true, events, state: current }
}
