import { Context, Deferred, Effect, Either, Layer } from "effect"
import { type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type { ServerResponse } from "node:http"
import type { Feed } from "../engine/Follower.js"
import { A2AError, Errors } from "../protocol/errors.js"
import { ShuttingDown } from "./Lifecycle.js"
import { ServerConfig } from "./ServerConfig.js"
import type { SseEvent } from "./Sse.js"
import * as Sse from "./Sse.js"

/**
 * The server's open SSE streams. Each is a plain object writing to its Node
 * response: no fiber, queue or Effect stream per open stream (the request's
 * fiber ends once the stream has started), so opening and closing one is
 * O(1) and an open one holds little beside what its socket has not sent.
 *
 * - **Backpressure.** The stream stops taking items while its socket's
 *   buffer is full; the engine's follower then holds nothing and, when the
 *   socket drains, catches up from the log. A reader that never reads costs
 *   one socket buffer (and one item), not the task's history.
 * - **Encoded once.** The JSON of an event (and of a task snapshot) is
 *   encoded once per wire format and shared by every stream that sends it;
 *   only the envelope around it (the JSON-RPC id) is per stream.
 * - **A limit per caller.** At most `maxStreamsPerPrincipal` open streams per
 *   authenticated principal, or per client address without authentication;
 *   past it, a request for another stream is refused before anything starts.
 * - Keep-alive comments come from one timer for all streams; at shutdown
 *   every stream ends cleanly.
 */

/** How a binding wraps each event's data: `open` + the data's JSON (after `convert`) + `close`. */
export interface Framing {
  readonly open: string
  readonly close: string
  /** Names `convert`: streams of one flavour share encoded bodies. */
  readonly flavor: string
  readonly convert: (data: unknown) => unknown
  /** The complete JSON of the last event of a stream that failed. */
  readonly errorJson: (error: A2AError) => string
}

/** What a method writes a stream into. */
export interface StreamSink {
  /** One event; false when the reader is full (deliver no more until resumed). */
  readonly item: (event: SseEvent) => boolean
  readonly end: () => void
  readonly fail: (error: A2AError) => void
}

/** Bytes buffered per stream before it stops taking items (one item may go beyond). */
export const highWaterMark = 64 * 1024

// Encoded bodies: by the shared object they came from (an event, freed with it), or by a key naming
// what they encode (a task's snapshot at a version), the most recent few.
const byObject = new WeakMap<object, Map<string, Buffer>>()
const byKey = new Map<string, Buffer>()
const byKeyLimit = 64

const bodyOf = (e: SseEvent, framing: Framing): Buffer | string => {
  const encode = () => Buffer.from(JSON.stringify(framing.convert(e.data)))
  const shared = e.shared
  if (shared === undefined) return JSON.stringify(framing.convert(e.data))
  if (typeof shared === "string") {
    const key = `${framing.flavor}\u0000${shared}`
    let body = byKey.get(key)
    if (body === undefined) {
      body = encode()
      if (byKey.size >= byKeyLimit) byKey.delete(byKey.keys().next().value!)
      byKey.set(key, body)
    }
    return body
  }
  let bodies = byObject.get(shared)
  if (bodies === undefined) byObject.set(shared, (bodies = new Map()))
  let body = bodies.get(framing.flavor)
  if (body === undefined) bodies.set(framing.flavor, (body = encode()))
  return body
}

const keepAliveComment = ": keep-alive\n\n"

/**
 * Items this big are written by `BigWrites`, a few per turn of the event loop, rather than at once: a 0.9 MB
 * message sent to 1,500 open streams was 1,500 socket writes in one turn, and the server answered nothing
 * else for 0.6 s (docs/performance.md, "Streams that cannot hurt the server").
 */
export const bigItemBytes = 64 * 1024
/** Bytes of big items written per turn of the event loop (about a few milliseconds of socket writes). */
const bigBytesPerTurn = 4 * 1024 * 1024

/** The streams with a big item to write, in the order they got it. */
const BigWrites = {
  queue: [] as Array<LiveStream>,
  next: 0,
  scheduled: false,
  add(stream: LiveStream) {
    this.queue.push(stream)
    this.schedule()
  },
  schedule() {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => this.turn())
  },
  turn() {
    this.scheduled = false
    let bytes = 0
    while (this.next < this.queue.length && bytes < bigBytesPerTurn) bytes += this.queue[this.next++]!.writeDeferred()
    if (this.next < this.queue.length) return this.schedule()
    this.queue = []
    this.next = 0
  }
}

