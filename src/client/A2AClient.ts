import { Data, Effect, Stream } from "effect"

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
}

export interface A2AClient {
  readonly endpoint: string
  readonly call: (method: string, params: unknown) => Effect.Effect<any, ClientError | RemoteError>
  readonly stream: (method: string, params: unknown) => Stream.Stream<any, ClientError | RemoteError>
}

const trimSlash = (url: string) => url.replace(/\/+$/, "")

const failure = (what: string, e: unknown) =>
  new ClientError({
    message: `${what}: ${(e as Error)?.cause instanceof Error ? ((e as Error).cause as Error).message : ((e as Error)?.message ?? String(e))}`
  })

/** The JSON-RPC v1.x interface the card names, or the URL itself when there is no usable card. */
const discover = (url: string, headers: Record<string, string>) =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(`${trimSlash(url)}/.well-known/agent-card.json`, { headers })
      if (!res.ok) return url
      const card = (await res.json()) as { supportedInterfaces?: ReadonlyArray<{ url?: string; protocolBinding?: string; protocolVersion?: string }> }
      const rpc = card.supportedInterfaces?.find((i) => i.protocolBinding === "JSONRPC" && (i.protocolVersion ?? "").startsWith("1."))
      return rpc?.url ?? url
    },
    catch: (e) => failure(`cannot reach ${url}`, e)
  })

export const make = (options: ClientOptions) =>
  Effect.gen(function* () {
    const headers: Record<string, string> = { "A2A-Version": "1.0" }
    if (options.token !== undefined && options.token !== "") headers.authorization = `Bearer ${options.token}`
    const endpoint = yield* discover(options.url, headers)
    let id = 0
    const post = (method: string, params: unknown, accept: string) =>
      Effect.tryPromise({
        try: () =>
          fetch(endpoint, {
            method: "POST",
            headers: { ...headers, "content-type": "application/json", accept },
            body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params })
          }),
        catch: (e) => failure(`cannot reach ${endpoint}`, e)
      })

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
          return Stream.fromAsyncIterable(sseData(body), (e) => failure("the stream broke", e)).pipe(
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
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder()
  let buffer = ""
  let data: Array<string> = []
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let nl: number
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "")
      buffer = buffer.slice(nl + 1)
      if (line === "") {
        if (data.length > 0) yield data.join("\n")
        data = []
      } else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""))
    }
  }
  if (data.length > 0) yield data.join("\n")
}
