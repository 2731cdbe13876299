import { Effect, Either, type Schema } from "effect"
import { isTerminal, type TaskState } from "../domain/TaskState.js"
import { type EngineError, StoreFailure, TaskNotFound } from "../engine/errors.js"
import type { Feed, FollowSink } from "../engine/Follower.js"
import { type Caller, type SendInput, TaskEngine, type WatchItem } from "../engine/TaskEngine.js"
import type { TaskSnapshot } from "../domain/Task.js"
import { A2AError, Errors, invalidParams } from "../protocol/errors.js"
import { decodeToken, encodeToken } from "../protocol/pageToken.js"
import { presentTask, streamResponseFor } from "../protocol/present.js"
import type { ListPage, ListQuery } from "../projections/TaskReadModel.js"
import * as P from "../protocol/schema.js"
import { toA2AError } from "./engineErrors.js"
import type { StreamSink } from "./LiveStreams.js"
import type { SseEvent } from "./Sse.js"
import type { PushConfig, PushFormat } from "../push/PushConfig.js"
import { PushConfigs } from "../push/PushConfigs.js"

/**
 * The A2A methods over the engine, independent of the binding: each takes
 * decoded-JSON params and returns a result object or a stream of events.
 * Errors are A2AErrors naming what went wrong.
 */
export type MethodResult =
  | { readonly _tag: "Json"; readonly result: unknown }
  /**
   * A stream: `open` starts it into the sink the binding made (an error before it starts is answered as
   * a plain error, not as a stream) and hands back what feeds it, if anything still does.
   */
  | { readonly _tag: "Stream"; readonly open: (sink: StreamSink) => Effect.Effect<Feed | undefined, A2AError, TaskEngine> }

export interface CallContext {
  /** The Last-Event-ID header, when a stream is being resumed. */
  readonly lastEventId?: string
  /** The protocol version the client speaks (v0.3 methods are translated onto these). */
  readonly protocol: PushFormat
  /** The authenticated principal ("" when authentication is off). */
  readonly principal: string
}

/** What a caller bound to other tenants gets for a request in this one: what a tenant with nothing in it answers. */
export const foreignTenant = (method: string, params: Record<string, unknown>): Effect.Effect<MethodResult, A2AError> => {
  const message = params.message as Record<string, unknown> | undefined
  const taskId = [params.id, params.taskId, message?.taskId].find((v): v is string => typeof v === "string" && v !== "")
  if (method === "ListTasks") {
    return Effect.succeed(json({ tasks: [], nextPageToken: "", pageSize: typeof params.pageSize === "number" ? params.pageSize : 50, totalSize: 0 }))
  }
  if (taskId !== undefined) return Effect.fail(toA2AError(new TaskNotFound({ taskId })))
  return Effect.fail(invalidParams("tenant", `this credential may not act in tenant ${JSON.stringify(params.tenant ?? "")}`))
}

/** The caller scope of a request: its tenant field and the authenticated principal. */
const callerOf = (req: { readonly tenant?: string | undefined }, ctx: CallContext): Caller => ({
  tenant: req.tenant ?? "",
  principal: ctx.principal
})

/** Params checked by `schema`: a wrong field is an A2AError naming it. */
export const decode = <A, I>(schema: Schema.Schema<A, I>, params: unknown) =>
  Either.match(P.decodeParams(schema, params), { onLeft: Effect.fail, onRight: Effect.succeed })

export const engineCall = <A, R>(effect: Effect.Effect<A, EngineError, R>) => Effect.mapError(effect, toA2AError)

const json = (result: unknown): MethodResult => ({ _tag: "Json", result })

// `shared`: every stream sending this item sends the same bytes, encoded once (LiveStreams).
const itemEvent = (item: WatchItem, replayed = false): SseEvent =>
  item._tag === "Snapshot"
    ? {
        id: item.version,
        data: { task: replayed ? markReplayed(presentTask(item.task)) : presentTask(item.task) },
        shared: `task ${item.task.id} ${item.version}${replayed ? " replayed" : ""}`
      }
    : {
        id: item.committed.version,
        data: streamResponseFor(item.committed.taskId, item.committed.contextId, item.committed.event),
        shared: item.committed.event
      }