/** The Node response behind a request, when it has one (the platform's Node server). */
export const nodeResponseOf = (request: HttpServerRequest.HttpServerRequest): ServerResponse | undefined => {
  try {
    return NodeHttpServerRequest.toServerResponse(request)
  } catch {
    return undefined
  }
}

export class LiveStream implements StreamSink {
  private res: ServerResponse | undefined
  /** What the method wrote before the response started (the head of the stream). */
  private pending: Array<string | Buffer> = []
  private pendingBytes = 0
  private feed: Feed | undefined
  private ended = false
  private gone = false
  /** A big item taken and not yet written (BigWrites writes it); nothing else is taken meanwhile. */
  private deferred: ReadonlyArray<string | Buffer> | undefined
  /** `end` was called while an item waited: the stream ends once it is written. */
  private endAfterDeferred = false

  constructor(
    private readonly framing: Framing,
    private readonly release: (stream: LiveStream) => void
  ) {}

  /** The stream ends when its response closes, whenever that happens (before it started, too). */
  closeWith(res: ServerResponse) {
    res.once("close", () => {
      attach(res)
      this.close()
    })
  }

  /** The feed that fills this stream: resumed when the reader drains, closed when the stream ends. */
  attach(feed: Feed | undefined) {
    if (feed === undefined) return
    if (this.gone) return feed.close()
    this.feed = feed
  }

  private write(chunks: ReadonlyArray<string | Buffer>): boolean {
    const res = this.res
    if (res === undefined) {
      for (const c of chunks) {
        this.pending.push(c)
        this.pendingBytes += c.length
      }
      return this.pendingBytes < highWaterMark
    }
    let more = true
    for (const c of chunks) more = res.write(c) && more
    return more
  }

  readonly item = (e: SseEvent): boolean => {
    if (this.gone || this.ended) return false
    const head = `${e.id !== undefined ? `id: ${e.id}\n` : ""}${e.event !== undefined ? `event: ${e.event}\n` : ""}data: ${this.framing.open}`
    const body = bodyOf(e, this.framing)
    const chunks = [head, body, `${this.framing.close}\n\n`]
    if (this.deferred !== undefined) {
      // Not asked for: a feed delivers nothing after a false until `resume` (Follower). Were it to, the
      // item waits behind the big one rather than overtaking it or taking its place.
      this.deferred = [...this.deferred, ...chunks]
      return false
    }
    if (this.res !== undefined && body.length >= bigItemBytes) {
      this.deferred = chunks
      BigWrites.add(this)
      return false
    }
    return this.write(chunks)
  }

  /**
   * BigWrites' turn: write the deferred item, if any, and return the bytes written. Then the stream ends if
   * `end` was called meanwhile, or its feed is resumed unless the socket's buffer is full (its drain
   * resumes it then).
   */
  writeDeferred(): number {
    const chunks = this.deferred
    if (chunks === undefined) return 0
    this.deferred = undefined
    if (this.gone || this.res === undefined) return 0
    const more = this.write(chunks)
    if (this.endAfterDeferred) this.end()
    else if (more) this.feed?.resume()
    let bytes = 0
    for (const c of chunks) bytes += c.length
    return bytes
  }

  readonly end = () => {
    if (this.ended) return
    if (this.deferred !== undefined && !this.gone) {
      // A task's last event is often its biggest (an artifact, an answer): written in its turn, then the end.
      this.endAfterDeferred = true
      return
    }
    this.ended = true
    if (this.res !== undefined) {
      attach(this.res)
      this.res.end()
    }
    this.close()
  }

  readonly fail = (error: A2AError) => {
    if (this.ended) return
    // Rare: the item waiting (if any) goes now, before the error.
    const waiting = this.deferred
    this.deferred = undefined
    if (waiting !== undefined) this.write(waiting)
    this.write([`event: error\ndata: ${this.framing.errorJson(error)}\n\n`])
    this.end()
  }

  keepAlive() {
    // A stream whose reader is behind has bytes enough to send; a comment would only add to them.
    if (!this.gone && this.res !== undefined && this.deferred === undefined && this.res.writableLength === 0) this.res.write(keepAliveComment)
  }

  /** Stop: the feed stops listening and the stream's slot is free (idempotent). */
  close() {
    if (this.gone) return
    this.gone = true
    this.feed?.close()
    this.release(this)
  }

