import { Cause, Effect, Either, Option } from "effect"
import { HttpServerRequest } from "@effect/platform"
import { A2AError, Errors } from "../protocol/errors"
import { jsonDepth } from "../protocol/normalize"

/**
 * Checks every binding makes of an incoming request, before any method
 * runs: the protocol version, the media type, the size and shape of the
 * body. Each returns the A2A error to answer with.
 */

/** Far deeper than any A2A message needs; bounds the work of walking a request. */
export const maxJsonDepth = 64

/**
 * `A2A-Version`: absent, or the version the method belongs to (`1.0` for the
 * PascalCase methods, `0.3` for the `a/b` ones), is served; anything else is
 * refused (see docs/protocol.md).
 */
export const checkVersion = (request: HttpServerRequest.HttpServerRequest, speaks: "1.0" | "0.3" = "1.0"): A2AError | undefined => {
  const fromQuery = new URL(request.url, "http://x").searchParams.get("A2A-Version") ?? undefined
  const version = (request.headers["a2a-version"] ?? fromQuery ?? "").trim()
  const accepted = speaks === "1.0" ? /^1\.0(\.\d+)?$/ : /^0\.3(\.\d+)?$/
  if (version === "" || accepted.test(version)) return undefined
  return new A2AError(
    Errors.VersionNotSupported,
    `A2A-Version ${version} is not supported for this method; it is served as ${speaks}`,
    { requestedVersion: version, supportedVersions: speaks }
  )
}

/**
 * Request bodies are JSON. An explicit other media type gets -32005. Absent,
 * any JSON type (application/json, application/a2a+json, …), and the types
 * a binding also tolerates (JSON-RPC: curl's default for `-d`) are read as JSON.
 */
export const checkContentType = (
  request: HttpServerRequest.HttpServerRequest,
  ...tolerated: ReadonlyArray<string>
): A2AError | undefined => {
  const raw = request.headers["content-type"]
  if (raw === undefined || raw.trim() === "") return undefined
  const type = raw.split(";")[0]!.trim().toLowerCase()
  if (type === "application/json" || type.endsWith("+json") || tolerated.includes(type)) return undefined
  return new A2AError(Errors.ContentTypeNotSupported, `Content-Type ${type} is not supported; send application/json`, {
    contentType: type
  })
}

export const readBody = (request: HttpServerRequest.HttpServerRequest, limit: number) => {
  const tooLarge = (size?: number) =>
    new A2AError(
      Errors.InvalidRequest,
      `Request body ${size !== undefined ? `of ${size} bytes ` : ""}exceeds the limit of ${limit} bytes (--max-body-bytes)`,
      { limitBytes: String(limit) }
    )
  const declared = Number(request.headers["content-length"] ?? NaN)
  if (Number.isFinite(declared) && declared > limit) return Effect.fail(tooLarge(declared))
  return request.text.pipe(
    HttpServerRequest.withMaxBodySize(Option.some(limit)),
    Effect.mapError(() => tooLarge())
  )
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
export const unexpected = (what: string) => (cause: Cause.Cause<unknown>): Effect.Effect<A2AError> =>
  Cause.isInterruptedOnly(cause)
    ? Effect.failCause(cause as Cause.Cause<never>) // interruption only: no typed failure inside
    : Effect.logError(`${what} failed`, cause).pipe(Effect.as(new A2AError(Errors.Internal, "Internal error")))