/** The engine's follower writing into a binding's stream. */
const followInto = (sink: StreamSink, replayed = false): FollowSink => ({
  item: (item) => sink.item(itemEvent(item, replayed)),
  end: sink.end,
  fail: (error) => sink.fail(toA2AError(error instanceof StoreFailure ? error : new StoreFailure({ cause: error })))
})

/**
 * The metadata key saying "this answer is a replay": the message's messageId
 * was already accepted, so this is its first task and nothing new was done
 * (docs/protocol.md, Idempotency).
 */
const replayedKey = "a2a-ledger/replayed"

const markReplayed = (task: Record<string, unknown>) => ({
  ...task,
  metadata: { ...(task.metadata as Record<string, unknown> | undefined), [replayedKey]: true }
})

/** SendMessage's inline push config, checked and given an id, ready to be stored with the task. */
const inlinePushConfig = (req: typeof P.SendMessageRequest.Type, ctx: CallContext) => {
  const inline = req.configuration?.taskPushNotificationConfig
  if (inline === undefined) return Effect.succeed({})
  const { tenant: _tenant, taskId: _taskId, ...input } = inline
  return Effect.flatMap(PushConfigs, (push) =>
    Effect.map(engineCall(push.prepare({ ...input, format: ctx.protocol }, "configuration.taskPushNotificationConfig.")), (pushConfig) => ({
      pushConfig
    }))
  )
}

/** What the engine is asked to send: the message, from whom, with the push config sent along. */
const sendInput = (req: typeof P.SendMessageRequest.Type, ctx: CallContext) =>
  Effect.map(inlinePushConfig(req, ctx), (push) => ({ caller: callerOf(req, ctx), message: P.toMessage(req.message), ...push }))

/** Send the request's message; `settle`: and wait until its task settles (a blocking send). */
const send = (engine: TaskEngine["Type"], req: typeof P.SendMessageRequest.Type, ctx: CallContext, settle = false) =>
  Effect.flatMap(sendInput(req, ctx), (input) => engineCall(settle ? engine.sendAndSettle(input) : engine.send(input)))

const sendMessage = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const engine = yield* TaskEngine
  const req = yield* decode(P.SendMessageRequest, params)
  const returnImmediately = req.configuration?.returnImmediately === true
  const outcome = yield* send(engine, req, ctx, !returnImmediately)
  if (outcome._tag === "Message") return json({ message: outcome.message })
  const historyLength = req.configuration?.historyLength
  // A repeated message sent with returnImmediately gets its task as it is now, as a GetTask would show it.
  const now = returnImmediately && outcome.duplicate ? yield* engineCall(engine.get(outcome.snapshot.task.id, callerOf(req, ctx))) : outcome.snapshot
  const task = presentTask(now.task, { historyLength })
  return json({ task: outcome.duplicate ? markReplayed(task) : task })
})

// A task stream closes at a terminal state and when the agent asks for input (a2a-js does
// the same); it stays open through AUTH_REQUIRED, as spec §7.6.1 recommends.
const streamStopsAt = (s: TaskState) => isTerminal(s) || s === "TASK_STATE_INPUT_REQUIRED"

const sendStreamingMessage = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const engine = yield* TaskEngine
  const req = yield* decode(P.SendMessageRequest, params)
  // Held only until the stream opens: an open stream keeps nothing of its request.
  let pending: SendInput | undefined = yield* sendInput(req, ctx)
  // (No generator here: a generator function made per request costs V8 a hidden class per request.)
  const open = (sink: StreamSink) =>
    Effect.suspend(() => {
      const input = pending!
      pending = undefined
      return Effect.flatMap(engineCall(engine.sendAndFollow(input, streamStopsAt, followInto(sink))), (sent) => {
        const outcome = sent.outcome
        if (outcome._tag === "Message") {
          sink.item({ data: { message: outcome.message } })
          sink.end()
          return Effect.succeed(undefined)
        }
        if (sent.feed !== undefined) return Effect.succeed(sent.feed)
        // A repeated message: its task from the first send on, from the log.
        return engineCall(
          engine.follow(
            outcome.snapshot.task.id,
            { stopAt: streamStopsAt, initial: { version: outcome.snapshot.version, task: outcome.snapshot.task } },
            followInto(sink, outcome.duplicate)
          )
        )
      })
    })
  return { _tag: "Stream", open } satisfies MethodResult
})

