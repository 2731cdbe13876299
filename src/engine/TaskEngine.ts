import { Cause, Clock, Context, Duration, Effect, Exit, Layer, Option, type Queue, Runtime, Stream } from "effect"
import { randomUUID } from "node:crypto"
import { extend } from "../domain/extend.js"
import type { Message } from "../domain/Message.js"
import { type Command, evolve, foldTask, initialState, type TaskSnapshot } from "../domain/Task.js"
import { currentTraceparent } from "../observability/Tracing.js"
import { isInterrupted, isTerminal, stateAfter, type TaskState } from "../domain/TaskState.js"
import { isJournalEvent, type TaskEvent, type VersionedEvent } from "../domain/TaskEvent.js"
import type { Task } from "../domain/TaskView.js"
import { Durability } from "../eventlog/Durability.js"
import { EventLog } from "../eventlog/EventLog.js"
import { maxConfigsPerTask } from "../push/PushConfig.js"
import { PushStore } from "../push/PushStore.js"
import { type AcceptedMessage, MessageIndex } from "../projections/MessageIndex.js"
import { type ListPage, type ListQuery, TaskReadModel } from "../projections/TaskReadModel.js"
import { CurrentAgent, EngineConfig } from "./EngineConfig.js"
import {
  DuplicateMessage,
  InvalidParams,
  type LeaseLost,
  type RateLimited,
  StoreFailure,
  TaskNotCancelable,
  TaskNotFound,
  UnsupportedOperation
} from "./errors.js"
import { FlowControl, priorityKey } from "./FlowControl.js"
import { type Committed, EventHub } from "./EventHub.js"
import { type Feed, Follower, type FollowSink } from "./Follower.js"
import { Settler } from "./Settler.js"
import { Supervisor } from "./Supervisor.js"
import { RemoteAgents } from "./RemoteAgents.js"
import { journalOf } from "./steps.js"
import { timeOrderedId } from "./timeOrderedId.js"
import { CommandRefused, type CommitOptions, type StoreHealth, TaskWriter } from "./TaskWriter.js"

/**
 * Who is asking: the tenant the request names and the authenticated principal
 * ("" without authentication). A task is visible only to its own caller scope.
 */
export interface Caller {
  readonly tenant: string
  readonly principal: string
}

export const anonymous: Caller = { tenant: "", principal: "" }

export interface SendInput {
  readonly caller: Caller
  readonly message: Message
  /** A webhook registered with the message; stored with the task's first new event. */
  readonly pushConfig?: CommitOptions["pushConfig"]
}

/**
 * What a SendMessage led to: a direct Message, or a task as the send committed
 * it. A message whose messageId the task already accepted appends nothing:
 * `duplicate`, and the task as that first send committed it, so a repeated
 * send waits for or streams exactly what the first one did.
 */
export type SendOutcome =
  | { readonly _tag: "Message"; readonly message: Message }
  | { readonly _tag: "Task"; readonly snapshot: TaskSnapshot; readonly duplicate: boolean }

/** One item of a task's live stream: first the Task (or the replayed facts), then each new fact. */
export type WatchItem =
  | { readonly _tag: "Snapshot"; readonly version: number; readonly task: Task }
  | { readonly _tag: "Event"; readonly committed: Committed }

export interface WatchOptions {
  /** Replay facts after this version instead of starting with a snapshot (Last-Event-ID). */
  readonly afterVersion?: number
  /** Start with this earlier snapshot (the task as a send committed it), then replay every fact after it. */
  readonly initial?: { readonly version: number; readonly task: Task }
  /** The stream ends after the first item that leaves the task in one of these states. */
  readonly stopAt: (state: TaskState) => boolean
}

export interface FollowOptions extends WatchOptions {
  /** The task as the caller just read it: the stream starts from it, reading only the task's version again. */
  readonly known?: TaskSnapshot
}

export const settled = (state: TaskState) => isTerminal(state) || isInterrupted(state)

