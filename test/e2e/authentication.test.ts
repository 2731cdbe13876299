import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import * as jose from "jose"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance } from "../../src/agent/builtins"
import { runCli, spawnServer } from "../support/process"
import { rpc, stream, userMessage } from "../support/rpc"
import { type RunningServer, startServer, tempDir } from "../support/server"

/**
 * Authentication and per-principal scoping (spec §7, §13; issue 3): API keys,
 * JWTs verified against a real JWKS endpoint, 401s, and another principal's
 * task answering exactly as a missing one.
 */
let server: RunningServer
let jwks: http.Server
let jwksUrl: string
let signingKey: jose.CryptoKey
let strangerKey: jose.CryptoKey

const alice = { authorization: "Bearer alice-key-0123456789" }
const bob = { "x-api-key": "bob-key-9876543210" }
const issuer = "https://issuer.test/"
const audience = "a2a-ledger-tests"

const token = (claims: Record<string, unknown>, key = signingKey, options: { exp?: string; iss?: string; aud?: string } = {}) =>
  new jose.SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? audience)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? "5m")
    .sign(key)

beforeAll(async () => {
  const pair = await jose.generateKeyPair("ES256")
  signingKey = pair.privateKey
  strangerKey = (await jose.generateKeyPair("ES256")).privateKey
  const publicJwk = { ...(await jose.exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }
  jwks = http.createServer((_, res) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [publicJwk] })))
  await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r))
  jwksUrl = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks.json`
  server = await startServer({
    agent: conformance,
    auth: {
      apiKeys: [
        { principal: "alice", key: "alice-key-0123456789" },
        { principal: "bob", key: "bob-key-9876543210" }
      ],
      jwt: { jwksUrl, issuer, audience }
    }
  })
})
afterAll(async () => {
  await server.close()
  jwks.close()
})

const send = (headers: Record<string, string>, messageId = "tck-input-required-auth") =>
  rpc(server.url, "SendMessage", { message: userMessage("hi", { messageId }) }, headers)

describe("authentication", () => {
  it("a call without credentials is 401 with the A2A error and a Bearer challenge, on both bindings", async () => {
    const res = await fetch(`${server.url}/a2a`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "GetTask", params: { id: "x" } })
    })
    expect(res.status).toBe(401)
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="a2a-ledger"')
    const body = (await res.json()) as any
    expect(body.error.code).toBe(-32000)
    expect(body.error.message).toMatch(/authentication required/)
    expect(body.error.data[0]).toMatchObject({ reason: "UNAUTHENTICATED" })

    const rest = await fetch(`${server.url}/tasks`)
    expect(rest.status).toBe(401)
    expect(rest.headers.get("www-authenticate")).toBe('Bearer realm="a2a-ledger"')
    expect(((await rest.json()) as any).error).toMatchObject({ code: 401, status: "UNAUTHENTICATED" })
  })

  it("wrong keys, malformed headers and bad tokens are 401; nothing is created", async () => {
    const bad: Array<Record<string, string>> = [
      { authorization: "Bearer not-a-key" },
      { authorization: "Basic YWxpY2U6eA==" },
      { "x-api-key": "alice-key-012345678" },
      { authorization: `Bearer ${await token({ sub: "alice" }, strangerKey)}` },
      { authorization: `Bearer ${await token({ sub: "alice" }, signingKey, { exp: "-1m" })}` },
      { authorization: `Bearer ${await token({ sub: "alice" }, signingKey, { iss: "https://evil.test/" })}` },
      { authorization: `Bearer ${await token({ sub: "alice" }, signingKey, { aud: "someone-else" })}` },
      { authorization: `Bearer ${await token({ name: "no subject" })}` }
    ]
    for (const headers of bad) {
      const r = await send(headers)
      expect(r.error?.code, JSON.stringify(headers)).toBe(-32000)
    }
    const list = await rpc(server.url, "ListTasks", {}, alice)
    expect(list.result.tasks.every((t: any) => t.history[0].messageId !== "tck-input-required-auth")).toBe(true)
  })

  it("the agent card stays public and declares the schemes", async () => {
    const res = await fetch(`${server.url}/.well-known/agent-card.json`)
    expect(res.status).toBe(200)
    const card = (await res.json()) as any
    expect(card.securitySchemes).toEqual({
      apiKey: { apiKeySecurityScheme: { location: "header", name: "X-API-Key", description: expect.any(String) } },
      bearer: { httpAuthSecurityScheme: { scheme: "Bearer", bearerFormat: "JWT", description: expect.any(String) } }
    })
    expect(card.securityRequirements).toEqual([{ schemes: { apiKey: { list: [] } } }, { schemes: { bearer: { list: [] } } }])
  })

  it("GET /agents (the catalog) needs a credential: the agents' names are not public; the health endpoints stay open", async () => {
    const anonymous = await fetch(`${server.url}/agents`)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get("www-authenticate")).toMatch(/^Bearer/)
    const body = (await anonymous.json()) as any
    expect(body.error).toMatchObject({ code: 401, status: "UNAUTHENTICATED" })
    expect(JSON.stringify(body)).not.toMatch(/conformance|displayName/i)
    const withKey = await fetch(`${server.url}/agents`, { headers: alice })
    expect(withKey.status).toBe(200)
    expect(((await withKey.json()) as any).agents.length).toBe(1)
    for (const path of ["/healthz", "/readyz"]) expect((await fetch(`${server.url}${path}`)).status, path).toBe(200)
  })
})

describe("every task belongs to its principal", () => {
  it("another principal's task answers exactly as a missing one, for every method", async () => {
    const created = await send(alice)
    const taskId = created.result.task.id
    expect(created.result.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    // "$TASK" in params stands for the task id: alice's, then one that does not exist.
    const withId = (params: Record<string, unknown>, id: string) =>
      Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v === "$TASK" ? id : v]))
    const missing = async (method: string, params: Record<string, unknown>) => {
      const theirs = await rpc(server.url, method, withId(params, taskId), bob)
      const nobody = await rpc(server.url, method, withId(params, "no-such-task"), bob)
      expect(theirs.error?.code, method).toBe(-32001)
      expect(nobody.error?.code, method).toBe(-32001)
      // Same shape, with only the id differing: existence is not revealed.
      expect(theirs.error!.message.replace(taskId, "ID")).toBe(nobody.error!.message.replace("no-such-task", "ID"))
    }
    await missing("GetTask", { id: "$TASK" })
    await missing("CancelTask", { id: "$TASK" })
    await missing("CreateTaskPushNotificationConfig", { taskId: "$TASK", url: "https://example.com/h" })
    await missing("GetTaskPushNotificationConfig", { taskId: "$TASK", id: "c" })
    await missing("ListTaskPushNotificationConfigs", { taskId: "$TASK" })
    await missing("DeleteTaskPushNotificationConfig", { taskId: "$TASK", id: "c" })
    const follow = await rpc(server.url, "SendMessage", { message: userMessage("mine now", { messageId: "tck-complete-task-x", taskId }) }, bob)
    expect(follow.error?.code).toBe(-32001)
    const sub = await stream(server.url, "SubscribeToTask", { id: taskId }, bob)
    expect(sub.json?.error?.code).toBe(-32001)

    // Nothing of bob's attempts touched it; alice still sees it waiting for her.
    const mine = await rpc(server.url, "GetTask", { id: taskId }, alice)
    expect(mine.result.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
  })

  it("ListTasks shows each principal only its own tasks, in every tenant", async () => {
    const a = (await send(alice, "tck-complete-task-list-a")).result.task.id
    const b = (await send(bob, "tck-complete-task-list-b")).result.task.id
    const ids = async (headers: Record<string, string>) =>
      ((await rpc(server.url, "ListTasks", { pageSize: 100 }, headers)).result.tasks as Array<any>).map((t) => t.id)
    expect(await ids(alice)).toContain(a)
    expect(await ids(alice)).not.toContain(b)
    expect(await ids(bob)).toContain(b)
    expect(await ids(bob)).not.toContain(a)
  })

  it("a JWT whose subject is alice acts as alice; the API key in either header too", async () => {
    const created = (await send(alice, "tck-complete-task-jwt")).result.task
    const jwt = { authorization: `Bearer ${await token({ sub: "alice" })}` }
    expect((await rpc(server.url, "GetTask", { id: created.id }, jwt)).result.id).toBe(created.id)
    expect((await rpc(server.url, "GetTask", { id: created.id }, { "x-api-key": "alice-key-0123456789" })).result.id).toBe(created.id)
    const restGet = await fetch(`${server.url}/tasks/${created.id}`, { headers: jwt })
    expect(restGet.status).toBe(200)
  })

  it("streams work for the owner", async () => {
    const s = await stream(server.url, "SendStreamingMessage", { message: userMessage("s", { messageId: "tck-stream-auth" }) }, alice)
    const events = await s.rest()
    expect(events.at(-1)!.data.result.statusUpdate.status.state).toBe("TASK_STATE_COMPLETED")
  })
})

describe("auth configuration from the command line", () => {
  it("serve --config reads API keys (also from the environment) and enforces them", async () => {
    const dir = tempDir()
    const config = path.join(dir, "a2a-ledger.yaml")
    fs.writeFileSync(config, "auth:\n  apiKeys:\n    - principal: carol\n      keyEnv: CAROL_KEY\n")
    process.env.CAROL_KEY = "carol-secret-key"
    const proc = await spawnServer(["--db", path.join(dir, "a.db"), "--agent", "echo", "--config", config])
    try {
      expect(proc.output()).toContain("authentication on (1 API-key principal)")
      expect((await rpc(proc.url, "ListTasks", {})).error?.code).toBe(-32000)
      const ok = await rpc(proc.url, "SendMessage", { message: userMessage("x") }, { authorization: "Bearer carol-secret-key" })
      expect(ok.result.task.status.state).toBe("TASK_STATE_COMPLETED")
    } finally {
      delete process.env.CAROL_KEY
      await proc.kill9()
    }
  })

  it("a bad config file stops the server at start with the field named", async () => {
    const dir = tempDir()
    const config = path.join(dir, "bad.yaml")
    fs.writeFileSync(config, "auth:\n  apiKeys:\n    - principal: dave\n  jwt:\n    jwksUrl: ftp://x\n")
    const r = await runCli(["serve", "--port", "0", "--db", path.join(dir, "b.db"), "--config", config])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("auth.apiKeys[0]")
    fs.writeFileSync(config, "auth:\n  apiKeys:\n    - principal: dave\n      keyEnv: NOT_SET_ANYWHERE\n")
    const unset = await runCli(["serve", "--port", "0", "--db", path.join(dir, "b.db"), "--config", config])
    expect(unset.code).toBe(1)
    expect(unset.stderr).toContain("NOT_SET_ANYWHERE is not set")
  })

  it("with authentication off on a non-loopback address the server says so at start", async () => {
    const dir = tempDir()
    const proc = await spawnServer(["--db", path.join(dir, "c.db"), "--agent", "echo", "--host", "0.0.0.0"])
    try {
      expect(proc.output()).toMatch(/authentication is off and the server listens on 0\.0\.0\.0/)
    } finally {
      await proc.kill9()
    }
  })
})

describe("credentials bound to tenants", () => {
  let bound: RunningServer
  const acmeKey = { "x-api-key": "carol-acme-only-key" }
  const anyKey = { "x-api-key": "carol-any-tenant-key" }
  beforeAll(async () => {
    bound = await startServer({
      agent: conformance,
      auth: {
        apiKeys: [
          { principal: "carol", key: "carol-acme-only-key", tenants: ["acme"] },
          { principal: "carol", key: "carol-any-tenant-key" }
        ],
        jwt: { jwksUrl, issuer, audience, tenantClaim: "tenants" }
      }
    })
  })
  afterAll(() => bound.close())

  it("another tenant looks empty to a bound key: its task answers as a missing one, its list is empty, a new task there is refused", async () => {
    const globex = (
      await rpc(bound.url, "SendMessage", { tenant: "globex", message: userMessage("g", { messageId: "tck-input-required-globex" }) }, anyKey)
    ).result.task
    const theirs = await rpc(bound.url, "GetTask", { tenant: "globex", id: globex.id }, acmeKey)
    const nobody = await rpc(bound.url, "GetTask", { tenant: "globex", id: "no-such-task" }, acmeKey)
    expect(theirs.error?.code).toBe(-32001)
    expect(theirs.error!.message.replace(globex.id, "ID")).toBe(nobody.error!.message.replace("no-such-task", "ID"))
    expect((await rpc(bound.url, "CancelTask", { tenant: "globex", id: globex.id }, acmeKey)).error?.code).toBe(-32001)
    const follow = await rpc(bound.url, "SendMessage", { tenant: "globex", message: userMessage("x", { taskId: globex.id }) }, acmeKey)
    expect(follow.error?.code).toBe(-32001)
    const list = await rpc(bound.url, "ListTasks", { tenant: "globex" }, acmeKey)
    expect(list.result.tasks).toEqual([])
    expect(list.result.totalSize).toBe(0)
    const fresh = await rpc(bound.url, "SendMessage", { tenant: "globex", message: userMessage("new there") }, acmeKey)
    expect(fresh.error?.code).toBe(-32602)
    expect(fresh.error!.message).toContain('tenant: this credential may not act in tenant "globex"')
    // The default tenant is another tenant too.
    expect((await rpc(bound.url, "SendMessage", { message: userMessage("default") }, acmeKey)).error?.code).toBe(-32602)
    // REST, with the tenant in the path.
    expect((await fetch(`${bound.url}/globex/tasks/${globex.id}`, { headers: acmeKey })).status).toBe(404)
    // The unbound key of the same principal still sees it; nothing was changed.
    expect((await rpc(bound.url, "GetTask", { tenant: "globex", id: globex.id }, anyKey)).result.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
  })

  it("in its own tenant a bound key works as any other", async () => {
    const mine = (
      await rpc(bound.url, "SendMessage", { tenant: "acme", message: userMessage("a", { messageId: "tck-complete-task-acme" }) }, acmeKey)
    ).result.task
    expect(mine.status.state).toBe("TASK_STATE_COMPLETED")
    expect((await rpc(bound.url, "GetTask", { tenant: "acme", id: mine.id }, acmeKey)).result.id).toBe(mine.id)
    expect((await rpc(bound.url, "ListTasks", { tenant: "acme" }, acmeKey)).result.tasks.map((t: any) => t.id)).toContain(mine.id)
  })

  it("a JWT's tenant claim binds it the same way; a token without the claim is refused", async () => {
    const mine = (
      await rpc(bound.url, "SendMessage", { tenant: "acme", message: userMessage("j", { messageId: "tck-complete-task-jwt-acme" }) }, acmeKey)
    ).result.task
    const acmeJwt = { authorization: `Bearer ${await token({ sub: "carol", tenants: ["acme"] })}` }
    expect((await rpc(bound.url, "GetTask", { tenant: "acme", id: mine.id }, acmeJwt)).result.id).toBe(mine.id)
    const otherJwt = { authorization: `Bearer ${await token({ sub: "carol", tenants: "globex" })}` }
    expect((await rpc(bound.url, "GetTask", { tenant: "acme", id: mine.id }, otherJwt)).error?.code).toBe(-32001)
    const noClaim = await rpc(bound.url, "GetTask", { tenant: "acme", id: mine.id }, { authorization: `Bearer ${await token({ sub: "carol" })}` })
    expect(noClaim.error?.code).toBe(-32000)
    expect(noClaim.error!.message).toContain('no "tenants" claim')
  })
})
