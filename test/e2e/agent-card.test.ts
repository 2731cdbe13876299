import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { slowWorker } from "../../src/agent/builtins"
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
