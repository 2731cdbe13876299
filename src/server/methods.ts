import { Effect, Either, type Schema, Stream } from "effect"
import { isTerminal } from "../domain/TaskState"
import type { EngineError } from "../engine/errors"
import { TaskEngine, type WatchItem } from "../engine/TaskEngine"
import { A2AError, Errors, invalidParams } from "../protocol/errors"
import { presentTask, streamResponseFor } from "../protocol/present"
import * as P from "../protocol/schema"
import { toA2AError } from "./engineErrors"
import type { SseEvent } from "./Sse"

/**
 * The A2A methods over the engine, independent of the binding: each takes
 * decoded-JSON params and returns a result object or a stream of events.
 * Errors are A2AErrors naming what went wrong.
 */
export type MethodResult =
  | { readonly _tag: "Json"; readonly result: unknown }
  | { readonly _tag: "Stream"; readonly events: Stream.Stream<SseEvent, A2AError> }

export interface CallContext {
  /** The Last-Event-ID header, when a stream is being resumed. */
  readonly lastEventId?: string
}

const decode = <A, I>(schema: Schema.Schema<A, I>, params: unknown) =>
  Either.match(P.decodeParams(schema, params), { onLeft: Effect.fail, onRight: Effect.succeed })

const engineCall = <A, R>(effect: Effect.Effect<A, EngineError, R>) => Effect.mapError(effect, toA2AError)

const json = (result: unknown): MethodResult => ({ _tag: "Json", result })

const itemEvent = (item: WatchItem): SseEvent =>
  item._tag === "Snapshot"
    ? { id: item.version, data: { task: presentTask(item.task) } }
    : { id: item.committed.version, data: streamResponseFor(item.committed.taskId, item.committed.contextId, item.committed.event) }

const sendMessage = (params: unknown) =>
  Effect.gen(function* () {
    const engine = yield* TaskEngine
    const req = yield* decode(P.SendMessageRequest, params)
    const outcome = yield* engineCall(engine.send({ tenant: req.tenant ?? "", message: P.toMessage(req.message) }))
    if (outcome._tag === "Message") return json({ message: outcome.message })
    const historyLength = req.configuration?.historyLength
    if (req.configuration?.returnImmediately === true) {
      return json({ task: presentTask(outcome.snapshot.task!, { historyLength }) })
    }
    const done = yield* engineCall(engine.awaitSettled(outcome.snapshot.task!.id, outcome.snapshot.version))
    return json({ task: presentTask(done.task!, { historyLength }) })
  })

const sendStreamingMessage = (params: unknown) =>
  Effect.gen(function* () {
    const engine = yield* TaskEngine
    const req = yield* decode(P.SendMessageRequest, params)
    const outcome = yield* engineCall(engine.send({ tenant: req.tenant ?? "", message: P.toMessage(req.message) }))
    if (outcome._tag === "Message") {
      return { _tag: "Stream", events: Stream.make({ data: { message: outcome.message } }) } satisfies MethodResult
    }
    // A task stream closes at a terminal state and when the agent asks for input (a2a-js does
    // the same); it stays open through AUTH_REQUIRED, as spec §7.6.1 recommends.
    const events = engine
      .watch(outcome.snapshot.task!.id, {
        stopAt: (s) => isTerminal(s) || s === "TASK_STATE_INPUT_REQUIRED",
        initial: { version: outcome.snapshot.version, task: outcome.snapshot.task! }
      })
      .pipe(Stream.map(itemEvent), Stream.mapError(toA2AError))
    return { _tag: "Stream", events } satisfies MethodResult
  })

const parseLastEventId = (raw: string | undefined) => {
  if (raw === undefined || raw.trim() === "") return Effect.succeed(undefined)
  const n = Number(raw.trim())
  return Number.isSafeInteger(n) && n >= 0
    ? Effect.succeed(n)
    : Effect.fail(invalidParams("Last-Event-ID", "must be a task version (a non-negative integer) from an earlier event's id"))
}