/** `Last-Event-ID`: a decimal task version, as the `id:` of our events (no `1e3`, `0x10`, `1.5` or sign). */
const parseLastEventId = (raw: string | undefined) => {
  if (raw === undefined || raw.trim() === "") return Effect.succeed(undefined)
  const text = raw.trim()
  const n = Number(text)
  return /^\d+$/.test(text) && Number.isSafeInteger(n)
    ? Effect.succeed(n)
    : Effect.fail(
        invalidParams(
          "Last-Event-ID",
          `must be the id of an event this stream sent: a task version in decimal digits (got ${JSON.stringify(text.slice(0, 40))})`
        )
      )
}

const subscribeToTask = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const engine = yield* TaskEngine
  const req = yield* decode(P.SubscribeToTaskRequest, params)
  const afterVersion = yield* parseLastEventId(ctx.lastEventId)
  const current = yield* engineCall(engine.get(req.id, callerOf(req, ctx)))
  const state = current.task.status.state
  // A cursor beyond the task's newest event was never sent by us: resuming from it would replay
  // what the client claims to have, or silently skip what it lacks.
  if (afterVersion !== undefined && afterVersion > current.version) {
    return yield* Effect.fail(
      invalidParams(
        "Last-Event-ID",
        `is ${afterVersion}, but task ${req.id} has only reached event ${current.version}; resume from an id this stream sent`
      )
    )
  }
  // A terminal task has nothing more to stream (spec §3.1.6), unless a resuming client missed its last events.
  if (isTerminal(state) && (afterVersion === undefined || afterVersion >= current.version)) {
    return yield* Effect.fail(
      new A2AError(Errors.UnsupportedOperation, `Task ${req.id} is ${state}; there is nothing to subscribe to (use GetTask)`, {
        taskId: req.id
      })
    )
  }
  // Held only until the stream opens: an open stream keeps nothing of the task as it was read.
  let known: TaskSnapshot | undefined = current
  const open = (sink: StreamSink) => {
    const from = known!
    known = undefined
    return engineCall(
      engine.follow(req.id, { stopAt: isTerminal, known: from, ...(afterVersion !== undefined ? { afterVersion } : {}) }, followInto(sink))
    )
  }
  return { _tag: "Stream", open } satisfies MethodResult
})

const getTask = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const engine = yield* TaskEngine
  const req = yield* decode(P.GetTaskRequest, params)
  const s = yield* engineCall(engine.get(req.id, callerOf(req, ctx)))
  return json(presentTask(s.task, { historyLength: req.historyLength }))
})

/** The engine's query for a ListTasks request by `caller`: its filters, and where its page token resumes. */
export const listQuery = (req: typeof P.ListTasksRequest.Type, caller: Caller) =>
  Effect.map(req.pageToken !== undefined && req.pageToken !== "" ? decodeToken(req.pageToken, 2) : Effect.succeed(undefined), (key) => {
    const after = key !== undefined ? { timestamp: key[0]!, taskId: key[1]! } : undefined
    const state = P.statusFilter(req.status)
    return {
      tenant: caller.tenant,
      owner: caller.principal,
      pageSize: req.pageSize ?? defaultPageSize,
      ...(req.contextId !== undefined && req.contextId !== "" ? { contextId: req.contextId } : {}),
      ...(state !== undefined ? { state } : {}),
      ...(req.statusTimestampAfter !== undefined ? { statusTimestampAfter: new Date(req.statusTimestampAfter).toISOString() } : {}),
      ...(after !== undefined ? { after } : {})
    } satisfies ListQuery
  })

