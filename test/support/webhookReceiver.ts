import * as http from "node:http"

/** One webhook call as the receiver saw it. */
export interface Received {
  readonly headers: http.IncomingHttpHeaders
  readonly body: any
  /** The body as it came, byte for byte (what a signature covers). */
  readonly text: string
}

/**
 * A real local HTTP server standing in for a client's webhook. `respond`
 * decides each answer (status, or "hang" to hold the call open until
 * `release()`); only calls answered 2xx count as delivered.
 */
export interface WebhookReceiver {
  readonly url: string
  readonly port: number
  /** Every call, in arrival order, whatever it was answered. */
  readonly calls: ReadonlyArray<Received>
  /** The calls answered 2xx. */
  readonly delivered: ReadonlyArray<Received>
  /** Calls being held open right now. */
  readonly held: () => number
  respond: (call: Received, index: number) => number | "hang"
  /** Answer every held call with 200. */
  readonly release: () => void
  /** Resolves once `check` holds over the delivered calls. */
  readonly waitFor: (check: (delivered: ReadonlyArray<Received>) => boolean, timeoutMs?: number) => Promise<ReadonlyArray<Received>>
  readonly close: () => Promise<void>
}

export const startReceiver = async (port = 0): Promise<WebhookReceiver> => {
  const calls: Array<Received> = []
  const delivered: Array<Received> = []
  const holding: Array<() => void> = []
  const waiters = new Set<() => void>()
  const notify = () => {
    for (const w of waiters) w()
  }
  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // kept as text: a test will notice
      }
      const call: Received = { headers: req.headers, body, text }
      calls.push(call)
      const answer = receiver.respond(call, calls.length - 1)
      const ok = () => {
        delivered.push(call)
        res.writeHead(200).end()
        notify()
      }
      if (answer === "hang") holding.push(ok)
      else if (answer >= 200 && answer < 300) ok()
      else {
        res.writeHead(answer).end()
        notify()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
  const bound = (server.address() as { port: number }).port
  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${bound}/hook`,
    port: bound,
    calls,
    delivered,
    held: () => holding.length,
    respond: () => 200,
    release: () => {
      for (const ok of holding.splice(0)) ok()
    },
    waitFor: (check, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const probe = () => {
          if (!check(delivered)) return
          clearTimeout(timer)
          waiters.delete(probe)
          resolve(delivered)
        }
        const timer = setTimeout(() => {
          waiters.delete(probe)
          reject(new Error(`webhook condition not met in ${timeoutMs} ms; ${calls.length} calls, ${delivered.length} delivered`))
        }, timeoutMs)
        waiters.add(probe)
        probe()
      }),
    close: () =>
      new Promise((resolve) => {
        receiver.release()
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
  return receiver
}
