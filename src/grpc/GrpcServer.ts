import {
  createRegistry,
  type DescMessage,
  type DescMethod,
  fromBinary,
  fromJson,
  type JsonValue,
  type MessageShape,
  toBinary,
  toJson
} from "@bufbuild/protobuf"
import type * as Grpc from "@grpc/grpc-js"
import { Context, Data, Effect, Either, Layer, Runtime } from "effect"
import type { Feed } from "../engine/Follower.js"
import { CurrentAgent } from "../engine/EngineConfig.js"
import { GrpcAddress } from "./GrpcAddress.js"
import { A2AError, Errors, errorDetails } from "../protocol/errors.js"
import { Authenticator, type Principal } from "../server/Auth.js"
import { AgentHosts, type HostServices } from "../server/AgentHosts.js"
import { EngineMetrics } from "../observability/Metrics.js"
import { invoke, streamCaller } from "../server/dispatch.js"
import { LiveStreams, type StreamSink } from "../server/LiveStreams.js"
import * as Request from "../server/request.js"
import { ServerConfig } from "../server/ServerConfig.js"
import type { SseEvent } from "../server/Sse.js"
import { A2AService, StreamResponseSchema } from "./gen/a2a_pb.js"
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js"
import { StatusSchema } from "./gen/google/rpc/status_pb.js"

/**
 * The gRPC binding (spec §10): the `lf.a2a.v1.A2AService` of the v1.0 proto, served by `@grpc/grpc-js` on a
 * port of its own (`serve --grpc-port`), with the messages the proto's generated code (`gen/`, protoc-gen-es)
 * reads and writes. Each call's request message becomes the ProtoJSON the other bindings read (the A2A JSON
 * shapes are the proto's JSON mapping) and runs the same method through `dispatch.invoke`, with the same
 * authentication (the `authorization` metadata), version check (`a2a-version`) and errors; the answer is
 * read back into the response message. Streams are the same streams, one message per event.
 *
 * (grpc-js, not Connect's Node adapter, which served it first: a unary call cost the server about four times
 * the CPU under Connect; docs/performance.md#grpc.)
 */

type GrpcJs = typeof Grpc

/** A request message that did not decode: answered INVALID_ARGUMENT by the method, not INTERNAL by grpc-js. */
class Undecodable {
  constructor(readonly reason: string) {}
}

/**
 * The service as grpc-js takes it, made from the generated descriptors: each method's path, whether it
 * streams, and its messages' binary (de)serializers.
 */
const definition = (): Grpc.ServiceDefinition =>
  Object.fromEntries(
    A2AService.methods.map((method) => [
      method.localName,
      {
        path: `/${A2AService.typeName}/${method.name}`,
        originalName: method.localName,
        requestStream: false,
        responseStream: method.methodKind === "server_streaming",
        requestSerialize: (value: MessageShape<DescMessage>) => Buffer.from(toBinary(method.input, value)),
        requestDeserialize: (bytes: Buffer) => {
          try {
            return fromBinary(method.input, bytes)
          } catch (e) {
            return new Undecodable(e instanceof Error ? e.message : String(e))
          }
        },
        responseSerialize: (value: MessageShape<DescMessage>) => Buffer.from(toBinary(method.output, value)),
        responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes)
      }
    ])
  )

/** The detail messages `errorDetails` names by their `@type`. */
const detailTypes = createRegistry(ErrorInfoSchema, BadRequestSchema)

/**
 * An A2A error as a gRPC status: the error table's code, the error's message, and in `grpc-status-details-bin`
 * a `google.rpc.Status` with the details the other bindings send (`errorDetails`: an ErrorInfo, and a
 * BadRequest naming the fields).
 */
const statusOf = (grpc: GrpcJs, error: A2AError): Grpc.StatusObject => {
  const code = grpc.status[error.spec.grpcStatus as keyof typeof grpc.status] ?? grpc.status.INTERNAL
  const status = fromJson(StatusSchema, { code, message: error.message, details: errorDetails(error) } as unknown as JsonValue, {
    registry: detailTypes,
    ignoreUnknownFields: true
  })
  const metadata = new grpc.Metadata()
  metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, status)))
  return { code, details: error.message, metadata }
}

/** The call's metadata as the other bindings' request headers (grpc-js has the names in lower case). */
const headersOf = (metadata: Grpc.Metadata): Request.RequestHeaders => {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(metadata.getMap())) if (typeof value === "string") headers[name] = value
  return headers
}

