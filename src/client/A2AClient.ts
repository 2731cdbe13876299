import { Data, Effect, Stream } from "effect"
import { traceHeaders, traced } from "../observability/Tracing.js"

/**
 * A small A2A v1.0 client over the JSON-RPC binding, for the `tasks`
 * commands: any A2A v1.0 server, ours or another. The endpoint comes from the
 * agent card at `{url}/.well-known/agent-card.json` (its JSONRPC 1.x
 * interface); without a card, `url` itself is taken as the endpoint.
 */
export class ClientError extends Data.TaggedError("ClientError")<{ readonly message: string }> {}

/** A JSON-RPC error answer: the server's code and message. */
export class RemoteError extends Data.TaggedError("RemoteError")<{ readonly code: number; readonly message: string; readonly data?: unknown }> {}

export interface ClientOptions {
  readonly url: string
  readonly token?: string
  /** An API key, sent as `X-API-Key`. */
  readonly apiKey?: string
}

export interface A2AClient {
  readonly endpoint: string
  readonly call: (method: string, params: unknown) => Effect.Effect<any, ClientError | RemoteError>
  readonly stream: (method: string, params: unknown) => Stream.Stream<any, ClientError | RemoteError>
}

const hostOf = (url: string) => {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

const trimSlash = (url: string) => url.replace(/\/+$/, "")

const failure = (what: string, e: unknown) =>
  new ClientError({
    message: `${what}: ${(e as Error)?.cause instanceof Error ? ((e as Error).cause as Error).message : ((e as Error)?.message ?? String(e))}`
  })

/** The JSON-RPC v1.x interface the card names, or the URL itself when there is no usable card. */
const discover = (url: string, headers: Record<string, string>) =>
  Effect.tryPromise({
    try: async (signal) => {
      const res = await fetch(`${trimSlash(url)}/.well-known/agent-card.json`, { headers, signal })
      if (!res.ok) return url
      const card = (await res.json()) as { supportedInterfaces?: ReadonlyArray<{ url?: string; protocolBinding?: string; protocolVersion?: string }> }
      const rpc = card.supportedInterfaces?.find((i) => i.protocolBinding === "JSONRPC" && (i.protocolVersion ?? "").startsWith("1."))
      return rpc?.url ?? url
    },
    catch: (e) => failure(`cannot reach ${url}`, e)
  })

/** What every call sends: the protocol version, and the credentials (either binding: gRPC metadata are headers too). */
export const headersOf = (options: ClientOptions): Record<string, string> => ({
  "a2a-version": "1.0",
  ...(options.token !== undefined && options.token !== "" ? { authorization: `Bearer ${options.token}` } : {}),
  ...(options.apiKey !== undefined && options.apiKey !== "" ? { "x-api-key": options.apiKey } : {})
})

export const make = (options: ClientOptions) =>
  Effect.gen(function* () {
    const headers = headersOf(options)
    const endpoint = yield* discover(options.url, headers)
    let id = 0
    // Traced: each call is a client span, and the remote is sent its trace context (`traceparent`).
    const post = (method: string, params: unknown, accept: string) =>
      Effect.flatMap(traceHeaders, (trace) =>
        Effect.tryPromise({
          // An interrupted call aborts its request.
          try: (signal) =>
            fetch(endpoint, {
              signal,
              method: "POST",
              headers: { ...headers, ...trace, "content-type": "application/json", accept },
              body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params })
            }),
          catch: (e) => failure(`cannot reach ${endpoint}`, e)
        })
      ).pipe(traced(`A2A ${method}`, () => ({ kind: "client", attributes: { "a2a.method": method, "server.address": hostOf(endpoint) } })))

    const answer = (body: any) =>
      body?.error !== undefined
        ? Effect.fail(new RemoteError({ code: body.error.code, message: body.error.message, data: body.error.data }))
        : Effect.succeed(body?.result)

    const readJson = (res: Response) =>
      Effect.tryPromise({
        try: () => res.text(),
        catch: (e) => failure("the answer could not be read", e)
      }).pipe(
        Effect.flatMap((text) =>
          Effect.try({
            try: () => JSON.parse(text),
            catch: () => new ClientError({ message: `HTTP ${res.status} from ${endpoint}, not JSON-RPC: ${text.slice(0, 200)}` })
          })
        )
      )

    const call = (method: string, params: unknown) => post(method, params, "application/json").pipe(Effect.flatMap(readJson), Effect.flatMap(answer))

    const stream = (method: string, params: unknown): Stream.Stream<any, ClientError | RemoteError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const res = yield* post(method, params, "text/event-stream")
          // A refusal comes back as one JSON-RPC answer, not a stream.
          if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
            return Stream.fromEffect(Effect.flatMap(readJson(res), answer))
          }
          const body = res.body
          if (body === null) return Stream.empty
          // (A reader, not an async iterator: an interrupted stream cancels its pending read at once, where an
          // iterator's return waits for the next chunk, which an idle stream may not send for a long while.)
          return sseData(
            Stream.fromReadableStream(
              () => body,
              (e) => failure("the stream broke", e)
            )
          ).pipe(
            Stream.mapEffect((data) =>
              Effect.try({ try: () => JSON.parse(data), catch: () => new ClientError({ message: `an event was not JSON: ${data.slice(0, 200)}` }) })
            ),
            Stream.mapEffect(answer)
          )
        })
      )

    return { endpoint, call, stream } satisfies A2AClient
  })

/** The `data` of each server-sent event (multi-line data joined by newlines, as the SSE rules say). */
const sseData = <E>(bytes: Stream.Stream<Uint8Array, E>): Stream.Stream<string, E> =>
  bytes.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.mapAccum([] as ReadonlyArray<string>, (data, line): readonly [ReadonlyArray<string>, ReadonlyArray<string>] => {
      if (line === "") return [[], data.length > 0 ? [data.join("\n")] : []]
      if (line.startsWith("data:")) return [[...data, line.slice(5).replace(/^ /, "")], []]
      return [data, []]
    }),
    Stream.flattenIterables
  )
