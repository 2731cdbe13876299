import { verifyAgentCardSignature } from "@a2a-js/sdk"
import { createHash, createPublicKey, generateKeyPairSync } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as jose from "jose"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { echo, slowWorker } from "../../src/agent/builtins"
import { verifyCard } from "../../src/protocol/cardSignature"
import { replayGuard, verifyNotification } from "../../src/signing/verifyNotification"
import { cli } from "../support/cli"
import { call, rpc, userMessage } from "../support/rpc"
import { type RunningServer, startServer, tempDir } from "../support/server"
import { startReceiver, type WebhookReceiver } from "../support/webhookReceiver"

/**
 * The server's signing key (docs/signing.md): the card carries a JWS over its canonical form, the JWKS is
 * published, and every webhook call carries a JWT bound to its body. Checked with jose and with the
 * official SDK's card verifier, and from the receiving side: a replayed or tampered call is refused.
 */
const dir = tempDir("a2a-ledger-signing-")
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
const privateKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString()
const publicKeyFile = path.join(dir, "public.pem")
fs.writeFileSync(publicKeyFile, publicKey.export({ type: "spki", format: "pem" }).toString())

const extendedCard = { description: "For members.", skills: [{ id: "audit", name: "Audit", description: "Audits a ledger.", tags: ["members"] }] }
let server: RunningServer
let receiver: WebhookReceiver
beforeAll(async () => {
  server = await startServer({
    agent: { ...echo, extendedCard },
    signing: { privateKeyPem, kid: "test-key" },
    auth: { apiKeys: [{ principal: "alice", key: "alice-key" }] },
    push: { allowHosts: ["127.0.0.1"], retryBaseMs: 20, pollMs: 100 }
  })
  receiver = await startReceiver()
})
afterAll(async () => {
  await server.close()
  await receiver.close()
})

const jwksUrl = () => new URL(`${server.url}/.well-known/jwks.json`)
const fetchCard = async () => {
  const res = await fetch(`${server.url}/.well-known/agent-card.json`)
  return { etag: res.headers.get("etag"), card: (await res.json()) as Record<string, any> }
}

describe("signed agent cards (spec §8.4)", () => {
  it("GET /.well-known/jwks.json publishes the public key only, with its kid and alg", async () => {
    const res = await fetch(jwksUrl())
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^application\/jwk-set\+json/)
    const jwks: any = await res.json()
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", kid: "test-key", alg: "ES256", use: "sig" })
    expect(jwks.keys[0].d).toBeUndefined()
  })

  it("the card carries a JWS that verifies with the JWKS (ours and the official SDK's verifier); its ETag stays put", async () => {
    const first = await fetchCard()
    const { card } = first
    expect(card.signatures).toHaveLength(1)
    const header = jose.decodeProtectedHeader(card.signatures[0])
    expect(header).toEqual({ alg: "ES256", typ: "JOSE", kid: "test-key", jku: jwksUrl().href })
    expect(await verifyCard(card, jose.createRemoteJWKSet(jwksUrl()))).toBe("test-key")
    await verifyAgentCardSignature(async () => publicKey)(card as any)
    expect((await fetchCard()).etag).toBe(first.etag)
  })

  it("a tampered card does not verify, by either verifier", async () => {
    const { card } = await fetchCard()
    // (The SDK's verifier logs each signature it rejects at debug level.)
    vi.spyOn(console, "debug").mockImplementation(() => {})
    const tampered = { ...card, description: "Something else entirely." }
    await expect(verifyCard(tampered, publicKey)).rejects.toThrow(/no signature of the card verifies/)
    await expect(verifyAgentCardSignature(async () => publicKey)(tampered as any)).rejects.toThrow(/No valid signatures/)
    const moved = { ...card, supportedInterfaces: [{ ...card.supportedInterfaces[0], url: "https://evil.example.com/a2a" }] }
    await expect(verifyCard(moved, publicKey)).rejects.toThrow()
  })

  it("the extended card is signed too", async () => {
    const extended = await rpc(server.url, "GetExtendedAgentCard", {}, { authorization: "Bearer alice-key" })
    expect(extended.result.skills.map((s: any) => s.id)).toContain("audit")
    expect(await verifyCard(extended.result, jose.createRemoteJWKSet(jwksUrl()))).toBe("test-key")
  })

  it("tasks card verifies against a JWKS or a key, and refuses a tampered card (exit 1)", async () => {
    const byJwks = await cli(["tasks", "card", "--url", server.url, "--jwks", jwksUrl().href])
    expect(byJwks.code).toBe(0)
    expect(byJwks.stdout).toContain("signature verified (key test-key)")
    const byKey = await cli(["tasks", "card", "--url", server.url, "--key", publicKeyFile])
    expect(byKey.code).toBe(0)
    const { card } = await fetchCard()
    const file = path.join(dir, "tampered.json")
    fs.writeFileSync(file, JSON.stringify({ ...card, skills: [...card.skills, { id: "x", name: "X", description: "x", tags: [] }] }))
    const refused = await cli(["tasks", "card", "--card", file, "--jwks", jwksUrl().href])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain("the card's signature does not verify")
    const otherKey = path.join(dir, "other.pem")
    fs.writeFileSync(otherKey, generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString())
    expect((await cli(["tasks", "card", "--url", server.url, "--key", otherKey])).code).toBe(1)
    // Without a key it says the signature is there but unchecked.
    expect((await cli(["tasks", "card", "--url", server.url])).stdout).toContain("1 signature(s), not checked")
  })
})