/** The caller's address, without the port grpc-js's peer ends with ("127.0.0.1:5000", "::1:5000"). */
const remoteAddressOf = (call: Grpc.ServerWritableStream<unknown, unknown>) => {
  const peer = call.getPeer()
  const colon = peer.lastIndexOf(":")
  return peer === "unknown" || colon < 0 ? undefined : peer.slice(0, colon)
}

/** What a call runs with: the server's services (authentication, configuration) and its agent's engine. */
type Services = Authenticator | ServerConfig | AgentHosts | LiveStreams | HostServices
type Run = <A, E>(effect: Effect.Effect<A, E, Services>) => Promise<A>

/**
 * A place for one more open stream of this caller, under `--max-streams-per-principal` as the SSE streams are,
 * and counted in the open-streams gauge: the function that frees it, or the refusal (RESOURCE_EXHAUSTED).
 */
const reserveStream = (principal: Principal, remoteAddress: string | undefined) =>
  Effect.map(Effect.zip(LiveStreams, EngineMetrics), ([streams, metrics]) => {
    const reserved = streams.reserve(streamCaller(principal, remoteAddress), () => metrics.stream(-1))
    if (Either.isRight(reserved)) metrics.stream(1)
    return reserved
  })

/**
 * A stream's events written to the call, one `StreamResponse` each. The feed pauses while the call's
 * buffer is full and resumes when it drains; it closes when the stream ends, fails, or the client leaves.
 */
class GrpcSink implements StreamSink {
  private feed: Feed | undefined
  private done = false

  constructor(
    private readonly grpc: GrpcJs,
    private readonly call: Grpc.ServerWritableStream<unknown, unknown>,
    private readonly free: () => void
  ) {
    call.on("drain", () => this.feed?.resume())
    call.on("cancelled", () => this.finish())
    // (A write to a call cut under it: it ends, as a cancel does.)
    call.on("error", () => this.finish())
    // (Canceled while the method ran: the event has been and gone.)
    if (call.cancelled) this.finish()
  }

  /** What feeds the stream, once it is open (an end or a cut before then closes it at once). */
  fedBy(feed: Feed | undefined) {
    this.feed = feed
    if (this.done) feed?.close()
  }

  // (Arrow properties: the feed calls them detached from the sink.)
  readonly item = (event: SseEvent) => {
    if (this.done) return false
    let message: MessageShape<typeof StreamResponseSchema>
    try {
      message = fromJson(StreamResponseSchema, event.data as JsonValue, { ignoreUnknownFields: true })
    } catch {
      // (An event the proto cannot say: the stream ends INTERNAL, the server goes on.)
      this.fail(new A2AError(Errors.Internal, "An event of the stream could not be written as a StreamResponse"))
      return false
    }
    return this.call.write(message)
  }
  readonly end = () => {
    if (this.done) return
    this.finish()
    this.call.end()
  }
  readonly fail = (error: A2AError) => {
    if (this.done) return
    this.finish()
    this.call.emit("error", statusOf(this.grpc, error))
  }
  private finish() {
    if (this.done) return
    this.done = true
    this.feed?.close()
    this.free()
  }
}

