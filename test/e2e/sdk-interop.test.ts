import { Role, TaskState } from "@a2a-js/sdk"
import { ClientFactory, ClientFactoryOptions } from "@a2a-js/sdk/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance, slowWorker } from "../../src/agent/builtins"
import { eventually } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

/**
 * A second opinion: the official A2A JavaScript client (@a2a-js/sdk) drives
 * our server through send, stream, get, cancel and resubscribe, discovering
 * it from the agent card like any client would.
 */
let slow: RunningServer
let tck: RunningServer
beforeAll(async () => {
  // Long steps: the task is surely still working when the client cancels it.
  slow = await startServer({ agent: slowWorker({ stepDelayMs: 2_000 }) })
  tck = await startServer({ agent: conformance })
})
afterAll(async () => {
  await slow.close()
  await tck.close()
})

const message = (text: string, messageId = `sdk-${Math.random().toString(36).slice(2)}`, extra: Record<string, unknown> = {}) =>
  ({ messageId, role: Role.ROLE_USER, parts: [{ content: { $case: "text", value: text } }], ...extra }) as any

const kindOf = (e: any): string => e.payload?.$case ?? Object.keys(e)[0]

describe.each(["JSONRPC", "HTTP+JSON"] as const)("@a2a-js/sdk client against a2a-ledger over %s", (transport) => {
  const client = async (url: string) => {
    const c = await new ClientFactory(
      ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { preferredTransports: [transport] })
    ).createFromUrl(url)
    // The SDK really uses the transport under test.
    expect(c.transport.constructor.name).toMatch(transport === "JSONRPC" ? /JsonRpc/i : /Rest/i)
    return c
  }

  it("discovers the server from its card and sends a blocking message", async () => {
    const c = await client(tck.url)
    expect(c.protocolVersion).toBe("1.0")
    const result: any = await c.sendMessage({ message: message("hi", "tck-artifact-text-sdk") } as any)
    const task = result.payload?.value ?? result
    expect(task.status.state).toBe(TaskState.TASK_STATE_COMPLETED)
    expect(task.artifacts[0].artifactId).toBe("text-artifact")
  })

  it("gets a Message answer as a Message", async () => {
    const c = await client(tck.url)
    const result: any = await c.sendMessage({ message: message("hi", "tck-message-response-sdk") } as any)
    expect(result.role).toBe(Role.ROLE_AGENT)
    expect(result.parts[0].content).toEqual({ $case: "text", value: "Direct message response" })
  })

  it("streams a task to completion", async () => {
    const c = await client(tck.url)
    const events: Array<any> = []
    for await (const event of c.sendMessageStream({ message: message("go", "tck-stream-sdk") } as any)) events.push(event)
    expect(events.map(kindOf)).toEqual(["task", "statusUpdate", "artifactUpdate", "statusUpdate"])
    expect(events[2].payload.value.artifact.parts[0].content).toEqual({ $case: "text", value: "Streamed content" })
    expect(events[3].payload.value.status.state).toBe(TaskState.TASK_STATE_COMPLETED)
  })

  it("gets, cancels and resubscribes", async () => {
    const c = await client(slow.url)
    const sent: any = await c.sendMessage({ message: message("long job"), configuration: { returnImmediately: true } } as any)
    const task = sent.payload?.value ?? sent
    expect(task.status.state).toBe(TaskState.TASK_STATE_SUBMITTED)

    // Resubscribe, read the snapshot, then leave.
    const stream = c.resubscribeTask({ id: task.id } as any)
    const first = await stream.next()
    expect(kindOf(first.value)).toBe("task")
    await stream.return(undefined)

    await eventually(
      () => c.getTask({ id: task.id } as any),
      (t: any) => t.status.state === TaskState.TASK_STATE_WORKING
    )
    const canceled: any = await c.cancelTask({ id: task.id } as any)
    expect(canceled.status.state).toBe(TaskState.TASK_STATE_CANCELED)
    const got: any = await c.getTask({ id: task.id, historyLength: 1 } as any)
    expect(got.status.state).toBe(TaskState.TASK_STATE_CANCELED)
    expect(got.history.length).toBe(1)
  })

  it("lists tasks", async () => {
    const c = await client(tck.url)
    const page: any = await c.listTasks({
      tenant: "",
      contextId: "",
      status: TaskState.TASK_STATE_UNSPECIFIED,
      pageSize: 1,
      pageToken: "",
      statusTimestampAfter: undefined
    })
    expect(page.tasks.length).toBe(1)
    expect(page.totalSize).toBeGreaterThanOrEqual(2)
    expect(page.nextPageToken).not.toBe("")
  })

  it("creates, gets, lists and deletes a push notification config", async () => {
    const c = await client(tck.url)
    const result: any = await c.sendMessage({ message: message("done", "tck-complete-task-sdk-push") } as any)
    const taskId = (result.payload?.value ?? result).id
    const config = {
      tenant: "",
      id: "sdk-hook",
      taskId,
      url: "https://example.com/hook",
      token: "t0k",
      authentication: { scheme: "Bearer", credentials: "secret" }
    }
    const created: any = await c.createTaskPushNotificationConfig(config as any)
    expect(created).toMatchObject({ id: "sdk-hook", taskId, url: "https://example.com/hook", token: "t0k" })
    expect(created.authentication?.scheme).toBe("Bearer")
    const got: any = await c.getTaskPushNotificationConfig({ tenant: "", taskId, id: "sdk-hook" } as any)
    expect(got.url).toBe("https://example.com/hook")
    const listed: any = await c.listTaskPushNotificationConfig({ tenant: "", taskId, pageSize: 10, pageToken: "" } as any)
    expect(listed.configs.map((x: any) => x.id)).toEqual(["sdk-hook"])
    await c.deleteTaskPushNotificationConfig({ tenant: "", taskId, id: "sdk-hook" } as any)
    const after: any = await c.listTaskPushNotificationConfig({ tenant: "", taskId, pageSize: 10, pageToken: "" } as any)
    expect(after.configs).toEqual([])
  })

  it("surfaces our errors as the SDK's typed errors", async () => {
    const c = await client(tck.url)
    const error: any = await c.getTask({ id: "no-such-task" } as any).catch((e) => e)
    expect(error).toBeInstanceOf(Error)
    expect(`${error.name} ${error.message}`).toMatch(/TaskNotFound|not found/i)
  })
})
