import { Code, ConnectError, createClient } from "@connectrpc/connect"
import { createGrpcTransport } from "@connectrpc/connect-node"
import { type Duration, Effect } from "effect"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Outcome, type Agent } from "../../src/agent/Agent"
import { conformance } from "../../src/agent/builtins"
import { A2AService } from "../../src/grpc/gen/a2a_pb"
import { ErrorInfoSchema } from "../../src/grpc/gen/google/rpc/error_details_pb"
import { sampleValue, scrape } from "../support/prometheus"
import { call, eventually, stream, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

/**
 * Streams that cannot hurt the server (docs/streaming.md): a limit of open
 * streams per caller, and a reader that stops reading costs the server no
 * more than one socket buffer: it is caught up from the log when it reads
 * again, losing nothing.
 */

/** An agent that waits `delay`, reports `count` progress updates of `kib` KiB of `fill` each, then completes with `answer`. */
const floodingAgent = (name: string, o: { count: number; kib: number; fill: string; delay?: Duration.DurationInput; answer: string }): Agent => ({
  name,
  description: "Reports a lot of large progress, then completes.",
  version: "1.0.0",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      if (o.delay !== undefined) yield* Effect.sleep(o.delay)
      for (let i = 1; i <= o.count; i++) yield* ctx.progress(`${i} ${o.fill.repeat(o.kib * 1024)}`)
      return Outcome.complete(o.answer)
    })
})

// Floods its task: `flood` progress updates of 32 KiB each, then completes.
const flood = 80
const flooder = floodingAgent("Flooder", { count: flood, kib: 32, fill: "x", answer: "done" })

// Waits for its readers, then reports `bigFlood` progress updates of 100 KiB each (past `bigItemBytes`,
// so each is written to each stream in a later turn of the event loop), then completes with 100 KiB: the
// stream ends once that last big event is written.
const bigFlood = 12
const bigFlooder = floodingAgent("BigFlooder", {
  count: bigFlood,
  kib: 100,
  fill: "y",
  delay: "800 millis",
  answer: `done ${"z".repeat(100 * 1024)}`
})

let limited: RunningServer
let flooding: RunningServer
let bigFlooding: RunningServer
beforeAll(async () => {
  limited = await startServer({
    agent: conformance,
    maxStreamsPerPrincipal: 2,
    grpcPort: 0,
    auth: {
      apiKeys: [
        { principal: "alice", key: "alice-key-0123456789" },
        { principal: "bob", key: "bob-key-9876543210" }
      ],
      admins: ["bob"]
    }
  })
  flooding = await startServer({ agent: flooder })
  bigFlooding = await startServer({ agent: bigFlooder })
})
afterAll(async () => {
  await limited.close()
  await flooding.close()
  await bigFlooding.close()
})

const alice = { authorization: "Bearer alice-key-0123456789" }
const bob = { authorization: "Bearer bob-key-9876543210" }

