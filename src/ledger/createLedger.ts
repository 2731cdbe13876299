import { Cause, Effect, Exit, Layer, Logger, LogLevel, ManagedRuntime, Option, Scope, Stream } from "effect"
import { HttpServer } from "@effect/platform"
import { userMessage } from "../agent/Agent.js"
import type { Message, Metadata } from "../domain/Message.js"
import { isTerminal, type TaskState } from "../domain/TaskState.js"
import type { Task } from "../domain/TaskView.js"
import { anonymous, TaskEngine, type WatchItem } from "../engine/TaskEngine.js"
import * as Store from "../eventlog/Store.js"
import * as Embedded from "../layers/Embedded.js"
import * as Server from "../layers/Server.js"
import { A2AError } from "../protocol/errors.js"
import { streamResponseFor } from "../protocol/present.js"
import * as P from "../protocol/schema.js"
import { toA2AError } from "../server/engineErrors.js"
import { decode, engineCall, listQuery, nextPageToken } from "../server/methods.js"
import { fromA2AError, LedgerClosedError, LedgerError } from "./errors.js"
import { fromPromiseAgent, type PromiseAgent } from "./PromiseAgent.js"

/**
 * The engine for Node applications that do not use Effect: `createLedger` opens the store, recovers
 * unfinished tasks and starts the agent's workers in this process; its methods are Promises, and they
 * fail with `LedgerError`s carrying the A2A error code (docs/embedding.md).
 */
export interface LedgerOptions extends Omit<Embedded.EmbeddedOptions, "agent"> {
  readonly agent: PromiseAgent
  /** What the engine logs to the console, through Effect's logger (default `"warning"`). */
  readonly logLevel?: "none" | "error" | "warning" | "info" | "debug"
}

/** What `send` takes: text, text with the task or context it continues, or a whole A2A `Message`. */
export type SendInput =
  | string
  | { readonly text: string; readonly taskId?: string; readonly contextId?: string; readonly metadata?: Metadata }
  | Message

export interface SendOptions {
  /** Wait until the task is terminal or interrupted (input-required, auth-required); default true. `false` answers at once. */
  readonly wait?: boolean
}

export interface ListOptions {
  readonly contextId?: string
  readonly state?: TaskState
  /** 1–100 (default 50). */
  readonly pageSize?: number
  /** `nextPageToken` of the previous page. */
  readonly pageToken?: string
  /** Only tasks whose status changed after this time. */
  readonly statusTimestampAfter?: string | Date
}

export interface TaskList {
  /** Newest status change first. */
  readonly tasks: ReadonlyArray<Task>
  /** Pass as `pageToken` for the next page; `""` on the last. */
  readonly nextPageToken: string
  /** Tasks matching the filters, on every page. */
  readonly totalSize: number
}

/**
 * One item of a task's stream, as A2A's StreamResponse has it: the task first, then each status or
 * artifact update as it is committed.
 */
export type StreamResponse =
  | { readonly task: Task }
  | { readonly statusUpdate: { readonly taskId: string; readonly contextId: string; readonly status: Task["status"] } }
  | {
      readonly artifactUpdate: {
        readonly taskId: string
        readonly contextId: string
        readonly artifact: Task["artifacts"][number]
        readonly append?: boolean
        readonly lastChunk?: boolean
      }
    }

export interface ListenOptions {
  /** 0 picks a free port (read it from the answer). Default 9292. */
  readonly port?: number
  /** Default `"127.0.0.1"`: only this machine. `"0.0.0.0"` for every interface (then configure authentication). */
  readonly host?: string
  /** The base URL the agent card advertises; derived from each request's Host header when unset. */
  readonly publicUrl?: string
}

export interface Listening {
  /** The port the server is bound to. */
  readonly port: number
  /** Stop serving: streams end, in-flight requests get a grace period. The ledger stays open. */
  readonly close: () => Promise<void>
}

