import { describe, expect, it } from "vitest"
import type { AgentExecutor } from "@a2a-js/sdk/server"
import { Deferred, Effect, Exit, FiberId, Tracer } from "effect"
import * as http from "node:http"
import * as path from "node:path"
import { type Agent, type DelegateOptions, Outcome } from "../../src/agent/Agent"
import { textOf } from "../../src/domain/Message"
import type { TaskEvent } from "../../src/domain/TaskEvent"
import { anonymous, settled, TaskEngine } from "../../src/engine/TaskEngine"
import type * as Embedded from "../../src/layers/Embedded"
import { events, getTask, send, startEngine, taskIdOf, waitFor } from "../support/embeddedEngine"
import { call, eventually, userMessage } from "../support/rpc"
import { sdkEvents, sdkTextOf, startSdkServer } from "../support/sdkServer"
import { startAgentsServer, startServer, tempDir } from "../support/server"
import { storedEvents } from "../support/storeEvents"
import { verifyStore } from "../support/verifyStore"

/** The parent: an embedded engine on a SQLite file whose agent delegates. */
const startParent = (agent: Agent, db = path.join(tempDir(), "parent.db"), delegation?: Embedded.EmbeddedOptions["delegation"]) =>
  startEngine(agent, { db, ...(delegation !== undefined ? { delegation } : {}) })
const delegations = (es: ReadonlyArray<TaskEvent>) =>
  es.filter((e): e is Extract<TaskEvent, { type: "DelegationStarted" }> => e.type === "DelegationStarted")

/** A parent agent that delegates its input's text to `url` and completes with the remote's answer. */
const delegating = (url: () => string, options?: DelegateOptions): Agent => ({
  name: "parent",
  description: "",
  version: "1",
  skills: [],
  run: (ctx) =>
    Effect.map(ctx.delegate(url(), textOf(ctx.input), options), (r) =>
      Outcome.complete(`${r.state.replace("TASK_STATE_", "")}: ${r.text}${r.artifacts.map((a) => ` [${a.parts[0]?.text}]`).join("")}`)
    )
})

/** The remote a2a-ledger agent: says it works, then (once `release` is done, if given) completes with the text upper-cased, or fails on "fail". */
const child = (release?: Deferred.Deferred<void>): Agent => ({
  name: "child",
  description: "",
  version: "1",
  skills: [],
  run: (ctx) =>
    Effect.gen(function* () {
      const text = textOf(ctx.input)
      yield* ctx.progress(`working on ${text}`)
      if (release !== undefined) yield* Deferred.await(release)
      if (text === "fail") return Outcome.fail("the child cannot")
      return Outcome.complete(text.toUpperCase(), { artifacts: [{ artifactId: "a", parts: [{ text: `${text}!` }] }] })
    })
})

const remoteTasks = async (url: string) => (await call(url, "ListTasks", {})).tasks as ReadonlyArray<{ id: string; status: { state: string } }>