const waitingTask = async (headers: Record<string, string>) => {
  const r = await call(limited.url, "SendMessage", { message: userMessage("q", { messageId: `tck-input-required-${Math.random()}` }) }, headers)
  expect(r.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
  return r.task.id as string
}

/** Open a stream; while refused as one too many (the server has not yet seen an aborted one close), try again. */
const whenFree = async <S extends { readonly json?: { readonly error?: unknown } }>(open: () => Promise<S>, retries = 50): Promise<S> => {
  let s = await open()
  for (let i = 0; s.json?.error !== undefined && i < retries; i++) {
    await new Promise((r) => setTimeout(r, 20))
    s = await open()
  }
  return s
}

describe("open streams per caller (--max-streams-per-principal)", () => {
  it("past the limit a stream request gets TOO_MANY_STREAMS, on JSON-RPC and REST; another principal is counted apart; a closed stream frees its slot", async () => {
    const taskId = await waitingTask(alice)
    const first = await stream(limited.url, "SubscribeToTask", { id: taskId }, alice)
    const second = await stream(limited.url, "SubscribeToTask", { id: taskId }, alice)
    expect(first.contentType).toMatch(/^text\/event-stream/)
    expect(second.contentType).toMatch(/^text\/event-stream/)
    expect((await first.next())?.data.result.task.id).toBe(taskId)
    expect((await second.next())?.data.result.task.id).toBe(taskId)

    const third = await stream(limited.url, "SubscribeToTask", { id: taskId }, alice)
    expect(third.json?.error?.code).toBe(-32603)
    expect(third.json?.error?.message).toMatch(/at most 2 per caller/)
    expect(third.json?.error?.data?.[0]).toMatchObject({ reason: "TOO_MANY_STREAMS", metadata: { limit: "2" } })

    const rest = await fetch(`${limited.url}/tasks/${taskId}:subscribe`, { method: "POST", headers: alice })
    expect(rest.status).toBe(429)
    expect(((await rest.json()) as { error: { details: Array<{ reason: string }> } }).error.details[0]!.reason).toBe("TOO_MANY_STREAMS")

    // A streaming send counts too.
    const send = await stream(
      limited.url,
      "SendStreamingMessage",
      { message: userMessage("q", { messageId: `tck-input-required-${Math.random()}` }) },
      alice
    )
    expect(send.json?.error?.data?.[0]?.reason).toBe("TOO_MANY_STREAMS")

    // Bob has his own two.
    const bobsTask = await waitingTask(bob)
    const bobs = await stream(limited.url, "SubscribeToTask", { id: bobsTask }, bob)
    expect(bobs.contentType).toMatch(/^text\/event-stream/)
    bobs.abort()

    first.abort()
    const again = await whenFree(() => stream(limited.url, "SubscribeToTask", { id: taskId }, alice))
    expect(again.contentType).toMatch(/^text\/event-stream/)
    again.abort()
    second.abort()
  })

  it("gRPC server streams count against the same limit and in the open-streams gauge; a canceled gRPC call frees its slot", async () => {
    const card: any = await (await fetch(`${limited.url}/.well-known/agent-card.json`)).json()
    const grpcUrl = card.supportedInterfaces.find((i: any) => i.protocolBinding === "GRPC").url
    const grpc = createClient(A2AService, createGrpcTransport({ baseUrl: `http://${grpcUrl}` }))
    const open = () => scrape(limited.url, bob).then((m) => sampleValue(m, "a2a_ledger_sse_subscribers", { agent: conformance.name }))
    expect(await open()).toBe(0)

    const taskId = await waitingTask(alice)
    const canceled = new AbortController()
    const overGrpc = grpc.subscribeToTask({ id: taskId }, { headers: alice, signal: canceled.signal })[Symbol.asyncIterator]()
    expect(((await overGrpc.next()).value as any).payload.value.id).toBe(taskId)
    const overSse = await stream(limited.url, "SubscribeToTask", { id: taskId }, alice)
    expect((await overSse.next())?.data.result.task.id).toBe(taskId)
    expect(await open()).toBe(2)

    // Alice has her two: a third is refused over gRPC as over JSON-RPC.
    const refused = await grpc
      .subscribeToTask({ id: taskId }, { headers: alice })
      [Symbol.asyncIterator]()
      .next()
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e)
      )
    expect(refused?.code).toBe(Code.ResourceExhausted)
    expect(refused?.findDetails(ErrorInfoSchema)[0]?.reason).toBe("TOO_MANY_STREAMS")
    const third = await stream(limited.url, "SubscribeToTask", { id: taskId }, alice)
    expect(third.json?.error?.data?.[0]?.reason).toBe("TOO_MANY_STREAMS")

    // The client cancels its gRPC call: the slot is free again, and the gauge says so.
    canceled.abort()
    await overGrpc.next().catch(() => undefined)
    expect(await eventually(open, (n) => n === 1)).toBe(1)
    const again = await whenFree(() => stream(limited.url, "SubscribeToTask", { id: taskId }, alice))
    expect(again.contentType).toMatch(/^text\/event-stream/)
    again.abort()
    overSse.abort()
  })

  it("a stream that ends (the task completes) frees its slot", async () => {
    for (let i = 0; i < 3; i++) {
      const message = userMessage("go", { messageId: `tck-complete-task-${i}-${Math.random()}` })
      // Each one starts as soon as the server has seen the previous test's streams close; none of this test's stays open.
      const s = await whenFree(() => stream(limited.url, "SendStreamingMessage", { message }, alice), i === 0 ? 50 : 0)
      const events = await s.rest()
      expect(events.at(-1)?.data.result.statusUpdate?.status.state).toBe("TASK_STATE_COMPLETED")
    }
  })
})