export interface Ledger {
  /** Send a message: a new task, or the next turn of the task it names. Answers the task. */
  readonly send: (input: SendInput, options?: SendOptions) => Promise<Task>
  readonly get: (taskId: string) => Promise<Task>
  readonly list: (options?: ListOptions) => Promise<TaskList>
  /** Cancel the task: its turn is interrupted (its `signal` aborted) and nothing it reports after is recorded. */
  readonly cancel: (taskId: string) => Promise<Task>
  /**
   * The task now, then every update, ending after a terminal state. Breaking out of the loop ends the
   * subscription; so does `close`.
   */
  readonly subscribe: (taskId: string) => AsyncIterable<StreamResponse>
  /** Serve this ledger's agent over A2A (JSON-RPC, HTTP+JSON, SSE) on a port. */
  readonly listen: (options?: ListenOptions) => Promise<Listening>
  /** Stop: servers closed, turns interrupted (their tasks resume at the next start), the store closed. */
  readonly close: () => Promise<void>
}

const logLevels = {
  none: LogLevel.None,
  error: LogLevel.Error,
  warning: LogLevel.Warning,
  info: LogLevel.Info,
  debug: LogLevel.Debug
} as const

const messageOf = (input: SendInput): unknown => {
  if (typeof input === "string") return userMessage(input)
  if (typeof input === "object" && input !== null && "parts" in input) return input
  const { text, ...rest } = input as { readonly text: string }
  return { ...userMessage(text), ...rest }
}

const rejection = (cause: Cause.Cause<unknown>): unknown => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return failure.value instanceof A2AError ? fromA2AError(failure.value) : failure.value
  return Cause.isInterruptedOnly(cause)
    ? new LedgerClosedError("the ledger was closed while the call ran", -32603, "SHUTTING_DOWN")
    : Cause.squash(cause)
}

// (The engine's watch shows no step-journal event: every event item has an update.)
const toStreamResponse = (item: WatchItem): StreamResponse =>
  item._tag === "Snapshot"
    ? { task: item.task }
    : (streamResponseFor(item.committed.taskId, item.committed.contextId, item.committed.event) as StreamResponse)