describe("delegation to another a2a-ledger server (ctx.delegate)", () => {
  it("sends the message, waits for the remote task, and returns its result; the remote task is recorded; progress is forwarded", async () => {
    const remote = await startServer({ agent: child() })
    const parent = await startParent(delegating(() => remote.url, { forwardProgress: true }))
    try {
      const taskId = taskIdOf(await parent.run(send("hello")))
      await parent.run(waitFor(taskId, settled))
      const task = await parent.run(getTask(taskId))
      expect(task.task.status.state).toBe("TASK_STATE_COMPLETED")
      expect(textOf(task.task.status.message!)).toBe("COMPLETED: HELLO [hello!]")
      // The remote's progress, as this task's.
      expect(task.task.history.map((m) => textOf(m))).toContain("working on hello")
      const started = delegations(await parent.run(events(taskId)))
      const [remoteTask] = await remoteTasks(remote.url)
      expect(started).toHaveLength(1)
      expect(started[0]).toMatchObject({ url: remote.url, remoteTaskId: remoteTask!.id, attempt: 1, sequence: 1 })
    } finally {
      await parent.close()
      await remote.close()
    }
    expect(await verifyStore(parent.db)).toBe(1)
  })

  it("a restart of the parent mid-delegation watches the same remote task again: the message is not sent twice", async () => {
    const release = Deferred.unsafeMake<void>(FiberId.none)
    const remote = await startServer({ agent: child(release) })
    const db = path.join(tempDir(), "parent.db")
    try {
      const first = await startParent(
        delegating(() => remote.url),
        db
      )
      const taskId = taskIdOf(await first.run(send("again")))
      await eventually(
        async () => delegations(await first.run(events(taskId))).length,
        (n) => n === 1
      )
      await first.close()
      // The remote task finishes while no parent runs.
      Deferred.unsafeDone(release, Exit.void)
      const second = await startParent(
        delegating(() => remote.url),
        db
      )
      try {
        await second.run(waitFor(taskId, settled))
        expect(textOf((await second.run(getTask(taskId))).task.status.message!)).toBe("COMPLETED: AGAIN [again!]")
        expect(await remoteTasks(remote.url)).toHaveLength(1)
        expect(delegations(await second.run(events(taskId)))).toHaveLength(1)
      } finally {
        await second.close()
      }
    } finally {
      await remote.close()
    }
  })

  it("canceling the parent cancels the remote task it waits on", async () => {
    const never = Deferred.unsafeMake<void>(FiberId.none)
    const remote = await startServer({ agent: child(never) })
    const parent = await startParent(delegating(() => remote.url))
    try {
      const taskId = taskIdOf(await parent.run(send("stop me")))
      const started = await eventually(
        async () => delegations(await parent.run(events(taskId))),
        (d) => d.length === 1
      )
      const canceled = await parent.run(Effect.flatMap(TaskEngine, (e) => e.cancel(taskId, anonymous)))
      expect(canceled.task.status.state).toBe("TASK_STATE_CANCELED")
      const remoteTask = await eventually(
        async () => (await call(remote.url, "GetTask", { id: started[0]!.remoteTaskId })).status.state,
        (s) => s === "TASK_STATE_CANCELED"
      )
      expect(remoteTask).toBe("TASK_STATE_CANCELED")
    } finally {
      await parent.close()
      await remote.close()
    }
  })

  it("a failing remote fails the attempt: the retry policy sends a new remote task, and the last failure fails the parent", async () => {
    const remote = await startServer({ agent: child() })
    const parent = await startParent(delegating(() => remote.url, { retry: { attempts: 2, initialDelayMs: 10, jitter: false } }))
    try {
      const taskId = taskIdOf(await parent.run(send("fail")))
      await parent.run(waitFor(taskId, settled))
      const task = await parent.run(getTask(taskId))
      expect(task.task.status.state).toBe("TASK_STATE_FAILED")
      expect(textOf(task.task.status.message!)).toMatch(/ended FAILED: the child cannot/)
      const log = await parent.run(events(taskId))
      expect(delegations(log).map((d) => d.attempt)).toEqual([1, 2])
      expect(log.filter((e) => e.type === "StepAttemptFailed")).toHaveLength(2)
      expect((await remoteTasks(remote.url)).map((t) => t.status.state)).toEqual(["TASK_STATE_FAILED", "TASK_STATE_FAILED"])
    } finally {
      await parent.close()
      await remote.close()
    }
  })

  it("credentials for the remote's host come from the configuration", async () => {
    const remote = await startServer({ agent: child(), auth: { apiKeys: [{ principal: "parent", key: "s3cret" }] } })
    const host = new URL(remote.url).host
    const noRetry = { retry: { attempts: 1 } }
    const without = await startParent(delegating(() => remote.url, noRetry))
    const withKey = await startParent(
      delegating(() => remote.url, noRetry),
      path.join(tempDir(), "parent.db"),
      { credentials: [{ host, apiKey: "s3cret" }] }
    )
    try {
      const refused = taskIdOf(await without.run(send("who")))
      await without.run(waitFor(refused, settled))
      expect((await without.run(getTask(refused))).task.status.state).toBe("TASK_STATE_FAILED")
      const allowed = taskIdOf(await withKey.run(send("who")))
      await withKey.run(waitFor(allowed, settled))
      expect(textOf((await withKey.run(getTask(allowed))).task.status.message!)).toBe("COMPLETED: WHO [who!]")
    } finally {
      await without.close()
      await withKey.close()
      await remote.close()
    }
  })

  it("an agent hosted on the same several-agent server is delegated to by its URL", async () => {
    const dir = tempDir()
    let url = ""
    const server = await startAgentsServer({
      agents: [
        { name: "parent", agent: delegating(() => `${url}/agents/child`), db: path.join(dir, "parent.db") },
        { name: "child", agent: child(), db: path.join(dir, "child.db") }
      ]
    })
    url = server.url
    try {
      const sent = await call(`${url}/agents/parent`, "SendMessage", { message: userMessage("local") })
      const done = await eventually(
        () => call(`${url}/agents/parent`, "GetTask", { id: sent.task.id }),
        (t) => t.status.state === "TASK_STATE_COMPLETED"
      )
      expect(done.status.message.parts[0].text).toBe("COMPLETED: LOCAL [local!]")
      // The child's own store has the task the parent's journal names.
      const [childTask] = await remoteTasks(`${url}/agents/child`)
      const started = delegations((await storedEvents(path.join(dir, "parent.db"), sent.task.id)).map((e) => e.event))
      expect(started).toMatchObject([{ url: `${url}/agents/child`, remoteTaskId: childTask!.id }])
    } finally {
      await server.close()
    }
  })
})