/** A streaming send over a raw socket whose reading the test controls. */
const rawStream = (url: string, body: string) => {
  const { port } = new URL(url)
  const socket = net.connect(Number(port), "127.0.0.1")
  socket.pause()
  socket.write(`POST /a2a HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  const readAll = () =>
    new Promise<string>((resolve, reject) => {
      const chunks: Array<Buffer> = []
      socket.on("data", (b: Buffer) => {
        chunks.push(b)
        // The last chunk of a chunked response: the stream is over.
        if (b.toString("latin1").endsWith("0\r\n\r\n")) {
          socket.destroy()
          resolve(Buffer.concat(chunks).toString("utf8"))
        }
      })
      socket.on("error", reject)
      socket.resume()
    })
  return { readAll }
}

describe("a reader that stops reading", () => {
  it("is caught up from the log when it reads again: every event once, in order, to COMPLETED", async () => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "SendStreamingMessage", params: { message: userMessage("flood") } })
    const s = rawStream(flooding.url, body)
    // Not reading while the agent writes ~2.5 MB of progress: far more than a socket buffer holds.
    await new Promise((r) => setTimeout(r, 1500))
    const text = await s.readAll()
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
    // The task as submitted (version 1), then every later version once: no gap, no repeat.
    expect(ids[0]).toBe(1)
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1))
    expect(text).toContain("TASK_STATE_COMPLETED")
    expect(text.match(/"text":"\d+ x/g)?.length).toBe(flood)
  })
})

describe("big events", () => {
  it("reach every stream on the task, each version once and in order, to COMPLETED: readers and a reader that stops alike", async () => {
    const sent = await call(bigFlooding.url, "SendMessage", { message: userMessage("big flood"), configuration: { returnImmediately: true } })
    const taskId = sent.task.id as string
    const readers = await Promise.all(Array.from({ length: 4 }, () => stream(bigFlooding.url, "SubscribeToTask", { id: taskId })))
    const stopped = rawStream(bigFlooding.url, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "SubscribeToTask", params: { id: taskId } }))
    // The stopped reader reads nothing while the agent writes 1.2 MB to each stream.
    const [events, text] = await Promise.all([
      Promise.all(readers.map((r) => r.rest())),
      new Promise((r) => setTimeout(r, 2500)).then(() => stopped.readAll())
    ])
    const seen = (ids: ReadonlyArray<number>, texts: string) => {
      // From the version the stream opened at, every later one once: no gap, no repeat.
      expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => ids[0]! + i))
      expect(texts).toContain("TASK_STATE_COMPLETED")
      const numbers = new Set([...texts.matchAll(/"text":"(\d+) y/g)].map((m) => Number(m[1])))
      expect([...numbers].sort((a, b) => a - b)).toEqual(Array.from({ length: bigFlood }, (_, i) => i + 1))
    }
    for (const e of events)
      seen(
        e.map((x) => Number(x.id)),
        JSON.stringify(e.map((x) => x.data))
      )
    seen(
      [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])),
      text
    )
  })
})
