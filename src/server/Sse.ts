/**
 * Server-sent events. Each event is `id:` (the task version, for
 * Last-Event-ID resume) and one `data:` line of JSON; a comment line every
 * keep-alive interval stops proxies from dropping an idle stream. The
 * streams themselves are written by LiveStreams.
 */
export interface SseEvent {
  readonly id?: number
  readonly event?: string
  readonly data: unknown
  /**
   * What `data` was made from, when other streams send it too: the object (an event) or a key naming
   * it (a task at a version). Streams share its encoding (LiveStreams).
   */
  readonly shared?: object | string
}

export const headers = {
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no"
} as const
