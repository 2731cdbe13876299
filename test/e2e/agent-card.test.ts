import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { slowWorker } from "../../src/agent/builtins"
import { rpc } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

let server: RunningServer
beforeAll(async () => {
  server = await startServer({ agent: slowWorker() })
})
afterAll(() => server.close())

describe("agent card (spec §8)", () => {
  it("is a v1.0 card: JSONRPC and HTTP+JSON interfaces at protocol 1.0, streaming, the agent's skills, no v0.3 fields", async () => {
    const res = await fetch(`${server.url}/.well-known/agent-card.json`)
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/application\/json/)
    const card: any = await res.json()
    expect(card.supportedInterfaces).toEqual([
      { url: `${server.url}/a2a`, protocolBinding: "JSONRPC", protocolVersion: "1.0" },
      { url: server.url, protocolBinding: "HTTP+JSON", protocolVersion: "1.0" },
      { url: `${server.url}/a2a`, protocolBinding: "JSONRPC", protocolVersion: "0.3" }
    ])
    expect(card.capabilities.streaming).toBe(true)
    expect(card.skills[0].id).toBe("analysis")
    expect(card.name).toBe("Slow Worker")
    for (const legacy of ["url", "protocolVersion", "preferredTransport", "additionalInterfaces", "kind"]) {
      expect(card).not.toHaveProperty(legacy)
    }
    for (const required of ["name", "description", "version", "defaultInputModes", "defaultOutputModes"]) {
      expect(card).toHaveProperty(required)
    }
  })

  it("is cacheable: Cache-Control max-age, ETag, Last-Modified, and 304 on If-None-Match", async () => {
    const res = await fetch(`${server.url}/.well-known/agent-card.json`)
    expect(res.headers.get("cache-control")).toMatch(/max-age=\d+/)
    const etag = res.headers.get("etag")!
    expect(etag).toMatch(/^"[^"]+"$/)
    expect(Number.isNaN(Date.parse(res.headers.get("last-modified")!))).toBe(false)
    const again = await fetch(`${server.url}/.well-known/agent-card.json`, { headers: { "if-none-match": etag } })
    expect(again.status).toBe(304)
  })

  it("an unknown route is a google.rpc.Status 404 that points at the endpoints", async () => {
    const res = await fetch(`${server.url}/nope`)
    expect(res.status).toBe(404)
    const body: any = await res.json()
    expect(body.error).toMatchObject({ code: 404, status: "NOT_FOUND" })
    expect(body.error.message).toContain("POST /a2a")
    for (const [method, path] of [
      ["GET", "/"],
      ["GET", "/a2a"],
      ["DELETE", "/a2a"]
    ] as const) {
      const r = await fetch(`${server.url}${path}`, { method })
      expect(r.status).toBe(404)
      expect(((await r.json()) as any).error.status).toBe("NOT_FOUND")
    }
  })
})

describe("the extended agent card (GetExtendedAgentCard, spec §3.1.11)", () => {
  const extendedCard = {
    description: "The slow worker, with what members may ask of it.",
    skills: [{ id: "audit", name: "Audit", description: "Audits a ledger for members.", tags: ["members"] }]
  }
  const auth = { apiKeys: [{ principal: "member", key: "member-key" }] }

  it("with authentication on, the public card declares it and an authenticated caller gets it on both bindings", async () => {
    const s = await startServer({ agent: { ...slowWorker(), extendedCard }, auth })
    try {
      const card: any = await (await fetch(`${s.url}/.well-known/agent-card.json`)).json()
      expect(card.capabilities.extendedAgentCard).toBe(true)
      expect(card.skills.map((k: any) => k.id)).toEqual(["analysis"])
      const headers = { authorization: "Bearer member-key" }
      const viaRpc = await rpc(s.url, "GetExtendedAgentCard", {}, headers)
      const viaRest: any = await (await fetch(`${s.url}/extendedAgentCard`, { headers })).json()
      for (const extended of [viaRpc.result, viaRest]) {
        expect(extended.skills.map((k: any) => k.id)).toEqual(["analysis", "audit"])
        expect(extended.description).toBe(extendedCard.description)
        expect(extended.supportedInterfaces).toEqual(card.supportedInterfaces)
        expect(extended.securitySchemes).toEqual(card.securitySchemes)
      }
      // A tenant's path names the same card.
      const viaTenant: any = await (await fetch(`${s.url}/acme/extendedAgentCard`, { headers })).json()
      expect(viaTenant.supportedInterfaces).toEqual(card.supportedInterfaces)
      // Without a credential: 401, as every call.
      expect((await fetch(`${s.url}/extendedAgentCard`)).status).toBe(401)
    } finally {
      await s.close()
    }
  })

  it("without authentication, or without one configured, the card declares none and the method is -32004", async () => {
    for (const options of [{ agent: { ...slowWorker(), extendedCard } }, { agent: slowWorker(), auth }]) {
      const s = await startServer(options)
      try {
        const card: any = await (await fetch(`${s.url}/.well-known/agent-card.json`)).json()
        expect(card.capabilities.extendedAgentCard).toBe(false)
        const r = await rpc(s.url, "GetExtendedAgentCard", {}, options.auth !== undefined ? { authorization: "Bearer member-key" } : {})
        expect(r.error?.code).toBe(-32004)
      } finally {
        await s.close()
      }
    }
  })
})