const defaultPageSize = 50

/** The token that resumes after `page` ("" when it is the last). */
export const nextPageToken = (page: ListPage) => (page.next !== undefined ? encodeToken([page.next.timestamp, page.next.taskId]) : "")

const listTasks = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const engine = yield* TaskEngine
  const req = yield* decode(P.ListTasksRequest, params)
  const page = yield* engineCall(engine.list(yield* listQuery(req, callerOf(req, ctx))))
  const view = { historyLength: req.historyLength, artifacts: req.includeArtifacts === true ? "always" : "omit" } as const
  return json({
    tasks: page.tasks.map((s) => presentTask(s.task, view)),
    nextPageToken: nextPageToken(page),
    pageSize: req.pageSize ?? defaultPageSize,
    totalSize: page.totalSize
  })
})

const cancelTask = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const engine = yield* TaskEngine
  const req = yield* decode(P.CancelTaskRequest, params)
  const s = yield* engineCall(engine.cancel(req.id, callerOf(req, ctx)))
  return json(presentTask(s.task))
})

/** A stored config as the protocol shows it. The credentials are write-only: they never leave the server again. */
const presentConfig = (c: PushConfig) => ({
  ...(c.tenant !== "" ? { tenant: c.tenant } : {}),
  id: c.id,
  taskId: c.taskId,
  url: c.url,
  ...(c.token !== undefined ? { token: c.token } : {}),
  ...(c.authentication !== undefined ? { authentication: { scheme: c.authentication.scheme } } : {})
})

const createPushConfig = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const push = yield* PushConfigs
  const { tenant, taskId, ...input } = yield* decode(P.CreateTaskPushNotificationConfigRequest, params)
  const prepared = yield* engineCall(push.prepare({ ...input, format: ctx.protocol }, ""))
  return json(presentConfig(yield* engineCall(push.create(callerOf({ tenant }, ctx), taskId, prepared))))
})

const getPushConfig = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const push = yield* PushConfigs
  const req = yield* decode(P.TaskPushNotificationConfigRequest, params)
  return json(presentConfig(yield* engineCall(push.get(callerOf(req, ctx), req.taskId, req.id))))
})

const listPushConfigs = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const push = yield* PushConfigs
  const req = yield* decode(P.ListTaskPushNotificationConfigsRequest, params)
  const after = req.pageToken !== undefined && req.pageToken !== "" ? (yield* decodeToken(req.pageToken, 1))[0] : undefined
  const page = yield* engineCall(push.list(callerOf(req, ctx), req.taskId, req.pageSize ?? 100, after))
  return json({ configs: page.configs.map(presentConfig), nextPageToken: page.nextAfter !== undefined ? encodeToken([page.nextAfter]) : "" })
})

const deletePushConfig = Effect.fnUntraced(function* (params: unknown, ctx: CallContext) {
  const push = yield* PushConfigs
  const req = yield* decode(P.TaskPushNotificationConfigRequest, params)
  yield* engineCall(push.remove(callerOf(req, ctx), req.taskId, req.id))
  return json({})
})

type Method = (params: unknown, ctx: CallContext) => Effect.Effect<MethodResult, A2AError, TaskEngine | PushConfigs>

export const methods: Readonly<Record<string, Method>> = {
  SendMessage: sendMessage,
  SendStreamingMessage: sendStreamingMessage,
  SubscribeToTask: subscribeToTask,
  GetTask: getTask,
  ListTasks: listTasks,
  CancelTask: cancelTask,
  CreateTaskPushNotificationConfig: createPushConfig,
  GetTaskPushNotificationConfig: getPushConfig,
  ListTaskPushNotificationConfigs: listPushConfigs,
  DeleteTaskPushNotificationConfig: deletePushConfig,
  // Answered in dispatch.ts (`invoke`), which has the agent, the authenticator and the request's URL it needs.
  GetExtendedAgentCard: () => Effect.dieMessage("GetExtendedAgentCard is answered by dispatch.invoke")
}
