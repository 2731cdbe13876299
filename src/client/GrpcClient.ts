import { type DescMessage, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf"
import { ConnectError, createClient } from "@connectrpc/connect"
import { createGrpcTransport } from "@connectrpc/connect-node"
import { Effect, Stream } from "effect"
import { A2AService, StreamResponseSchema } from "../grpc/gen/a2a_pb.js"
import { ErrorInfoSchema } from "../grpc/gen/google/rpc/error_details_pb.js"
import { Errors } from "../protocol/errors.js"
import { type A2AClient, ClientError, type ClientOptions, headersOf, RemoteError } from "./A2AClient.js"

/**
 * The `tasks` client over the gRPC binding (`--transport grpc`): the same calls as A2AClient, by the
 * JSON-RPC method names and JSON params, sent as the proto's messages to the GRPC interface the card names
 * (or to `url` itself when it is a `host:port`). A gRPC error comes back as the A2A error its ErrorInfo
 * names, with that error's JSON-RPC code, so the commands print the same refusal on every binding.
 */
const byName = Object.fromEntries(Object.values(A2AService.method).map((m) => [m.name, m]))

/** The JSON-RPC code of the A2A error a gRPC status's ErrorInfo names. */
const codeOf = (reason: string | undefined) => Object.values(Errors).find((e) => e.reason === reason)?.code ?? Errors.Internal.code

const remote = (e: unknown) => {
  const error = ConnectError.from(e)
  const info = error.findDetails(ErrorInfoSchema)[0]
  return info === undefined
    ? new ClientError({ message: `gRPC ${error.code}: ${error.rawMessage}` })
    : new RemoteError({ code: codeOf(info.reason), message: error.rawMessage })
}

/** The GRPC interface of the card at `url`; `url` itself when it is already a `host:port`. */
const discover = (url: string, headers: Record<string, string>) =>
  /^[a-z]+:\/\//i.test(url)
    ? Effect.tryPromise({
        try: async (signal) => {
          const res = await fetch(`${url.replace(/\/+$/, "")}/.well-known/agent-card.json`, { headers, signal })
          const card = (await res.json()) as { supportedInterfaces?: ReadonlyArray<{ url?: string; protocolBinding?: string }> }
          const grpc = card.supportedInterfaces?.find((i) => i.protocolBinding === "GRPC")?.url
          if (grpc === undefined) throw new Error("its agent card lists no GRPC interface (serve --grpc-port)")
          return grpc
        },
        catch: (e) => new ClientError({ message: `cannot use gRPC at ${url}: ${(e as Error).message}` })
      })
    : Effect.succeed(url)

export const make = (options: ClientOptions) =>
  Effect.gen(function* () {
    const headers = headersOf(options)
    const address = yield* discover(options.url, headers)
    const client = createClient(A2AService, createGrpcTransport({ baseUrl: /^[a-z]+:\/\//i.test(address) ? address : `http://${address}` }))
    const methodOf = (name: string) => {
      const method = byName[name]
      return method === undefined ? Effect.fail(new ClientError({ message: `no gRPC method ${name}` })) : Effect.succeed(method)
    }
    const input = (schema: DescMessage, params: unknown) =>
      Effect.try({ try: () => fromJson(schema, params as JsonValue), catch: (e) => new ClientError({ message: (e as Error).message }) })

    const call = (name: string, params: unknown) =>
      Effect.gen(function* () {
        const method = yield* methodOf(name)
        const request = yield* input(method.input, params)
        const local = method.localName as keyof typeof client
        const answer = yield* Effect.tryPromise({
          try: (signal) => (client[local] as (r: unknown, o: object) => Promise<unknown>)(request, { headers, signal }),
          catch: remote
        })
        return toJson(method.output, answer as never) as any
      })

    const stream = (name: string, params: unknown): Stream.Stream<any, ClientError | RemoteError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const method = yield* methodOf(name)
          const request = yield* input(method.input, params)
          const local = method.localName as keyof typeof client
          return Stream.fromAsyncIterable((client[local] as (r: unknown, o: object) => AsyncIterable<unknown>)(request, { headers }), remote).pipe(
            Stream.map((event) => toJson(StreamResponseSchema, event as never) as any)
          )
        })
      )

    return { endpoint: address, call, stream } satisfies A2AClient
  })
