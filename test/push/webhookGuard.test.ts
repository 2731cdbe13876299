import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { checkUrl, guardedLookup, makePolicy, refuseAddress } from "../../src/push/WebhookGuard"

const policy = (...allow: Array<string>) => Either.getOrThrow(makePolicy(allow))

describe("webhook SSRF guard", () => {
  it("without an allowlist, loopback names and internal addresses are refused at registration", () => {
    for (const url of [
      "http://localhost/",
      "http://LOCALHOST:1/",
      "http://api.localhost/",
      "http://127.0.0.1/",
      "http://[::1]/",
      "http://100.64.0.1/"
    ]) {
      expect(Either.isLeft(checkUrl(policy(), url)), url).toBe(true)
    }
    expect(Either.isRight(checkUrl(policy(), "https://hooks.example.com/a2a"))).toBe(true)
  })

  it("an allowed loopback address also admits localhost names; an allowed name admits only that name", () => {
    expect(Either.isRight(checkUrl(policy("127.0.0.1"), "http://localhost:8080/"))).toBe(true)
    expect(Either.isRight(checkUrl(policy("hooks.internal"), "http://hooks.internal/"))).toBe(true)
    expect(Either.isLeft(checkUrl(policy("hooks.internal"), "http://localhost/"))).toBe(true)
  })

  it("CIDR ranges allow whole networks, and nothing outside them", () => {
    const p = policy("10.0.0.0/8", "fd00::/8")
    expect(refuseAddress(p, "10.2.3.4", "10.2.3.4")).toBeUndefined()
    expect(refuseAddress(p, "x", "fd12::1")).toBeUndefined()
    expect(refuseAddress(p, "x", "192.168.0.1")).toMatch(/allow it with --allow-webhook-host/)
    expect(refuseAddress(p, "x", "::ffff:192.168.0.1")).toBeDefined()
    expect(refuseAddress(p, "x", "93.184.216.34")).toBeUndefined()
  })

  it("bad allowlist entries are rejected with the entry named", () => {
    for (const bad of ["10.0.0.0/33", "nothost/8", "a b", "::1/200"]) {
      const r = makePolicy([bad])
      expect(Either.isLeft(r), bad).toBe(true)
      if (Either.isLeft(r)) expect(r.left).toContain(bad)
    }
    expect(Either.isRight(makePolicy(["127.0.0.1, 10.0.0.0/8 ,hooks.local"]))).toBe(true)
  })

  it("at connect time, a name that resolves to an internal address is refused (DNS rebinding)", async () => {
    const lookup = guardedLookup(policy())
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => lookup("localhost", {}, (e) => resolve(e)))
    expect(error?.code).toBe("EWEBHOOKREFUSED")
    const allowed = guardedLookup(policy("127.0.0.1", "::1"))
    const address = await new Promise<string>((resolve, reject) => allowed("localhost", {}, (e, a) => (e ? reject(e) : resolve(a as string))))
    expect(["127.0.0.1", "::1"]).toContain(address)
  })
})
