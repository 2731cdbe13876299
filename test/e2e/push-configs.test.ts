import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance } from "../../src/agent/builtins"
import { maxConfigsPerTask } from "../../src/push/PushConfigs"
import { call, rpc, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"
import { startReceiver, type WebhookReceiver } from "../support/webhookReceiver"

/**
 * Push-config methods (spec §3.1.7–§3.1.10) over JSON-RPC, v1.0 and v0.3:
 * storage, scoping, validation and the SSRF guard at registration.
 */
let server: RunningServer
let receiver: WebhookReceiver
beforeAll(async () => {
  receiver = await startReceiver()
  server = await startServer({ agent: conformance, push: { allowHosts: [`127.0.0.1`], retryBaseMs: 20, pollMs: 100 } })
})
afterAll(async () => {
  await server.close()
  await receiver.close()
})

const newTask = async (tenant?: string) =>
  (
    await call(server.url, "SendMessage", {
      message: userMessage("x", { messageId: `tck-complete-task-cfg-${Math.random().toString(36).slice(2)}` }),
      ...(tenant ? { tenant } : {})
    })
  ).task

const violation = (r: any) => r.error.data.find((d: any) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest").fieldViolations[0]

describe("push-config methods", () => {
  it("the card declares push notifications", async () => {
    const card = (await (await fetch(`${server.url}/.well-known/agent-card.json`)).json()) as any
    expect(card.capabilities.pushNotifications).toBe(true)
  })

  it("create keeps the client's id or assigns one; get and list return the config without its credentials", async () => {
    const task = await newTask()
    const mine = await call(server.url, "CreateTaskPushNotificationConfig", {
      taskId: task.id,
      id: "mine",
      url: "https://hooks.example.com/a2a",
      token: "verify-me",
      authentication: { scheme: "Bearer", credentials: "never-shown" }
    })
    expect(mine).toEqual({
      id: "mine",
      taskId: task.id,
      url: "https://hooks.example.com/a2a",
      token: "verify-me",
      authentication: { scheme: "Bearer" }
    })
    const assigned = await call(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, url: "https://hooks.example.com/b" })
    expect(assigned.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(await call(server.url, "GetTaskPushNotificationConfig", { taskId: task.id, id: "mine" })).toEqual(mine)
    const listed = await call(server.url, "ListTaskPushNotificationConfigs", { taskId: task.id })
    expect(listed.configs.map((c: any) => c.id).sort()).toEqual([assigned.id, "mine"].sort())
    expect(JSON.stringify(listed)).not.toContain("never-shown")
    expect(listed.nextPageToken).toBe("")
  })

  it("create with an existing id replaces that config", async () => {
    const task = await newTask()
    await call(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, id: "c", url: "https://a.example.com/" })
    await call(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, id: "c", url: "https://b.example.com/" })
    const listed = await call(server.url, "ListTaskPushNotificationConfigs", { taskId: task.id })
    expect(listed.configs).toEqual([{ id: "c", taskId: task.id, url: "https://b.example.com/" }])
  })

  it("list pages with pageSize and nextPageToken; a foreign token is -32602", async () => {
    const task = await newTask()
    for (const id of ["a", "b", "c"])
      await call(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, id, url: `https://${id}.example.com/` })
    const seen: Array<string> = []
    let pageToken = ""
    do {
      const page = await call(server.url, "ListTaskPushNotificationConfigs", { taskId: task.id, pageSize: 2, ...(pageToken ? { pageToken } : {}) })
      seen.push(...page.configs.map((c: any) => c.id))
      pageToken = page.nextPageToken
    } while (pageToken !== "")
    expect(seen).toEqual(["a", "b", "c"])
    const bad = await rpc(server.url, "ListTaskPushNotificationConfigs", { taskId: task.id, pageToken: "nonsense" })
    expect(bad.error!.code).toBe(-32602)
    expect(violation(bad).field).toBe("pageToken")
  })

  it("delete is permanent and idempotent; a deleted config answers -32001", async () => {
    const task = await newTask()
    await call(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, id: "d", url: "https://d.example.com/" })
    expect(await call(server.url, "DeleteTaskPushNotificationConfig", { taskId: task.id, id: "d" })).toEqual({})
    expect(await call(server.url, "DeleteTaskPushNotificationConfig", { taskId: task.id, id: "d" })).toEqual({})
    const gone = await rpc(server.url, "GetTaskPushNotificationConfig", { taskId: task.id, id: "d" })
    expect(gone.error!.code).toBe(-32001)
    expect(gone.error!.message).toContain("d of task")
  })

  it("another tenant's task and its configs answer exactly as missing ones (-32001)", async () => {
    const task = await newTask("acme")
    await call(server.url, "CreateTaskPushNotificationConfig", { tenant: "acme", taskId: task.id, id: "t", url: "https://t.example.com/" })
    const other = { tenant: "globex", taskId: task.id, id: "t" }
    for (const m of ["GetTaskPushNotificationConfig", "ListTaskPushNotificationConfigs", "DeleteTaskPushNotificationConfig"]) {
      expect((await rpc(server.url, m, other)).error!.code).toBe(-32001)
    }
    expect((await rpc(server.url, "CreateTaskPushNotificationConfig", { ...other, url: "https://x.example.com/" })).error!.code).toBe(-32001)
    expect((await call(server.url, "GetTaskPushNotificationConfig", { tenant: "acme", taskId: task.id, id: "t" })).tenant).toBe("acme")
  })

  it(`at most ${maxConfigsPerTask} configs per task`, async () => {
    const task = await newTask()
    for (let i = 0; i < maxConfigsPerTask; i++) {
      await call(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, id: `n${i}`, url: "https://n.example.com/" })
    }
    const over = await rpc(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, id: "one-more", url: "https://n.example.com/" })
    expect(over.error!.code).toBe(-32602)
    expect(over.error!.message).toContain("delete one first")
  })

  it(`an inline config on a message to an existing task counts toward the ${maxConfigsPerTask}, and a refused one records nothing`, async () => {
    const { task } = await call(server.url, "SendMessage", {
      message: userMessage("x", { messageId: `tck-input-required-cfg-${Math.random().toString(36).slice(2)}` })
    })
    expect(task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    for (let i = 0; i < maxConfigsPerTask; i++) {
      await call(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, id: `n${i}`, url: "https://n.example.com/" })
    }
    const answer = userMessage("the answer", { taskId: task.id })
    const over = await rpc(server.url, "SendMessage", {
      message: answer,
      configuration: { taskPushNotificationConfig: { id: "inline", url: "https://n.example.com/inline" }, returnImmediately: true }
    })
    expect(over.error!.code).toBe(-32602)
    expect(over.error!.message).toMatch(/configuration\.taskPushNotificationConfig: task .* already has 10 push notification configs/)
    const after = await call(server.url, "GetTask", { id: task.id })
    expect(after.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    expect((await call(server.url, "ListTaskPushNotificationConfigs", { taskId: task.id })).configs.length).toBe(maxConfigsPerTask)
    // Replacing one of the ten is fine.
    const replaced = await call(server.url, "SendMessage", {
      message: answer,
      configuration: { taskPushNotificationConfig: { id: "n0", url: "https://n.example.com/again" }, returnImmediately: true }
    })
    expect(replaced.task.id).toBe(task.id)
  })
})