const subscribeToTask = (params: unknown, ctx: CallContext) =>
  Effect.gen(function* () {
    const engine = yield* TaskEngine
    const req = yield* decode(P.SubscribeToTaskRequest, params)
    const afterVersion = yield* parseLastEventId(ctx.lastEventId)
    const current = yield* engineCall(engine.get(req.id, req.tenant ?? ""))
    const state = current.task!.status.state
    // A terminal task has nothing more to stream (spec §3.1.6), unless a resuming client missed its last events.
    if (isTerminal(state) && (afterVersion === undefined || afterVersion >= current.version)) {
      return yield* Effect.fail(
        new A2AError(Errors.UnsupportedOperation, `Task ${req.id} is ${state}; there is nothing to subscribe to (use GetTask)`, {
          taskId: req.id
        })
      )
    }
    const events = engine
      .watch(req.id, { stopAt: isTerminal, ...(afterVersion !== undefined ? { afterVersion } : {}) })
      .pipe(Stream.map(itemEvent), Stream.mapError(toA2AError))
    return { _tag: "Stream", events } satisfies MethodResult
  })

const getTask = (params: unknown) =>
  Effect.gen(function* () {
    const engine = yield* TaskEngine
    const req = yield* decode(P.GetTaskRequest, params)
    const s = yield* engineCall(engine.get(req.id, req.tenant ?? ""))
    return json(presentTask(s.task!, { historyLength: req.historyLength }))
  })

const encodeToken = (after: { timestamp: string; taskId: string }) =>
  Buffer.from(JSON.stringify([after.timestamp, after.taskId])).toString("base64url")

const decodeToken = (token: string) =>
  Effect.try({
    try: () => {
      const [timestamp, taskId] = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as [unknown, unknown]
      if (typeof timestamp !== "string" || typeof taskId !== "string") throw new Error("bad token")
      return { timestamp, taskId }
    },
    catch: () => invalidParams("pageToken", "is not a page token issued by this server (use nextPageToken from the previous page)")
  })

const listTasks = (params: unknown) =>
  Effect.gen(function* () {
    const engine = yield* TaskEngine
    const req = yield* decode(P.ListTasksRequest, params)
    const pageSize = req.pageSize ?? 50
    const after = req.pageToken !== undefined && req.pageToken !== "" ? yield* decodeToken(req.pageToken) : undefined
    const state = P.statusFilter(req.status)
    const page = yield* engineCall(
      engine.list({
        tenant: req.tenant ?? "",
        pageSize,
        ...(req.contextId !== undefined && req.contextId !== "" ? { contextId: req.contextId } : {}),
        ...(state !== undefined ? { state } : {}),
        ...(req.statusTimestampAfter !== undefined ? { statusTimestampAfter: new Date(req.statusTimestampAfter).toISOString() } : {}),
        ...(after !== undefined ? { after } : {})
      })
    )
    const view = { historyLength: req.historyLength, artifacts: req.includeArtifacts === true ? "always" : "omit" } as const
    return json({
      tasks: page.tasks.map((s) => presentTask(s.task!, view)),
      nextPageToken: page.next !== undefined ? encodeToken(page.next) : "",
      pageSize,
      totalSize: page.totalSize
    })
  })

const cancelTask = (params: unknown) =>
  Effect.gen(function* () {
    const engine = yield* TaskEngine
    const req = yield* decode(P.CancelTaskRequest, params)
    const s = yield* engineCall(engine.cancel(req.id, req.tenant ?? ""))
    return json(presentTask(s.task!))
  })

const notSupported = (what: string) => () =>
  Effect.fail(new A2AError(Errors.PushNotificationNotSupported, `${what}: push notifications are not supported by this server`))

type Method = (params: unknown, ctx: CallContext) => Effect.Effect<MethodResult, A2AError, TaskEngine>

export const methods: Readonly<Record<string, Method>> = {
  SendMessage: sendMessage,
  SendStreamingMessage: sendStreamingMessage,
  SubscribeToTask: subscribeToTask,
  GetTask: getTask,
  ListTasks: listTasks,
  CancelTask: cancelTask,
  CreateTaskPushNotificationConfig: notSupported("CreateTaskPushNotificationConfig"),
  GetTaskPushNotificationConfig: notSupported("GetTaskPushNotificationConfig"),
  ListTaskPushNotificationConfigs: notSupported("ListTaskPushNotificationConfigs"),
  DeleteTaskPushNotificationConfig: notSupported("DeleteTaskPushNotificationConfig"),
  GetExtendedAgentCard: () =>
    Effect.fail(new A2AError(Errors.UnsupportedOperation, "GetExtendedAgentCard: this agent has no extended card (capabilities.extendedAgentCard is false)"))
}
