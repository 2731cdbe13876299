import { type DescMessage, fromJson, type JsonValue, type MessageShape, toJson } from "@bufbuild/protobuf"
import { EmptySchema } from "@bufbuild/protobuf/wkt"
import { Code, ConnectError, type ConnectRouter, createContextKey, createContextValues, type HandlerContext } from "@connectrpc/connect"
import { connectNodeAdapter } from "@connectrpc/connect-node"
import { Context, Effect, Either, Exit, Layer, Runtime } from "effect"
import * as http2 from "node:http2"
import type { Feed } from "../engine/Follower.js"
import { CurrentAgent } from "../engine/EngineConfig.js"
import { GrpcAddress } from "./GrpcAddress.js"
import { A2AError, Errors } from "../protocol/errors.js"
import { Authenticator, type Principal } from "../server/Auth.js"
import { AgentHosts, type HostServices } from "../server/AgentHosts.js"
import { EngineMetrics } from "../observability/Metrics.js"
import { invoke, streamCaller } from "../server/dispatch.js"
import { LiveStreams, type StreamSink } from "../server/LiveStreams.js"
import * as Request from "../server/request.js"
import { ServerConfig } from "../server/ServerConfig.js"
import type { SseEvent } from "../server/Sse.js"
import {
  A2AService,
  AgentCardSchema,
  ListTaskPushNotificationConfigsResponseSchema,
  ListTasksResponseSchema,
  SendMessageResponseSchema,
  StreamResponseSchema,
  TaskPushNotificationConfigSchema,
  TaskSchema
} from "./gen/a2a_pb.js"
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js"

/**
 * The gRPC binding (spec §10): the `lf.a2a.v1.A2AService` of the v1.0 proto, served by Connect's Node
 * adapter on HTTP/2 (cleartext, prior knowledge, as gRPC clients connect to `host:port`) on a port of its
 * own (`serve --grpc-port`). Each call's request message becomes the ProtoJSON the other bindings read (the
 * A2A JSON shapes are the proto's JSON mapping) and runs the same method through `dispatch.invoke`, with
 * the same authentication (the `authorization` metadata), version check (`a2a-version`) and errors; the
 * answer is read back into the response message. Streams are the same streams, one message per event.
 */

/** gRPC status names (the error table's) as Connect's codes. */
const codes: Record<string, Code> = {
  INVALID_ARGUMENT: Code.InvalidArgument,
  NOT_FOUND: Code.NotFound,
  FAILED_PRECONDITION: Code.FailedPrecondition,
  UNIMPLEMENTED: Code.Unimplemented,
  INTERNAL: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  UNAUTHENTICATED: Code.Unauthenticated,
  PERMISSION_DENIED: Code.PermissionDenied
}

/** An A2A error as a gRPC status: its code, its message, and a google.rpc.ErrorInfo (and BadRequest) in its details. */
export const statusOf = (error: A2AError): ConnectError =>
  new ConnectError(error.message, codes[error.spec.grpcStatus] ?? Code.Internal, undefined, [
    { desc: ErrorInfoSchema, value: { reason: error.spec.reason, domain: "a2a-protocol.org", metadata: { ...error.metadata } } },
    ...(error.fieldViolations.length > 0
      ? [{ desc: BadRequestSchema, value: { fieldViolations: error.fieldViolations.map((v) => ({ field: v.field, description: v.description })) } }]
      : [])
  ])

/** The call's metadata as the other bindings' request headers (lower-case names). */
const headersOf = (ctx: HandlerContext): Request.RequestHeaders => {
  const headers: Record<string, string> = {}
  ctx.requestHeader.forEach((value, name) => {
    headers[name.toLowerCase()] = value
  })
  return headers
}

/** What a call runs with: the server's services (authentication, configuration) and its agent's engine. */
type Services = Authenticator | ServerConfig | AgentHosts | LiveStreams | HostServices
type Run = <A, E>(effect: Effect.Effect<A, E, Services>) => Promise<A>

/** Where a call comes from: anonymous callers' streams are counted by it. */
const remoteAddress = createContextKey<string | undefined>(undefined, { description: "remote address" })

