import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { conformance } from "../../src/agent/builtins"
import { rpc, userMessage } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

/**
 * Flow control as a client meets it (docs/protocol.md, Flow control): a principal past its task-creation
 * rate gets RATE_LIMITED (-32603 on JSON-RPC with an ErrorInfo naming the limit; HTTP 429 with
 * Retry-After on REST); another principal is counted apart; a message to an existing task is not a
 * creation; a bad priority names its field.
 */
let server: RunningServer
beforeAll(async () => {
  server = await startServer({
    agent: conformance,
    flowControl: { creations: { limit: 2, window: "1 minute" } },
    auth: {
      apiKeys: [
        { principal: "alice", key: "alice-key-0123456789" },
        { principal: "bob", key: "bob-key-9876543210" }
      ]
    }
  })
})
afterAll(() => server.close())

const alice = { authorization: "Bearer alice-key-0123456789" }
const bob = { authorization: "Bearer bob-key-9876543210" }

describe("flow control over the wire", () => {
  it("past its creation rate a principal gets RATE_LIMITED on JSON-RPC and HTTP 429 with Retry-After on REST", async () => {
    const asking = await rpc(server.url, "SendMessage", { message: userMessage("q", { messageId: "tck-input-required-flow" }) }, alice)
    expect(asking.result.task.status.state).toBe("TASK_STATE_INPUT_REQUIRED")
    expect((await rpc(server.url, "SendMessage", { message: userMessage("second") }, alice)).result.task).toBeDefined()

    const third = await rpc(server.url, "SendMessage", { message: userMessage("third") }, alice)
    expect(third.error?.code).toBe(-32603)
    expect(third.error?.message).toMatch(/Too many tasks created: at most 2 per 1m for each principal; try again in \d+ s/)
    const info = third.error?.data?.find((d: any) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo")
    expect(info).toMatchObject({ reason: "RATE_LIMITED", domain: "a2a-protocol.org", metadata: { limit: "creations" } })
    expect(Number(info.metadata.retryAfterSeconds)).toBeGreaterThanOrEqual(1)

    const rest = await fetch(`${server.url}/message:send`, {
      method: "POST",
      headers: { ...alice, "content-type": "application/json" },
      body: JSON.stringify({ message: userMessage("fourth") })
    })
    expect(rest.status).toBe(429)
    expect(Number(rest.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    const body = (await rest.json()) as { error: { status: string; details: Array<{ reason: string }> } }
    expect(body.error.status).toBe("RESOURCE_EXHAUSTED")
    expect(body.error.details[0]!.reason).toBe("RATE_LIMITED")

    // An answer to alice's waiting task creates nothing: it is not limited.
    const answer = await rpc(
      server.url,
      "SendMessage",
      { message: userMessage("an answer", { taskId: asking.result.task.id, contextId: asking.result.task.contextId }) },
      alice
    )
    expect(answer.error).toBeUndefined()
    // Bob has a bucket of his own.
    expect((await rpc(server.url, "SendMessage", { message: userMessage("bob's") }, bob)).result.task).toBeDefined()
  })

  it("a priority that is not an integer is invalid params naming the metadata key", async () => {
    const r = await rpc(server.url, "SendMessage", { message: userMessage("p", { metadata: { "a2a-ledger/priority": "high" } }) }, bob)
    expect(r.error?.code).toBe(-32602)
    expect(r.error?.message).toContain("message.metadata.a2a-ledger/priority")
  })
})