  /**
   * Answer with this stream on `res`, written here rather than by the platform: no pipeline, abort
   * signal or fiber per open stream. The request's fiber finishes at once; the platform is told the
   * response is finished (`detach`) so it neither writes it nor interrupts anything when it closes.
   */
  respond(res: ServerResponse): Effect.Effect<HttpServerResponse.HttpServerResponse> {
    return Effect.sync(() => {
      if (res.destroyed) {
        // The client left while the stream was being opened.
        this.close()
        return HttpServerResponse.empty()
      }
      this.res = res
      res.on("drain", () => {
        if (this.deferred === undefined) this.feed?.resume()
      })
      res.writeHead(200, { "content-type": "text/event-stream", ...Sse.headers })
      const pending = this.pending
      this.pending = []
      const more = this.write(pending)
      if (this.ended) res.end()
      else {
        detach(res)
        if (more) this.feed?.resume()
      }
      return HttpServerResponse.empty()
    })
  }
}

/**
 * The platform's Node server writes a handler's response unless `writableEnded`, and interrupts the
 * handler when the response closes before it is: a stream this module writes looks ended to it
 * (an own property over the prototype's getter) until the stream really ends.
 */
const detach = (res: ServerResponse) => Object.defineProperty(res, "writableEnded", { configurable: true, get: () => true })
const attach = (res: ServerResponse) => {
  if (Object.hasOwn(res, "writableEnded")) delete (res as { writableEnded?: boolean }).writableEnded
}

export class LiveStreams extends Context.Tag("a2a-ledger/LiveStreams")<
  LiveStreams,
  {
    /** A new stream for `caller` (a principal, or a client address), unless it has as many open as allowed. */
    readonly open: (caller: string, framing: Framing, ended?: () => void) => Either.Either<LiveStream, A2AError>
    /**
     * A place for a stream another binding writes (gRPC), counted against the same per-caller limit: the
     * function that frees it (idempotent; `ended` runs once then), or the refusal.
     */
    readonly reserve: (caller: string, ended?: () => void) => Either.Either<() => void, A2AError>
    /** Streams open now. */
    readonly size: () => number
  }
>() {}

export const tooManyStreams = (limit: number) =>
  new A2AError(
    Errors.TooManyStreams,
    `Too many open streams: at most ${limit} per caller may be open at once; close one (or resume it later with Last-Event-ID) and try again`,
    { limit: String(limit) }
  )

export const make = Effect.gen(function* () {
  const config = yield* ServerConfig
  const shuttingDown = yield* ShuttingDown
  const open = new Set<LiveStream>()
  const perCaller = new Map<string, number>()
  const limit = config.maxStreamsPerPrincipal

  let closing = false
  const endAll = () => {
    closing = true
    for (const s of [...open]) s.end()
  }
  const timer = setInterval(() => {
    for (const s of open) s.keepAlive()
  }, config.keepAliveMs)
  timer.unref()
  // At shutdown every stream ends cleanly, so the server's close() need not wait for them: when the
  // server says it is shutting down, or when this layer goes (the server's layers close before it does).
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      clearInterval(timer)
      endAll()
    })
  )
  yield* Effect.forkScoped(Effect.flatMap(Deferred.await(shuttingDown), () => Effect.sync(endAll)))

  const reserve = (caller: string, ended?: () => void): Either.Either<() => void, A2AError> => {
    if (closing)
      return Either.left(
        new A2AError(Errors.ShuttingDown, "The server is shutting down; open the stream again on another instance or after the restart")
      )
    const n = perCaller.get(caller) ?? 0
    if (n >= limit) return Either.left(tooManyStreams(limit))
    perCaller.set(caller, n + 1)
    let freed = false
    return Either.right(() => {
      if (freed) return
      freed = true
      const left = (perCaller.get(caller) ?? 1) - 1
      if (left <= 0) perCaller.delete(caller)
      else perCaller.set(caller, left)
      ended?.()
    })
  }

  return LiveStreams.of({
    size: () => open.size,
    reserve,
    open: (caller, framing, ended) =>
      Either.map(reserve(caller, ended), (free) => {
        const stream = new LiveStream(framing, (s) => {
          open.delete(s)
          free()
        })
        open.add(stream)
        return stream
      })
  })
})

export const layer = Layer.scoped(LiveStreams, make)
