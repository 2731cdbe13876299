import { Duration, Stream } from "effect"

/**
 * Server-sent events framing. Each event is `id:` (the task version, for
 * Last-Event-ID resume) and one `data:` line of JSON; a comment line every
 * keep-alive interval stops proxies from dropping an idle stream.
 */
export interface SseEvent {
  readonly id?: number
  readonly event?: string
  readonly data: unknown
}

/** Data already serialized (a JSON-RPC envelope carrying an id JSON.stringify cannot write). */
export class Encoded {
  constructor(readonly json: string) {}
}

export const frame = (e: SseEvent): string =>
  `${e.id !== undefined ? `id: ${e.id}\n` : ""}${e.event !== undefined ? `event: ${e.event}\n` : ""}data: ${
    e.data instanceof Encoded ? e.data.json : JSON.stringify(e.data)
  }\n\n`

const encoder = new TextEncoder()

export const encode = <E, R>(events: Stream.Stream<SseEvent, E, R>, keepAliveMs: number): Stream.Stream<Uint8Array, E, R> => {
  const keepAlive = Stream.tick(Duration.millis(keepAliveMs)).pipe(
    Stream.drop(1),
    Stream.map(() => ": keep-alive\n\n")
  )
  return Stream.merge(Stream.map(events, frame), keepAlive, { haltStrategy: "left" }).pipe(
    Stream.map((text) => encoder.encode(text))
  )
}

export const headers = {
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no"
} as const