/**
 * A place for one more open stream of this caller, under `--max-streams-per-principal` as the SSE streams are,
 * and counted in the open-streams gauge: the function that frees it, or the refusal (RESOURCE_EXHAUSTED).
 */
const reserveStream = (principal: Principal, ctx: HandlerContext) =>
  Effect.map(Effect.zip(LiveStreams, EngineMetrics), ([streams, metrics]) => {
    const reserved = streams.reserve(streamCaller(principal, ctx.values.get(remoteAddress)), () => metrics.stream(-1))
    if (Either.isRight(reserved)) metrics.stream(1)
    return reserved
  })

/** A stream's events as the async iterable a server-streaming handler returns; the feed is paused while the client is behind. */
class GrpcSink implements StreamSink {
  private readonly queue: Array<unknown> = []
  private finished = false
  private failure: A2AError | undefined
  private wake: (() => void) | undefined
  private paused = false
  feed: Feed | undefined

  // (Arrow properties: the feed calls them detached from the sink.)
  readonly item = (event: SseEvent) => {
    this.queue.push(event.data)
    this.signal()
    if (this.queue.length >= 32) this.paused = true
    return !this.paused
  }
  readonly end = () => {
    this.finished = true
    this.signal()
  }
  readonly fail = (error: A2AError) => {
    this.failure = error
    this.finished = true
    this.signal()
  }
  private readonly signal = () => {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
  async *events(signal: AbortSignal): AsyncGenerator<unknown> {
    const abort = () => this.signal()
    signal.addEventListener("abort", abort)
    try {
      for (;;) {
        if (signal.aborted) return
        const next = this.queue.shift()
        if (next !== undefined) {
          if (this.paused && this.queue.length === 0) {
            this.paused = false
            this.feed?.resume()
          }
          yield next
          continue
        }
        if (this.failure !== undefined) throw statusOf(this.failure)
        if (this.finished) return
        await new Promise<void>((resolve) => {
          this.wake = resolve
        })
      }
    } finally {
      signal.removeEventListener("abort", abort)
      this.feed?.close()
    }
  }
}

const makeRoutes = (run: Run) => {
  /** Authenticate, check the version, and run `method` with the request's ProtoJSON as its params. */
  const call = (method: string, params: JsonValue, ctx: HandlerContext) =>
    run(
      Effect.gen(function* () {
        const headers = headersOf(ctx)
        const head: Request.RequestHead = { url: "/", headers }
        const principal = yield* Effect.either((yield* Authenticator).authenticate(headers))
        if (Either.isLeft(principal)) return Either.left(principal.left)
        const versionError = Request.checkVersion(head)
        if (versionError !== undefined) return Either.left(versionError)
        return Either.map(yield* invoke(method, params, head, principal.right), (result) => ({ result, principal: principal.right }))
      })
    )

  const unary =
    <I extends DescMessage, O extends DescMessage>(method: string, input: I, output: O) =>
    async (request: MessageShape<I>, ctx: HandlerContext): Promise<MessageShape<O>> => {
      const outcome = await call(method, toJson(input, request), ctx)
      if (Either.isLeft(outcome)) throw statusOf(outcome.left)
      const { result } = outcome.right
      if (result._tag !== "Json") throw statusOf(new A2AError(Errors.Internal, `${method} answered with a stream`))
      return fromJson(output, (result.result ?? {}) as JsonValue, { ignoreUnknownFields: true })
    }

  const streaming = <I extends DescMessage>(method: string, input: I) =>
    async function* (request: MessageShape<I>, ctx: HandlerContext) {
      const outcome = await call(method, toJson(input, request), ctx)
      if (Either.isLeft(outcome)) throw statusOf(outcome.left)
      const { result } = outcome.right
      if (result._tag !== "Stream") {
        // (SendStreamingMessage answered by a direct reply: one Message, then the end.)
        yield fromJson(StreamResponseSchema, { message: (result.result as { message?: JsonValue }).message ?? null } as JsonValue, {
          ignoreUnknownFields: true
        })
        return
      }
      const reserved = await run(reserveStream(outcome.right.principal, ctx))
      if (Either.isLeft(reserved)) throw statusOf(reserved.left)
      const free = reserved.right
      try {
        const sink = new GrpcSink()
        const opened = await run(Effect.either(result.open(sink)))
        if (Either.isLeft(opened)) throw statusOf(opened.left)
        sink.feed = opened.right
        for await (const event of sink.events(ctx.signal)) yield fromJson(StreamResponseSchema, event as JsonValue, { ignoreUnknownFields: true })
      } finally {
        free()
      }
    }

  return (router: ConnectRouter) =>
    router.service(A2AService, {
      sendMessage: unary("SendMessage", A2AService.method.sendMessage.input, SendMessageResponseSchema),
      sendStreamingMessage: streaming("SendStreamingMessage", A2AService.method.sendStreamingMessage.input),
      getTask: unary("GetTask", A2AService.method.getTask.input, TaskSchema),
      listTasks: unary("ListTasks", A2AService.method.listTasks.input, ListTasksResponseSchema),
      cancelTask: unary("CancelTask", A2AService.method.cancelTask.input, TaskSchema),
      subscribeToTask: streaming("SubscribeToTask", A2AService.method.subscribeToTask.input),
      createTaskPushNotificationConfig: unary(
        "CreateTaskPushNotificationConfig",
        A2AService.method.createTaskPushNotificationConfig.input,
        TaskPushNotificationConfigSchema
      ),
      getTaskPushNotificationConfig: unary(
        "GetTaskPushNotificationConfig",
        A2AService.method.getTaskPushNotificationConfig.input,
        TaskPushNotificationConfigSchema
      ),
      listTaskPushNotificationConfigs: unary(
        "ListTaskPushNotificationConfigs",
        A2AService.method.listTaskPushNotificationConfigs.input,
        ListTaskPushNotificationConfigsResponseSchema
      ),
      getExtendedAgentCard: unary("GetExtendedAgentCard", A2AService.method.getExtendedAgentCard.input, AgentCardSchema),
      deleteTaskPushNotificationConfig: unary(
        "DeleteTaskPushNotificationConfig",
        A2AService.method.deleteTaskPushNotificationConfig.input,
        EmptySchema
      )
    })
}

/**
 * The gRPC server on `port` (and `host`), serving the root agent, or on a server of several agents the one
 * whose card is at the root. It closes with the layer's scope.
 */
export const layer = (options: { readonly port: number; readonly host: string }) =>
  Layer.scoped(
    GrpcAddress,
    Effect.gen(function* () {
      const runtime = yield* Effect.runtime<Authenticator | ServerConfig | AgentHosts | LiveStreams>()
      const hosts = yield* AgentHosts
      const host = hosts.root ?? hosts.card
      // Its own address too, once it listens: the extended card it answers lists it, as the public card does.
      const address = { port: 0, agent: Context.get(host.context, CurrentAgent) }
      const context: Context.Context<Services> = Context.add(Context.merge(runtime.context, host.context), GrpcAddress, address)
      const run: Run = (effect) => Runtime.runPromise(runtime)(Effect.provide(effect, context))
      const config = yield* ServerConfig
      // A request message over --max-body-bytes is refused (RESOURCE_EXHAUSTED), as an HTTP body over it is (413).
      const server = http2.createServer(
        connectNodeAdapter({
          routes: makeRoutes(run),
          readMaxBytes: config.maxBodyBytes,
          contextValues: (req) => createContextValues().set(remoteAddress, req.socket?.remoteAddress)
        })
      )
      const port = yield* Effect.async<number, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(options.port, options.host, () => resume(Effect.succeed((server.address() as { port: number }).port)))
      })
      yield* Effect.addFinalizer(() =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          // Open streams end with the server: a client's call is cut, as at any shutdown.
          for (const session of sessions) session.destroy()
        })
      )
      const sessions = new Set<http2.ServerHttp2Session>()
      server.on("session", (session) => {
        sessions.add(session)
        session.once("close", () => sessions.delete(session))
      })
      address.port = port
      yield* Effect.logInfo(`gRPC on ${options.host}:${port}`)
      return address
    })
  )

/** For tests and the exit of a run: whether an Exit failed because the port was taken. */
export const isAddressInUse = (exit: Exit.Exit<unknown, unknown>) => Exit.isFailure(exit) && String(exit.cause).includes("EADDRINUSE")