const makeImplementation = (grpc: GrpcJs, run: Run): Grpc.UntypedServiceImplementation => {
  const internal = (method: string) => statusOf(grpc, new A2AError(Errors.Internal, `${method} failed`))

  /** Authenticate, check the version, and run `method` with the request's ProtoJSON as its params. */
  const call = (method: DescMethod, request: unknown, metadata: Grpc.Metadata) =>
    run(
      Effect.gen(function* () {
        if (request instanceof Undecodable)
          return Either.left(new A2AError(Errors.InvalidParams, `The request is not a valid ${method.input.typeName}: ${request.reason}`))
        const headers = headersOf(metadata)
        const head: Request.RequestHead = { url: "/", headers }
        const principal = yield* Effect.either((yield* Authenticator).authenticate(headers))
        if (Either.isLeft(principal)) return Either.left(principal.left)
        const versionError = Request.checkVersion(head)
        if (versionError !== undefined) return Either.left(versionError)
        const params = toJson(method.input, request as MessageShape<DescMessage>)
        return Either.map(yield* invoke(method.name, params, head, principal.right), (result) => ({ result, principal: principal.right }))
      })
    )

  const unary = (method: DescMethod) => (call_: Grpc.ServerUnaryCall<unknown, unknown>, callback: Grpc.sendUnaryData<unknown>) => {
    call(method, call_.request, call_.metadata).then(
      (outcome) => {
        if (Either.isLeft(outcome)) return callback(statusOf(grpc, outcome.left))
        const { result } = outcome.right
        if (result._tag !== "Json") return callback(statusOf(grpc, new A2AError(Errors.Internal, `${method.name} answered with a stream`)))
        try {
          callback(null, fromJson(method.output, (result.result ?? {}) as JsonValue, { ignoreUnknownFields: true }))
        } catch {
          callback(internal(method.name))
        }
      },
      () => callback(internal(method.name))
    )
  }

  const streaming = (method: DescMethod) => (stream: Grpc.ServerWritableStream<unknown, unknown>) => {
    const fail = (status: Grpc.StatusObject) => void stream.emit("error", status)
    const serve = async () => {
      const outcome = await call(method, stream.request, stream.metadata)
      if (Either.isLeft(outcome)) return fail(statusOf(grpc, outcome.left))
      const { result, principal } = outcome.right
      if (stream.cancelled) return
      if (result._tag !== "Stream") {
        // (SendStreamingMessage answered by a direct reply: one Message, then the end.)
        const message = (result.result as { message?: JsonValue }).message ?? null
        stream.write(fromJson(StreamResponseSchema, { message } as JsonValue, { ignoreUnknownFields: true }))
        return void stream.end()
      }
      const reserved = await run(reserveStream(principal, remoteAddressOf(stream)))
      if (Either.isLeft(reserved)) return fail(statusOf(grpc, reserved.left))
      const sink = new GrpcSink(grpc, stream, reserved.right)
      const opened = await run(Effect.either(result.open(sink)))
      if (Either.isLeft(opened)) return sink.fail(opened.left)
      sink.fedBy(opened.right)
    }
    serve().catch(() => fail(internal(method.name)))
  }

  return Object.fromEntries(
    A2AService.methods.map((method) => [method.localName, method.methodKind === "server_streaming" ? streaming(method) : unary(method)])
  )
}

/** The gRPC port could not be bound (taken, or the host is not this machine's). */
export class GrpcListenError extends Data.TaggedError("GrpcListenError")<{ readonly address: string; readonly cause: Error }> {}

/** `host:port` as grpc-js binds it: an IPv6 host in brackets. */
const bindAddress = (host: string, port: number) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)

/**
 * The gRPC server on `port` (and `host`), serving the root agent, or on a server of several agents the one
 * whose card is at the root. It closes with the layer's scope; open streams are cut then.
 */
export const layer = (options: { readonly port: number; readonly host: string }) =>
  Layer.scoped(
    GrpcAddress,
    Effect.gen(function* () {
      // Loaded here: a server without gRPC never loads it.
      const grpc: GrpcJs = yield* Effect.promise(() => import("@grpc/grpc-js"))
      const outer = yield* Effect.runtime<Authenticator | ServerConfig | AgentHosts | LiveStreams>()
      const hosts = yield* AgentHosts
      const host = hosts.root ?? hosts.card
      // Its own address too, once it listens: the extended card it answers lists it, as the public card does.
      const address = { port: 0, agent: Context.get(host.context, CurrentAgent) }
      const runtime = Runtime.make({
        context: Context.add(Context.merge(outer.context, host.context), GrpcAddress, address),
        fiberRefs: outer.fiberRefs,
        runtimeFlags: outer.runtimeFlags
      })
      const run: Run = Runtime.runPromise(runtime)
      const config = yield* ServerConfig
      // A request message over --max-body-bytes is refused (RESOURCE_EXHAUSTED), as an HTTP body over it is (413).
      const server = new grpc.Server({ "grpc.max_receive_message_length": config.maxBodyBytes })
      server.addService(definition(), makeImplementation(grpc, run))
      const bindTo = bindAddress(options.host, options.port)
      const port = yield* Effect.async<number, GrpcListenError>((resume) =>
        server.bindAsync(bindTo, grpc.ServerCredentials.createInsecure(), (error, bound) =>
          resume(error === null ? Effect.succeed(bound) : Effect.fail(new GrpcListenError({ address: bindTo, cause: error })))
        )
      )
      // (Open streams end with the server: a client's call is cut, as at any shutdown.)
      yield* Effect.addFinalizer(() => Effect.sync(() => server.forceShutdown()))
      address.port = port
      yield* Effect.logInfo(`gRPC on ${options.host}:${port}`)
      return address
    })
  )