describe("signed webhook calls", () => {
  const bearer = { authorization: "Bearer alice-key" }
  const check = () => ({ keys: jose.createRemoteJWKSet(jwksUrl()), audience: receiver.url, issuer: "a2a-ledger", replays: replayGuard() })

  it("every call carries a JWT bound to its body that verifies with the JWKS; a replay or a tampered body is refused", async () => {
    const sent = await call(
      server.url,
      "SendMessage",
      { message: userMessage("signed"), configuration: { taskPushNotificationConfig: { url: receiver.url } } },
      bearer
    )
    const taskId = sent.task.id
    const delivered = await receiver.waitFor((d) => d.some((c) => c.body.statusUpdate?.status.state === "TASK_STATE_COMPLETED"))
    const calls = delivered.filter(
      (c) => (c.body.statusUpdate ?? c.body.task ?? c.body.artifactUpdate)?.taskId === taskId || c.body.task?.id === taskId
    )
    expect(calls.length).toBeGreaterThan(1)
    const receiving = check()
    const jtis = new Set<string>()
    for (const c of calls) {
      const claims = await verifyNotification(c.headers as any, c.text, receiving)
      expect(claims.taskId).toBe(taskId)
      expect(claims.request_body_sha256).toBe(createHash("sha256").update(c.text).digest("hex"))
      jtis.add(claims.jti!)
    }
    expect(jtis.size).toBe(calls.length)
    // The same call again: a replay.
    const last = calls[calls.length - 1]!
    await expect(verifyNotification(last.headers as any, last.text, receiving)).rejects.toThrow(/a replay/)
    // The body changed on the way: refused, whatever the JWT says.
    const tampered = last.text.replace("TASK_STATE_COMPLETED", "TASK_STATE_FAILED")
    await expect(verifyNotification(last.headers as any, tampered, check())).rejects.toThrow(/not the one the JWT was signed for/)
    // Another webhook's JWT, or one signed by another key: refused.
    await expect(verifyNotification(last.headers as any, last.text, { ...check(), audience: "https://elsewhere.example.com/hook" })).rejects.toThrow(
      /does not verify/
    )
    const stranger = await new jose.SignJWT({ taskId, request_body_sha256: createHash("sha256").update(last.text).digest("hex") })
      .setProtectedHeader({ alg: "ES256", kid: "test-key" })
      .setIssuer("a2a-ledger")
      .setAudience(receiver.url)
      .setIssuedAt()
      .setExpirationTime("5m")
      .setJti("forged")
      .sign(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey)
    await expect(verifyNotification({ authorization: `Bearer ${stranger}` }, last.text, check())).rejects.toThrow(/does not verify/)
  })

  it("a config with credentials of its own keeps its Authorization; the JWT goes in X-A2A-Notification-JWT", async () => {
    const url = `${receiver.url}/with-auth`
    const sent = await call(
      server.url,
      "SendMessage",
      {
        message: userMessage("signed"),
        configuration: { taskPushNotificationConfig: { url, authentication: { scheme: "Bearer", credentials: "hook-secret" } } }
      },
      bearer
    )
    const delivered = await receiver.waitFor((d) =>
      d.some((c) => c.body.statusUpdate?.taskId === sent.task.id && c.body.statusUpdate.status.state === "TASK_STATE_COMPLETED")
    )
    const mine = delivered.filter((c) => c.body.statusUpdate?.taskId === sent.task.id)
    for (const c of mine) {
      expect(c.headers.authorization).toBe("Bearer hook-secret")
      expect(await verifyNotification(c.headers as any, c.text, { ...check(), audience: url })).toMatchObject({ taskId: sent.task.id })
    }
  })
})

describe("without a signing key", () => {
  it("the card has no signatures, the JWKS is 404, and webhook calls carry no JWT", async () => {
    const plain = await startServer({ agent: slowWorker(), push: { allowHosts: ["127.0.0.1"] } })
    try {
      const card: any = await (await fetch(`${plain.url}/.well-known/agent-card.json`)).json()
      expect(card.signatures).toBeUndefined()
      expect((await fetch(`${plain.url}/.well-known/jwks.json`)).status).toBe(404)
    } finally {
      await plain.close()
    }
  })

  it("serve refuses a key it cannot use, naming why", async () => {
    const rsaSmall = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString()
    await expect(startServer({ agent: echo, signing: { privateKeyPem: rsaSmall } })).rejects.toThrow(/RSA of 2048 bits or more/)
    await expect(startServer({ agent: echo, signing: { privateKeyPem: "not a key" } })).rejects.toThrow(/not a private key in PEM/)
    expect(createPublicKey(privateKeyPem).asymmetricKeyType).toBe("ec")
  })
})