describe("delegation carries the trace", () => {
  /** A remote that answers every message with a message, and keeps each request's headers. */
  const recordingRemote = async () => {
    const headers: Array<http.IncomingHttpHeaders> = []
    const server = http.createServer((req, res) => {
      let body = ""
      req.on("data", (c) => (body += c))
      req.on("end", () => {
        headers.push(req.headers)
        const { id } = JSON.parse(body || "{}")
        res.writeHead(req.method === "POST" ? 200 : 404, { "content-type": "application/json" })
        res.end(JSON.stringify({ jsonrpc: "2.0", id, result: { message: { messageId: "r1", role: "ROLE_AGENT", parts: [{ text: "noted" }] } } }))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    return { url, posts: () => headers, close: () => new Promise<void>((r) => server.close(() => r())) }
  }
  // A tracer of the application's (here: Effect's own spans, recorded nowhere): the engine's spans join it.
  const native = Effect.runSync(Effect.tracer)
  const appTracer = Tracer.make({ span: (...args) => native.span(...args), context: (f, fiber) => native.context(f, fiber) })

  it.each([
    ["with a tracer, the delegated call carries traceparent", true],
    ["without one, it carries none", false]
  ] as const)("%s", async (_, traced) => {
    const remote = await recordingRemote()
    const parent = await startEngine(
      delegating(() => remote.url),
      traced ? { tracer: appTracer } : {}
    )
    try {
      const taskId = taskIdOf(await parent.run(send("hello")))
      await parent.run(waitFor(taskId, settled))
      const calls = remote.posts().filter((h) => h["content-type"] === "application/json")
      expect(calls.length).toBe(1)
      if (traced) expect(calls[0]!.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
      else expect(calls[0]!.traceparent).toBeUndefined()
    } finally {
      await parent.close()
      await remote.close()
    }
  })
})

describe("delegation to the official SDK's server", () => {
  /** Completes with an artifact; "fail" fails; "wait" works until canceled. */
  const executor = (): AgentExecutor & { readonly waiting: Map<string, () => void> } => {
    const waiting = new Map<string, () => void>()
    return {
      waiting,
      execute: async (context: any, bus) => {
        const { taskId, contextId } = context
        const text = sdkTextOf(context.userMessage)
        bus.publish(sdkEvents.task(taskId, contextId, context.userMessage))
        bus.publish(sdkEvents.status(taskId, contextId, 2))
        if (text === "wait" || text === "hold") {
          await new Promise<void>((resolve) => waiting.set(taskId, resolve))
          // A held task is let go to finish; a waiting one only ends by a cancel.
          if (text === "hold") {
            bus.publish(sdkEvents.artifact(taskId, contextId, "HELD"))
            bus.publish(sdkEvents.status(taskId, contextId, 3))
          }
          return
        }
        if (text === "fail") {
          bus.publish(sdkEvents.status(taskId, contextId, 4))
          return
        }
        bus.publish(sdkEvents.artifact(taskId, contextId, text.toUpperCase()))
        bus.publish(sdkEvents.status(taskId, contextId, 3))
      },
      cancelTask: async (taskId, bus) => {
        bus.publish(sdkEvents.status(taskId, "", 5))
        waiting.get(taskId)?.()
      }
    }
  }

  it("delegates to it and returns its result", async () => {
    const sdk = await startSdkServer(executor())
    const parent = await startParent(delegating(() => sdk.url))
    try {
      const taskId = taskIdOf(await parent.run(send("sdk")))
      await parent.run(waitFor(taskId, settled))
      expect(textOf((await parent.run(getTask(taskId))).task.status.message!)).toBe("COMPLETED:  [SDK]")
    } finally {
      await parent.close()
      await sdk.close()
    }
  })

  it("a restart of the parent mid-delegation watches the same SDK task again", async () => {
    const running = executor()
    const sdk = await startSdkServer(running)
    const db = path.join(tempDir(), "parent.db")
    try {
      const first = await startParent(
        delegating(() => sdk.url),
        db
      )
      const taskId = taskIdOf(await first.run(send("hold")))
      const started = await eventually(
        async () => delegations(await first.run(events(taskId))),
        (d) => d.length === 1
      )
      await first.close()
      // The SDK's task finishes while no parent runs; the restarted parent finds it done.
      running.waiting.get(started[0]!.remoteTaskId)?.()
      const second = await startParent(
        delegating(() => sdk.url),
        db
      )
      try {
        await second.run(waitFor(taskId, settled))
        expect(textOf((await second.run(getTask(taskId))).task.status.message!)).toBe("COMPLETED:  [HELD]")
        expect(delegations(await second.run(events(taskId)))).toHaveLength(1)
        expect(running.waiting.size).toBe(1)
      } finally {
        await second.close()
      }
    } finally {
      await sdk.close()
    }
  })

  it("a failing SDK task fails the parent after the retries; canceling the parent cancels the SDK task", async () => {
    const running = executor()
    const sdk = await startSdkServer(running)
    const failing = await startParent(delegating(() => sdk.url, { retry: { attempts: 2, initialDelayMs: 10 } }))
    const waiting = await startParent(
      delegating(() => sdk.url),
      path.join(tempDir(), "parent.db")
    )
    try {
      const failed = taskIdOf(await failing.run(send("fail")))
      await failing.run(waitFor(failed, settled))
      expect((await failing.run(getTask(failed))).task.status.state).toBe("TASK_STATE_FAILED")
      expect(delegations(await failing.run(events(failed)))).toHaveLength(2)

      const taskId = taskIdOf(await waiting.run(send("wait")))
      const started = await eventually(
        async () => delegations(await waiting.run(events(taskId))),
        (d) => d.length === 1
      )
      await waiting.run(Effect.flatMap(TaskEngine, (e) => e.cancel(taskId, anonymous)))
      await eventually(
        async () => (await call(sdk.url, "GetTask", { id: started[0]!.remoteTaskId }, { "A2A-Version": "1.0" })).status.state,
        (s) => s === "TASK_STATE_CANCELED"
      )
    } finally {
      await failing.close()
      await waiting.close()
      await sdk.close()
    }
  })
})
