import { Cause, Effect, Either } from "effect"
import type { IncomingMessage } from "node:http"
import { A2AError, Errors } from "../protocol/errors.js"
import { jsonDepth } from "../protocol/normalize.js"

/**
 * Checks every binding makes of an incoming request, before any method
 * runs: the protocol version, the media type, the size and shape of the
 * body. Each returns the A2A error to answer with.
 */

/** A request's headers, lower-cased: the platform's, or Node's own (where a few may repeat). */
export type RequestHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/** What these checks read of a request, whichever server received it (the platform's, or the fast path's). */
export interface RequestHead {
  readonly url: string
  /** The URL as the client sent it, where a router stripped a mount prefix from `url`. */
  readonly originalUrl?: string
  readonly headers: RequestHeaders
}

/** A header's value (the first, if it repeats). */
export const header = (headers: RequestHeaders, name: string): string | undefined => {
  const value = headers[name]
  return typeof value === "string" ? value : value?.[0]
}

/** Far deeper than any A2A message needs; bounds the work of walking a request. */
export const maxJsonDepth = 64

/**
 * `A2A-Version`: absent, or the version the method belongs to (`1.0` for the
 * PascalCase methods, `0.3` for the `a/b` ones), is served; anything else is
 * refused (see docs/protocol.md).
 */
export const checkVersion = (request: RequestHead, speaks: "1.0" | "0.3" = "1.0"): A2AError | undefined => {
  // The query is parsed only when there is one (most requests have none).
  const fromQuery = request.url.includes("?") ? (new URL(request.url, "http://x").searchParams.get("A2A-Version") ?? undefined) : undefined
  const version = (header(request.headers, "a2a-version") ?? fromQuery ?? "").trim()
  const accepted = speaks === "1.0" ? /^1\.0(\.\d+)?$/ : /^0\.3(\.\d+)?$/
  if (version === "" || accepted.test(version)) return undefined
  return new A2AError(Errors.VersionNotSupported, `A2A-Version ${version} is not supported for this method; it is served as ${speaks}`, {
    requestedVersion: version,
    supportedVersions: speaks
  })
}

/**
 * Request bodies are JSON. An explicit other media type gets -32005. Absent,
 * any JSON type (application/json, application/a2a+json, …), and the types
 * a binding also tolerates (JSON-RPC: curl's default for `-d`) are read as JSON.
 */
export const checkContentType = (request: RequestHead, ...tolerated: ReadonlyArray<string>): A2AError | undefined => {
  const raw = header(request.headers, "content-type")
  if (raw === undefined || raw.trim() === "") return undefined
  const type = raw.split(";")[0]!.trim().toLowerCase()
  if (type === "application/json" || type.endsWith("+json") || tolerated.includes(type)) return undefined
  return new A2AError(Errors.ContentTypeNotSupported, `Content-Type ${type} is not supported; send application/json`, {
    contentType: type
  })
}

/**
 * The body as text, within `limit` bytes: refused from `Content-Length` before
 * reading, and otherwise (chunked) as soon as the bytes read pass the limit.
 * Reading then stops; the rest is never read, and the answer (413) closes the
 * connection. (The platform's own limit destroys the socket instead, so the
 * client got no answer at all.)
 */
export const readBody = (request: RequestHead, incoming: IncomingMessage, limit: number): Effect.Effect<string, A2AError> => {
  const tooLarge = (size?: number) =>
    new A2AError(
      Errors.PayloadTooLarge,
      `Request body ${size !== undefined ? `of ${size} bytes ` : ""}exceeds the limit of ${limit} bytes (--max-body-bytes, or the maxBodyBytes option when embedded)`,
      { limitBytes: String(limit) }
    )
  const declared = Number(header(request.headers, "content-length") ?? NaN)
  if (Number.isFinite(declared) && declared > limit) return Effect.fail(tooLarge(declared))
  return Effect.async<string, A2AError>((resume) => {
    const chunks: Array<Buffer> = []
    let bytes = 0
    const stop = () => {
      incoming.off("data", onData)
      incoming.off("end", onEnd)
      incoming.off("error", onError)
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes <= limit) return void chunks.push(chunk)
      stop()
      incoming.pause()
      resume(Effect.fail(tooLarge()))
    }
    const onEnd = () => {
      stop()
      resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
    }
    const onError = () => {
      stop()
      resume(Effect.fail(new A2AError(Errors.InvalidRequest, "Invalid request: the request body could not be read")))
    }
    incoming.on("data", onData)
    incoming.once("end", onEnd)
    incoming.once("error", onError)
    // No canceler: a request interrupted while its body arrives (a shutdown) leaves these listeners to
    // its own IncomingMessage, which goes with its connection, and a resume after that goes nowhere. A
    // canceler here cost every request a finalizer, and kept its objects alive past young-generation
    // collections (about 3 KB promoted a request, measured in docs/performance.md, step 31).
  })
}

/** Parse a body as JSON: -32700 when it is not, -32600 when it is nested absurdly deep. */
export const parseJson = (text: string): Either.Either<unknown, A2AError> => {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch (e) {
    return Either.left(new A2AError(Errors.ParseError, `Invalid JSON payload: ${(e as Error).message}`))
  }
  if (jsonDepth(body) > maxJsonDepth) {
    return Either.left(new A2AError(Errors.InvalidRequest, `Invalid request: JSON is nested deeper than ${maxJsonDepth} levels`))
  }
  return Either.right(body)
}

/**
 * An unexpected failure (a defect): logged in full here, answered to the
 * client as a bare internal error. An interruption (the client went away)
 * is not a failure and passes through.
 */
export const unexpected =
  (what: string) =>
  (cause: Cause.Cause<unknown>): Effect.Effect<A2AError> =>
    Cause.isInterruptedOnly(cause)
      ? Effect.failCause(cause as Cause.Cause<never>) // interruption only: no typed failure inside
      : Effect.logError(`${what} failed`, cause).pipe(Effect.as(new A2AError(Errors.Internal, "Internal error")))