describe("push-config validation and the SSRF guard", () => {
  const create = async (config: Record<string, unknown>) => {
    const task = await newTask()
    return rpc(server.url, "CreateTaskPushNotificationConfig", { taskId: task.id, ...config })
  }

  it.each([
    ["url", { url: "" }],
    ["url", { url: "not a url" }],
    ["url", { url: "ftp://example.com/hook" }],
    ["url", { url: "file:///etc/passwd" }],
    ["taskId", { taskId: "", url: "https://example.com/" }],
    ["token", { url: "https://example.com/", token: "a\r\nX-Injected: 1" }],
    ["authentication.scheme", { url: "https://example.com/", authentication: { scheme: "Bearer token" } }],
    ["authentication.credentials", { url: "https://example.com/", authentication: { scheme: "Bearer", credentials: "é\n" } }]
  ])("-32602 naming %s for %j", async (field, config) => {
    const r = await create(config)
    expect(r.error!.code).toBe(-32602)
    expect(violation(r).field).toBe(field)
  })

  it.each([
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://172.20.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://127.0.0.2:8080/hook",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://0.0.0.0/hook"
  ])("refuses the internal target %s unless allowed", async (url) => {
    const r = await create({ url })
    expect(r.error!.code).toBe(-32602)
    expect(violation(r).field).toBe("url")
    expect(r.error!.message).toContain("--allow-webhook-host")
  })

  it("accepts public hosts, and the allowed 127.0.0.1", async () => {
    for (const url of ["https://example.com/hook", "http://93.184.216.34/hook", "http://127.0.0.1:1/hook"]) {
      const r = await create({ url })
      expect(r.error).toBeUndefined()
    }
  })

  it("the inline config of SendMessage is checked the same way, naming its path, and nothing is created", async () => {
    const before = (await call(server.url, "ListTasks", {})).totalSize
    const r = await rpc(server.url, "SendMessage", {
      message: userMessage("x", { messageId: "tck-complete-task-inline" }),
      configuration: { taskPushNotificationConfig: { url: "http://10.9.9.9/" } }
    })
    expect(r.error!.code).toBe(-32602)
    expect(violation(r).field).toBe("configuration.taskPushNotificationConfig.url")
    expect((await call(server.url, "ListTasks", {})).totalSize).toBe(before)
  })

  it("an inline config is stored with the new task under the id it was given", async () => {
    const r = await call(server.url, "SendMessage", {
      message: userMessage("x", { messageId: "tck-complete-task-inline-ok" }),
      configuration: { taskPushNotificationConfig: { id: "inline", url: receiver.url } }
    })
    const config = await call(server.url, "GetTaskPushNotificationConfig", { taskId: r.task.id, id: "inline" })
    expect(config).toEqual({ id: "inline", taskId: r.task.id, url: receiver.url })
  })
})