const isSettledBy = (event: Committed["event"]) => {
  const s = stateAfter(event)
  return s !== undefined && settled(s)
}

const itemState = (item: WatchItem): TaskState | undefined => (item._tag === "Snapshot" ? item.task.status.state : stateAfter(item.committed.event))

/**
 * The engine's façade: everything the protocol layer (and an embedding
 * application) does to tasks goes through here.
 */
export class TaskEngine extends Context.Tag("a2a-ledger/TaskEngine")<
  TaskEngine,
  {
    readonly send: (input: SendInput) => Effect.Effect<SendOutcome, TaskNotFound | UnsupportedOperation | InvalidParams | StoreFailure | RateLimited>
    /**
     * A blocking send: the outcome of `send`, with the task as it settled (terminal or interrupted)
     * after the message, instead of as the message left it.
     */
    readonly sendAndSettle: (
      input: SendInput
    ) => Effect.Effect<SendOutcome, TaskNotFound | UnsupportedOperation | InvalidParams | StoreFailure | RateLimited>
    readonly get: (taskId: string, caller: Caller) => Effect.Effect<TaskSnapshot, TaskNotFound | StoreFailure>
    readonly list: (query: ListQuery) => Effect.Effect<ListPage, StoreFailure>
    readonly cancel: (taskId: string, caller: Caller) => Effect.Effect<TaskSnapshot, TaskNotFound | TaskNotCancelable | StoreFailure>
    readonly watch: (taskId: string, options: WatchOptions) => Stream.Stream<WatchItem, StoreFailure>
    /**
     * `watch` for a transport that writes the items out itself: they go to `sink` by callback, with
     * no fiber or queue per stream, and a reader that falls behind is caught up from the log (Follower).
     * Ends at once (`sink.end`) for a missing task.
     */
    readonly follow: (taskId: string, options: FollowOptions, sink: FollowSink) => Effect.Effect<Feed, StoreFailure>
    /**
     * A streaming send: the outcome of `send` and, for a new message to a task, the feed of that task from
     * the send on into `sink` (as `follow` with `initial` would give it, without reading the store).
     */
    readonly sendAndFollow: (
      input: SendInput,
      stopAt: WatchOptions["stopAt"],
      sink: FollowSink
    ) => Effect.Effect<
      { readonly outcome: SendOutcome; readonly feed?: Feed },
      TaskNotFound | UnsupportedOperation | InvalidParams | StoreFailure | RateLimited
    >
    /** Wait until the task is terminal or interrupted after `afterVersion`, then return it. */
    readonly awaitSettled: (taskId: string, afterVersion: number) => Effect.Effect<TaskSnapshot, TaskNotFound | StoreFailure>
    /** Whether the store takes commits (as the writer last found it) and answers a query now: readiness. */
    readonly readiness: Effect.Effect<StoreHealth>
  }
>() {}

/** What a message says, whatever task and context it was stamped with and whatever its keys' order. */
const contentOf = (message: Message): string => {
  const { taskId: _task, contextId: _context, ...content } = message
  return canonical(content)
}
const canonical = (value: unknown): string =>
  Array.isArray(value)
    ? `[${value.map(canonical).join(",")}]`
    : value !== null && typeof value === "object"
      ? `{${Object.keys(value)
          .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
          .join(",")}}`
      : JSON.stringify(value)
/** Whether a repeated messageId carries the message it was first accepted with. */
const sameContent = (original: Message, repeat: Message) => contentOf(original) === contentOf(repeat)

type RuledOut = CommandRefused | TaskNotFound | LeaseLost | DuplicateMessage

/** A commit whose refusal the caller already ruled out (under the task's lock): if it happens anyway, it is a store fault. */
const isRuledOut = (e: unknown): e is RuledOut =>
  e instanceof CommandRefused || ["TaskNotFound", "LeaseLost", "DuplicateMessage"].includes((e as { _tag?: string })._tag ?? "")