/** Open a ledger: the store is ready, unfinished tasks recovered and the agent's workers running when this resolves. */
export const createLedger = async (options: LedgerOptions): Promise<Ledger> => {
  const { agent, logLevel, ...engineOptions } = options
  const { db } = engineOptions
  const engine = Embedded.layer({ ...engineOptions, agent: fromPromiseAgent(agent) }).pipe(
    Layer.provide(Logger.minimumLogLevel(logLevels[logLevel ?? "warning"]))
  )
  const runtime = ManagedRuntime.make(engine)
  const started = await runtime.runPromiseExit(Effect.void)
  if (Exit.isFailure(started)) {
    await runtime.dispose()
    const error = Cause.squash(started.cause)
    throw new LedgerError(
      `the ledger could not open ${Store.describe(db)}: ${error instanceof Error ? error.message : String(error)}`,
      -32603,
      "INTERNAL"
    )
  }
  const engineRuntime = await runtime.runtime()

  let closed = false
  const servers = new Set<Scope.CloseableScope>()
  // Settles when `close` starts: every subscription still waiting for its next item ends then.
  let markClosed!: () => void
  const closing = new Promise<{ readonly done: true; readonly value: undefined }>((resolve) => {
    markClosed = () => resolve({ done: true, value: undefined })
  })
  const run = async <A>(effect: Effect.Effect<A, unknown, TaskEngine>): Promise<A> => {
    if (closed) throw new LedgerClosedError("the ledger is closed", -32603, "SHUTTING_DOWN")
    const exit = await runtime.runPromiseExit(effect)
    if (Exit.isSuccess(exit)) return exit.value
    throw rejection(exit.cause)
  }

  const send: Ledger["send"] = (input, sendOptions) =>
    run(
      Effect.gen(function* () {
        const req = yield* decode(P.SendMessageRequest, { message: messageOf(input) })
        const e = yield* TaskEngine
        const request = { caller: anonymous, message: P.toMessage(req.message) }
        const outcome = yield* engineCall(sendOptions?.wait === false ? e.send(request) : e.sendAndSettle(request))
        // A Promise agent has no direct reply: every message makes or continues a task.
        if (outcome._tag === "Message") return yield* Effect.dieMessage("the agent answered with a message, not a task")
        return outcome.snapshot.task
      })
    )

  const list: Ledger["list"] = (listOptions = {}) =>
    run(
      Effect.gen(function* () {
        const { state, statusTimestampAfter, ...rest } = listOptions
        const req = yield* decode(P.ListTasksRequest, {
          ...rest,
          ...(state !== undefined ? { status: state } : {}),
          ...(statusTimestampAfter !== undefined
            ? { statusTimestampAfter: statusTimestampAfter instanceof Date ? statusTimestampAfter.toISOString() : statusTimestampAfter }
            : {})
        })
        const e = yield* TaskEngine
        const page = yield* engineCall(e.list(yield* listQuery(req, anonymous)))
        return { tasks: page.tasks.map((s) => s.task), nextPageToken: nextPageToken(page), totalSize: page.totalSize }
      })
    )

  const get: Ledger["get"] = (taskId) => run(Effect.flatMap(TaskEngine, (e) => Effect.map(engineCall(e.get(taskId, anonymous)), (s) => s.task)))

  const cancel: Ledger["cancel"] = (taskId) =>
    run(Effect.flatMap(TaskEngine, (e) => Effect.map(engineCall(e.cancel(taskId, anonymous)), (s) => s.task)))

  const subscribe: Ledger["subscribe"] = (taskId) => ({
    [Symbol.asyncIterator]: () => {
      let inner: AsyncIterator<StreamResponse> | undefined
      const open = async (): Promise<AsyncIterator<StreamResponse>> => {
        // A missing task is an error here, not an empty stream.
        await get(taskId)
        const items: AsyncIterable<StreamResponse> = await run(
          Effect.map(TaskEngine, (e) =>
            Stream.toAsyncIterableRuntime(
              e.watch(taskId, { stopAt: isTerminal }).pipe(Stream.map(toStreamResponse), Stream.mapError(toA2AError)),
              engineRuntime
            )
          )
        )
        return items[Symbol.asyncIterator]()
      }
      return {
        next: async () => {
          if (closed) return { done: true, value: undefined }
          const iterator = (inner ??= await open())
          try {
            const next = await Promise.race([iterator.next(), closing])
            if (next.done === true && closed) void iterator.return?.()
            return next
          } catch (error) {
            throw error instanceof A2AError ? fromA2AError(error) : error
          }
        },
        return: async () => {
          await inner?.return?.()
          return { done: true, value: undefined }
        }
      }
    }
  })

  const listen: Ledger["listen"] = async (listenOptions = {}) => {
    if (closed) throw new LedgerClosedError("the ledger is closed", -32603, "SHUTTING_DOWN")
    const scope = Effect.runSync(Scope.make())
    const http = Server.layerOverEngine({
      port: listenOptions.port ?? 9292,
      host: listenOptions.host ?? "127.0.0.1",
      ...(listenOptions.publicUrl !== undefined ? { publicUrl: listenOptions.publicUrl } : {})
    })
    const built = await runtime.runPromiseExit(Layer.buildWithScope(http, scope))
    if (Exit.isFailure(built)) {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      const error = Cause.squash(built.cause)
      throw new LedgerError(`the ledger could not listen: ${error instanceof Error ? error.message : String(error)}`, -32603, "INTERNAL")
    }
    servers.add(scope)
    const address = (await runtime.runPromise(Effect.provide(HttpServer.HttpServer, built.value))).address
    return {
      port: address._tag === "TcpAddress" ? address.port : 0,
      close: async () => {
        if (!servers.delete(scope)) return
        await Effect.runPromise(Scope.close(scope, Exit.void))
      }
    }
  }

  const close: Ledger["close"] = async () => {
    if (closed) return
    closed = true
    markClosed()
    for (const scope of [...servers]) {
      servers.delete(scope)
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
    await runtime.dispose()
  }

  return { send, get, list, cancel, subscribe, listen, close }
}