describe("push configs from v0.3 clients", () => {
  it("tasks/pushNotificationConfig/set|get|list|delete speak v0.3 shapes", async () => {
    const task = await newTask()
    const config = { id: "v3", url: receiver.url, token: "tok", authentication: { schemes: ["Bearer"], credentials: "c" } }
    const set = await call(server.url, "tasks/pushNotificationConfig/set", { taskId: task.id, pushNotificationConfig: config })
    const expected = {
      taskId: task.id,
      pushNotificationConfig: { id: "v3", url: receiver.url, token: "tok", authentication: { schemes: ["Bearer"] } }
    }
    expect(set).toEqual(expected)
    expect(await call(server.url, "tasks/pushNotificationConfig/get", { id: task.id, pushNotificationConfigId: "v3" })).toEqual(expected)
    expect(await call(server.url, "tasks/pushNotificationConfig/list", { id: task.id })).toEqual([expected])
    expect(await call(server.url, "tasks/pushNotificationConfig/delete", { id: task.id, pushNotificationConfigId: "v3" })).toBeNull()
    expect(await call(server.url, "tasks/pushNotificationConfig/list", { id: task.id })).toEqual([])
  })

  it("a config registered by a v0.3 message/send receives the Task in v0.3 shape, with its Authorization", async () => {
    const from = receiver.delivered.length
    const sent = await call(server.url, "message/send", {
      message: { kind: "message", messageId: "tck-complete-task-v03-push", role: "user", parts: [{ kind: "text", text: "hi" }] },
      configuration: { pushNotificationConfig: { url: receiver.url, authentication: { schemes: ["Bearer"], credentials: "old" } } }
    })
    const got = (await receiver.waitFor((d) => d.slice(from).some((c) => c.body.status?.state === "completed"))).slice(from)
    expect(got.map((c) => c.body.status.state)).toContain("completed")
    for (const c of got) {
      expect(c.body).toMatchObject({ kind: "task", id: sent.id })
      expect(c.headers.authorization).toBe("Bearer old")
    }
  })
})
