/** A minimal JSON-RPC + SSE client over real HTTP (fetch), for end-to-end tests. */
export interface RpcResponse {
  readonly jsonrpc: "2.0"
  readonly id: string | number | null
  readonly result?: any
  readonly error?: { readonly code: number; readonly message: string; readonly data?: ReadonlyArray<any> }
}

let nextId = 1

export const post = async (url: string, body: string, headers: Record<string, string> = {}) => {
  const res = await fetch(`${url}/a2a`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

export const rpc = async (url: string, method: string, params: unknown, headers: Record<string, string> = {}): Promise<RpcResponse> => {
  const { text } = await post(url, JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }), headers)
  return JSON.parse(text) as RpcResponse
}

/** The result, or a thrown error carrying the JSON-RPC error. */
export const call = async (url: string, method: string, params: unknown, headers: Record<string, string> = {}) => {
  const r = await rpc(url, method, params, headers)
  if (r.error) throw new Error(`${method} failed: ${r.error.code} ${r.error.message}`)
  return r.result
}

export interface SseEvent {
  readonly id?: string
  readonly event?: string
  readonly data: any
}

export interface SseStream {
  readonly status: number
  readonly contentType: string | null
  /** The next event, or undefined when the server closed the stream. */
  readonly next: () => Promise<SseEvent | undefined>
  /** All remaining events until the server closes the stream. */
  readonly rest: () => Promise<ReadonlyArray<SseEvent>>
  /** Drop the connection (a client disconnect). */
  readonly abort: () => void
  /** Comment lines seen so far (keep-alives). */
  readonly comments: ReadonlyArray<string>
}

/** Open a streaming JSON-RPC call and read its SSE events as they arrive. */
export const stream = async (
  url: string,
  method: string,
  params: unknown,
  headers: Record<string, string> = {}
): Promise<SseStream & { readonly json?: RpcResponse }> => {
  const controller = new AbortController()
  const res = await fetch(`${url}/a2a`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
    signal: controller.signal
  })
  const contentType = res.headers.get("content-type")
  if (!contentType?.startsWith("text/event-stream")) {
    const json = JSON.parse(await res.text()) as RpcResponse
    return { status: res.status, contentType, json, next: async () => undefined, rest: async () => [], abort: () => {}, comments: [] }
  }
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  const comments: Array<string> = []
  let buffer = ""
  let done = false
  const next = async (): Promise<SseEvent | undefined> => {
    for (;;) {
      const sep = buffer.indexOf("\n\n")
      if (sep >= 0) {
        const block = buffer.slice(0, sep)
        buffer = buffer.slice(sep + 2)
        const event: { id?: string; event?: string; data?: string } = {}
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) comments.push(line)
          else if (line.startsWith("id: ")) event.id = line.slice(4)
          else if (line.startsWith("event: ")) event.event = line.slice(7)
          else if (line.startsWith("data: ")) event.data = (event.data ?? "") + line.slice(6)
        }
        if (event.data === undefined) continue
        return {
          ...(event.id !== undefined ? { id: event.id } : {}),
          ...(event.event !== undefined ? { event: event.event } : {}),
          data: JSON.parse(event.data)
        }
      }
      if (done) return undefined
      const chunk = await reader.read()
      if (chunk.done) done = true
      else buffer += decoder.decode(chunk.value, { stream: true })
    }
  }
  const rest = async () => {
    const all: Array<SseEvent> = []
    for (let e = await next(); e !== undefined; e = await next()) all.push(e)
    return all
  }
  return { status: res.status, contentType, next, rest, abort: () => controller.abort(), comments }
}

export const userMessage = (text: string, extra: Record<string, unknown> = {}) => ({
  messageId: `m-${Math.random().toString(36).slice(2)}`,
  role: "ROLE_USER",
  parts: [{ text }],
  ...extra
})

/** Poll until `check` holds (for states reached by background work). */
export const eventually = async <A>(probe: () => Promise<A>, check: (a: A) => boolean, timeoutMs = 10_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const a = await probe()
    if (check(a)) return a
    if (Date.now() > deadline) throw new Error(`condition not reached in ${timeoutMs} ms; last value: ${JSON.stringify(a)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