const mustCommit = <A, E, R>(commit: Effect.Effect<A, E | RuledOut, R>) =>
  Effect.catchIf(commit, isRuledOut, (cause) => Effect.fail(new StoreFailure({ cause })))

export const make = Effect.gen(function* () {
  const agent = yield* CurrentAgent
  const config = yield* EngineConfig
  const writer = yield* TaskWriter
  const readModel = yield* TaskReadModel
  const log = yield* EventLog
  const hub = yield* EventHub
  const supervisor = yield* Supervisor
  const remote = yield* RemoteAgents
  const flow = yield* FlowControl
  const messages = yield* MessageIndex
  const push = yield* PushStore
  const durability = yield* Durability

  /**
   * A read of the store: its failure is a StoreFailure, and so is no answer within the store timeout on
   * PostgreSQL. (A SQLite read is one synchronous call on the read connection, which WAL never blocks:
   * there is nothing to time out, and a timer per read would only cost.)
   */
  const store = <A, E, R>(effect: Effect.Effect<A, E, R>, shown = true) => {
    // What is read is shown once it is on disk (Durability): a read never shows what a power cut could take back.
    // (A read only decided on, never shown, need not wait.)
    const failed = Effect.catchAll(shown ? Effect.zipLeft(effect, durability.settled) : effect, (cause) =>
      Effect.fail(cause instanceof StoreFailure ? cause : new StoreFailure({ cause }))
    )
    return config.sharedStore
      ? Effect.timeoutFail(failed, {
          duration: Duration.millis(config.storeTimeoutMs),
          onTimeout: () => new StoreFailure({ cause: "timeout", reason: `the store did not answer within ${config.storeTimeoutMs} ms` })
        })
      : failed
  }

  /** A snapshot a commit answered with, whole (a big task's is its head only). */
  const whole = (snapshot: TaskSnapshot) => (snapshot.detached === true ? store(readModel.whole(snapshot)) : Effect.succeed(snapshot))

  const loadOrNotFound = (taskId: string) =>
    store(readModel.get(taskId)).pipe(Effect.flatMap((s) => (Option.isSome(s) ? Effect.succeed(s.value) : Effect.fail(new TaskNotFound({ taskId })))))

  /** Another tenant's or another principal's task answers exactly as a missing one, and takes the same work. */
  const get = (taskId: string, caller: Caller) =>
    store(readModel.getVisible(taskId, { tenant: caller.tenant, owner: caller.principal })).pipe(
      Effect.flatMap((s) => (Option.isSome(s) ? Effect.succeed(s.value) : Effect.fail(new TaskNotFound({ taskId }))))
    )

  /** The task as it was right after it accepted `accepted`'s message: a repeated send's answer. */
  const replayAccepted = Effect.fnUntraced(function* (accepted: AcceptedMessage, caller: Caller, message: Message) {
    yield* get(accepted.taskId, caller)
    const events = yield* store(log.read(accepted.taskId, { toVersion: accepted.version }))
    // An idempotency key, not a message id that happens to repeat: the same id with other content is the
    // client's mistake, and it is told so rather than handed an unrelated task (docs/protocol.md).
    const original = events[events.length - 1]?.event
    if (original !== undefined && "message" in original && original.message !== undefined && !sameContent(original.message, message)) {
      return yield* new InvalidParams({
        field: "message.messageId",
        message: `messageId ${message.messageId} was already used for another message (task ${accepted.taskId}); every message needs its own messageId`
      })
    }
    return { _tag: "Task", snapshot: foldTask(events.map((e) => e.event)), duplicate: true } as const
  })

  const keyOf = (caller: Caller, message: Message) => ({ tenant: caller.tenant, owner: caller.principal, messageId: message.messageId })
  const idempotent = config.idempotency === "on"
  /** The message's earlier acceptance, if idempotency is on and there was one. */
  const acceptedBefore = (caller: Caller, message: Message) =>
    // Not shown: a message found is answered by replaying its task, which waits for the disk as every read does.
    idempotent
      ? Effect.flatMap(Clock.currentTimeMillis, (now) => store(messages.find(keyOf(caller, message), now - config.idempotencyWindowMs), false))
      : Effect.succeed(Option.none<AcceptedMessage>())

  /** A duplicate that raced past the look-up and lost at the writer answers like one found by it. */
  const orAccepted = <A, E, R>(caller: Caller, message: Message, commit: Effect.Effect<A, E | DuplicateMessage, R>) =>
    Effect.catchIf(
      commit,
      (e): e is DuplicateMessage => e instanceof DuplicateMessage,
      (e) => replayAccepted(e, caller, message)
    )

  const continueTask = (caller: Caller, message: Message, taskId: string, options: CommitOptions, traceparent: string | undefined) =>
    writer.withTaskLock(taskId)(
      Effect.gen(function* () {
        const current = yield* get(taskId, caller)
        const accepted = yield* acceptedBefore(caller, message)
        if (Option.isSome(accepted)) {
          if (accepted.value.taskId !== taskId) {
            return yield* new InvalidParams({
              field: "message.messageId",
              message: `messageId ${message.messageId} was already sent to task ${accepted.value.taskId}, not ${taskId}; every message needs its own messageId`
            })
          }
          return yield* replayAccepted(accepted.value, caller, message)
        }
        const task = current.task
        if (message.contextId !== undefined && message.contextId !== task.contextId) {
          return yield* new InvalidParams({
            field: "message.contextId",
            message: `message.contextId ${message.contextId} does not match task ${taskId}'s contextId ${task.contextId}`
          })
        }
        // An inline push config counts toward the task's limit, as a created one does (both under the task's lock).
        if (options.pushConfig !== undefined && !(yield* store(push.hasRoomFor(taskId, options.pushConfig.id)))) {
          return yield* new InvalidParams({
            field: "configuration.taskPushNotificationConfig",
            message: `task ${taskId} already has ${maxConfigsPerTask} push notification configs; delete one first`
          })
        }
        const state = task.status.state
        if (isTerminal(state)) {
          return yield* new UnsupportedOperation({
            taskId,
            message: `Task ${taskId} is ${state} and cannot accept messages; send a new message with contextId ${task.contextId} instead`
          })
        }
        if (!isInterrupted(state)) {
          return yield* new UnsupportedOperation({
            taskId,
            message: `Task ${taskId} is ${state}: it accepts a message only when it asks for one (TASK_STATE_INPUT_REQUIRED or TASK_STATE_AUTH_REQUIRED)`
          })
        }
        const provide: Command = { type: "ProvideInput", message, ...(traceparent !== undefined ? { traceparent } : {}) }
        const result = yield* writer.commitHeld(taskId, provide, options).pipe(
          Effect.catchIf(
            (e): e is CommandRefused => e instanceof CommandRefused,
            (e) => Effect.fail(new UnsupportedOperation({ taskId, message: e.message }))
          ),
          Effect.map((r) => ({ _tag: "Task", snapshot: r.snapshot, duplicate: false }) as const),
          (commit) => orAccepted(caller, message, commit),
          mustCommit
        )
        if (result.duplicate) return result
        yield* supervisor.enqueue(taskId)
        // A big task's commit answers with its head: the caller is shown the whole task.
        return result.snapshot.detached === true ? extend(result, { snapshot: yield* whole(result.snapshot) }) : result
      })
    )

  /**
   * Send; a message that starts a task starts it as `newTaskId`. With `handOff` (a blocking or streaming send), a new
   * task goes straight to a free worker, and its Submit is committed with the turn's first commit.
   */
  const sendTo = Effect.fnUntraced(function* ({ caller, message, pushConfig }: SendInput, newTaskId: string, handOff = false) {
    const priority = message.metadata?.[priorityKey]
    if (priority !== undefined && !(typeof priority === "number" && Number.isInteger(priority) && Math.abs(priority) <= 1000)) {
      return yield* new InvalidParams({
        field: `message.metadata.${priorityKey}`,
        message: "must be an integer from -1000 to 1000 (higher runs first)"
      })
    }
    const options: CommitOptions = { duplicates: idempotent ? "refuse" : "accept", ...(pushConfig !== undefined ? { pushConfig } : {}) }
    // The trace this send is part of (tracing on), kept with the task: its turn's spans join it, after a restart too.
    const traceparent = yield* currentTraceparent
    if (message.taskId !== undefined && message.taskId !== "") {
      return yield* continueTask(caller, message, message.taskId, options, traceparent)
    }
    // Idempotency: a message this caller already sent gets its task back, and nothing new is written.
    // The writer refuses a taken key in the commit itself (DuplicateMessage, answered as a repeat), so
    // a look-up first is needed only before an agent's direct reply, which writes nothing to refuse.
    const contextId = message.contextId || timeOrderedId()
    if (agent.reply !== undefined) {
      const accepted = yield* acceptedBefore(caller, message)
      if (Option.isSome(accepted)) return yield* replayAccepted(accepted.value, caller, message)
      const parts = yield* agent.reply(message)
      if (parts !== undefined) {
        const reply: Message = { messageId: randomUUID(), role: "ROLE_AGENT", parts, contextId }
        return { _tag: "Message", message: reply } as const
      }
    }
    // Flow control: the caller may create only so many tasks in a window.
    yield* flow.admitCreation(caller.tenant, caller.principal)
    const taskId = newTaskId
    const submit: Command = {
      type: "Submit",
      taskId,
      contextId,
      tenant: caller.tenant,
      owner: caller.principal,
      message,
      ...(traceparent !== undefined ? { traceparent } : {})
    }
    // The worker's turn starts as soon as the task is committed, while the commit syncs: the caller is
    // answered (and anyone else shown the task) only once it is on disk, and a sync that fails fails
    // the send. The turn's own commits come after it in the log, and are shown after it.
    let synced: Effect.Effect<void, StoreFailure> = Effect.void
    // A send with a push config commits first, so the config's task exists before any delivery is due.
    const handed = handOff && pushConfig === undefined ? yield* supervisor.handOff(taskId, submit, options) : Option.none()
    if (Option.isSome(handed)) {
      // As `orAccepted` then `mustCommit` below, in one step.
      const result = yield* Effect.matchEffect(handed.value.await, {
        onSuccess: (r) => {
          if (r.synced !== undefined) synced = r.synced
          // `submittedBy`: the commit's first fact, the Submit's (a stream starts with the task it left).
          return Effect.succeed({ _tag: "Task", snapshot: r.snapshot, duplicate: false, submittedBy: r.events[0]!.event } as const)
        },
        onFailure: (e) =>
          e instanceof DuplicateMessage
            ? mustCommit(replayAccepted(e, caller, message))
            : isRuledOut(e)
              ? Effect.fail(new StoreFailure({ cause: e }))
              : Effect.fail(e)
      })
      yield* synced
      return result
    }
    const result = yield* writer.commit(taskId, submit, extend(options, { answerAtCommit: true })).pipe(
      Effect.map((r) => {
        if (r.synced !== undefined) synced = r.synced
        return { _tag: "Task", snapshot: r.snapshot, duplicate: false } as const
      }),
      (commit) => orAccepted(caller, message, commit),
      mustCommit
    )
    if (!result.duplicate) yield* supervisor.startOrEnqueue(taskId)
    yield* synced
    return result
  })

  /**
   * A canceled task's delegation that was still waiting (its remote task recorded, the step not) is
   * canceled too (A2A proposal #2119), in the background: the cancel's answer does not wait on a remote.
   */
  const cascade = (canceled: TaskSnapshot) =>
    canceled.machine.steps === undefined
      ? Effect.void
      : log.read(canceled.task.id).pipe(
          Effect.flatMap((events) => {
            const open = journalOf(events.map((e) => e.event)).delegation
            return open === undefined ? Effect.void : remote.cancelLater(open.url, open.remoteTaskId)
          }),
          Effect.catchAll((e) => Effect.logWarning(`task ${canceled.task.id}: its delegations could not be looked up to cancel them`, e))
        )

  const cancel = (taskId: string, caller: Caller) =>
    writer.withTaskLock(taskId)(
      Effect.gen(function* () {
        const current = yield* get(taskId, caller)
        const state = current.task.status.state
        // Cancel is idempotent (spec §3.3.1): a canceled task is returned as it is.
        if (state === "TASK_STATE_CANCELED") return current
        if (isTerminal(state)) return yield* new TaskNotCancelable({ taskId, state })
        // Interrupt and await the worker first, so nothing it would emit can land after CANCELED.
        yield* supervisor.stop(taskId)
        const result = yield* writer.commitHeld(taskId, { type: "Cancel" }).pipe(
          Effect.map((r) => r.snapshot),
          Effect.tap(cascade),
          Effect.flatMap(whole),
          // On a shared store another instance's cancel (or finish) may have landed first.
          Effect.catchIf(
            (e): e is CommandRefused => e instanceof CommandRefused && e.refusal._tag === "TaskIsTerminal",
            () =>
              Effect.flatMap(get(taskId, caller), (now) =>
                now.task.status.state === "TASK_STATE_CANCELED"
                  ? Effect.succeed(now)
                  : Effect.fail(new TaskNotCancelable({ taskId, state: now.task.status.state }))
              )
          ),
          mustCommit
        )
        return result
      })
    )

  const eventItem =
    (contextId: string) =>
    (e: VersionedEvent): WatchItem => ({
      _tag: "Event",
      committed: { taskId: e.taskId, contextId, version: e.version, event: e.event }
    })

  /** The step journal is the agent's bookkeeping: no reader is shown it. */
  const shown = (item: WatchItem) => item._tag !== "Event" || !isJournalEvent(item.committed.event)

  const stopsAt = (stopAt: WatchOptions["stopAt"]) => (item: WatchItem) => {
    const s = itemState(item)
    return s !== undefined && stopAt(s)
  }

  /** The task's events from `live` after version `after`; versions the hub dropped are read from the log. */
  const tailFrom = (live: Queue.Dequeue<Committed>, taskId: string, contextId: string, after: number) => {
    let last = after
    return Stream.fromQueue(live).pipe(
      Stream.filter((c) => c.version > last),
      Stream.mapEffect((c) =>
        c.version === last + 1
          ? Effect.succeed([c] as ReadonlyArray<VersionedEvent>)
          : // Versions were skipped (the hub dropped events a slow reader left unread): refill from the log.
            store(log.read(taskId, { fromVersion: last + 1, toVersion: c.version }))
      ),
      Stream.flattenIterables,
      Stream.tap((c) => Effect.sync(() => (last = c.version))),
      Stream.map(eventItem(contextId))
    )
  }

  const watch = (taskId: string, options: WatchOptions): Stream.Stream<WatchItem, StoreFailure> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        // Subscribe before reading, so nothing committed in between is missed.
        const live = yield* hub.subscribe(taskId)
        const snapshot = yield* store(readModel.get(taskId))
        if (Option.isNone(snapshot)) return Stream.empty
        const current = snapshot.value
        const contextId = current.task.contextId
        const toItem = eventItem(contextId)
        const replayAfter = options.initial?.version ?? options.afterVersion
        const replayed =
          replayAfter === undefined ? [] : (yield* store(log.read(taskId, { fromVersion: replayAfter + 1, toVersion: current.version }))).map(toItem)
        const head: ReadonlyArray<WatchItem> =
          options.initial !== undefined
            ? [{ _tag: "Snapshot", version: options.initial.version, task: options.initial.task }, ...replayed]
            : options.afterVersion !== undefined
              ? replayed
              : [{ _tag: "Snapshot", version: current.version, task: current.task }]
        const stops = stopsAt(options.stopAt)
        // Already at a stopping state: the head is all there is.
        if (options.stopAt(current.task.status.state)) return Stream.fromIterable(head).pipe(Stream.filter(shown), Stream.takeUntil(stops))
        // Never below a resume point: whatever a client says it has is not sent again.
        const tail = tailFrom(live, taskId, contextId, Math.max(current.version, options.afterVersion ?? 0))
        return Stream.concat(Stream.fromIterable(head), tail).pipe(Stream.filter(shown), Stream.takeUntil(stops))
      })
    )

  const runtime = yield* Effect.runtime<never>()
  const readLogOf = (taskId: string) => (from: number, to: number) =>
    Runtime.runPromiseExit(runtime)(store(log.read(taskId, { fromVersion: from, toVersion: to }))).then((exit) =>
      Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause))
    )

  /** A follower of `taskId`, listening from now on (so nothing committed after this is missed). */
  const listenWith = (taskId: string, stopAt: WatchOptions["stopAt"], sink: FollowSink) => {
    const follower = new Follower(sink, stopAt, readLogOf(taskId))
    follower.listening(hub.listen(taskId, follower.hear))
    return follower
  }

  const follow = (taskId: string, options: FollowOptions, sink: FollowSink) =>
    Effect.suspend(() => {
      const follower = listenWith(taskId, options.stopAt, sink)
      // Listening already: whatever commits after this read is heard, and what committed before it is read.
      const known = options.known
      const read =
        known !== undefined
          ? Effect.map(
              store(readModel.version(taskId)),
              Option.map((latest) => ({ current: known, latest }))
            )
          : Effect.map(
              store(readModel.get(taskId)),
              Option.map((current) => ({ current, latest: current.version }))
            )
      return read.pipe(
        Effect.map((found): Feed => {
          if (Option.isNone(found)) {
            follower.close()
            sink.end()
            return follower
          }
          const { current, latest } = found.value
          const head: ReadonlyArray<WatchItem> =
            options.initial !== undefined
              ? [{ _tag: "Snapshot", version: options.initial.version, task: options.initial.task }]
              : options.afterVersion !== undefined
                ? []
                : [{ _tag: "Snapshot", version: current.version, task: current.task }]
          // Facts after the head (a replay, or what committed since `known` was read) come from the log,
          // a page at a time, as a catch-up does.
          const after = options.initial?.version ?? options.afterVersion ?? current.version
          follower.start(current.task.contextId, head, after, after < latest)
          return follower
        }),
        Effect.onError(() => Effect.sync(() => follower.close()))
      )
    })

  const sendAndFollow = (input: SendInput, stopAt: WatchOptions["stopAt"], sink: FollowSink) =>
    Effect.suspend(() => {
      const taskId = input.message.taskId || timeOrderedId()
      const follower = listenWith(taskId, stopAt, sink)
      return sendTo(input, taskId, true).pipe(
        Effect.map((outcome): { readonly outcome: SendOutcome; readonly feed?: Feed } => {
          if (outcome._tag === "Message" || outcome.duplicate || outcome.snapshot.task.id !== taskId) {
            follower.close()
            return { outcome }
          }
          // A task handed to a worker may have been recorded with more than its Submit: the stream still
          // starts with the task as submitted, and the rest of that commit follows as events.
          const submittedBy = (outcome as { readonly submittedBy?: TaskEvent }).submittedBy
          const snapshot = submittedBy === undefined ? outcome.snapshot : evolve(initialState, submittedBy)
          follower.start(snapshot.task.contextId, [{ _tag: "Snapshot", version: snapshot.version, task: snapshot.task }], snapshot.version)
          return { outcome: { _tag: "Task", snapshot, duplicate: false }, feed: follower }
        }),
        Effect.onError(() => Effect.sync(() => follower.close()))
      )
    })

  /** Did anything between two versions settle the task? The log says. */
  const settledBetween = (taskId: string, from: number, to: number) =>
    from > to
      ? Effect.succeed(false)
      : store(log.read(taskId, { fromVersion: from, toVersion: to })).pipe(Effect.map((es) => es.some((e) => isSettledBy(e.event))))

  /** Wait on `settler` (told the version to count from) until the task settles; the task as it settled. */
  const settleWith = (settler: Settler, taskId: string): Effect.Effect<TaskSnapshot, TaskNotFound | StoreFailure> =>
    Effect.flatMap(settler.wait, (found) => {
      if (found._tag === "Settled") {
        const c = found.committed
        // A big task's commit carries its head only: read the whole task then.
        return c.snapshot?.version === c.version && c.snapshot.detached !== true ? Effect.succeed(c.snapshot) : loadOrNotFound(taskId)
      }
      // Versions were not heard: the log says whether one of them settled the task.
      return Effect.flatMap(settledBetween(taskId, found.from, found.to), (gapSettled) => {
        if (gapSettled) return loadOrNotFound(taskId)
        settler.after(found.to)
        return settleWith(settler, taskId)
      })
    })

  /** A task's wait, from `afterVersion` on: listen, then look, then wait for the commit that settles it. */
  const awaitSettled = (taskId: string, afterVersion: number) =>
    Effect.suspend(() => {
      const settler = new Settler(isSettledBy)
      const unlisten = hub.listen(taskId, settler.hear)
      return Effect.gen(function* () {
        const now = yield* store(readModel.get(taskId))
        if (Option.isNone(now)) return yield* new TaskNotFound({ taskId })
        if (yield* settledBetween(taskId, afterVersion + 1, now.value.version)) return yield* loadOrNotFound(taskId)
        settler.after(now.value.version)
        return yield* settleWith(settler, taskId)
      }).pipe(Effect.ensuring(Effect.sync(unlisten)))
    })

  /**
   * A blocking send: it listens to the task's events before its message
   * commits, so every later event reaches its `Settler` and the wait reads
   * nothing from the store. A repeated message (its task committed long
   * ago) waits as `awaitSettled` does.
   */
  const sendAndSettle = (input: SendInput) =>
    Effect.suspend(() => {
      const taskId = input.message.taskId || timeOrderedId()
      const settler = new Settler(isSettledBy)
      const unlisten = hub.listen(taskId, settler.hear)
      return Effect.flatMap(sendTo(input, taskId, true), (outcome): Effect.Effect<SendOutcome, TaskNotFound | StoreFailure> => {
        if (outcome._tag === "Message") return Effect.succeed(outcome)
        const { snapshot, duplicate } = outcome
        if (duplicate || snapshot.task.id !== taskId) {
          return Effect.map(awaitSettled(snapshot.task.id, snapshot.version), (settled) => extend(outcome, { snapshot: settled }))
        }
        // A handed-off task's first commit may have settled it already (an agent that answers at once).
        if (settled(snapshot.task.status.state)) return Effect.succeed(outcome)
        settler.after(snapshot.version)
        return Effect.map(settleWith(settler, taskId), (settled) => extend(outcome, { snapshot: settled }))
      }).pipe(Effect.ensuring(Effect.sync(unlisten)))
    })

  const readiness = Effect.gen(function* () {
    const written = yield* writer.health
    if (!written.ok) return written
    return yield* store(readModel.ping).pipe(
      Effect.as<StoreHealth>({ ok: true }),
      Effect.catchAll((e) => Effect.map(Clock.currentTimeMillis, (since): StoreHealth => ({ ok: false, since, reason: e.description })))
    )
  })

  return TaskEngine.of({
    readiness,
    send: (input) => sendTo(input, timeOrderedId()),
    sendAndSettle,
    follow,
    sendAndFollow,
    get,
    list: (query) => store(readModel.list(query)),
    cancel,
    watch,
    awaitSettled
  })
})

export const layer = Layer.effect(TaskEngine, make)
