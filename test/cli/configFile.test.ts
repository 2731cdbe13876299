import { Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { apiKeysFromEnv, authOptions, delegationOptions, flowControlOptions, hostedAgents, load, signingOptions } from "../../src/cli/configFile"
import { tempDir } from "../support/server"

const write = (name: string, text: string) => {
  const file = path.join(tempDir(), name)
  fs.writeFileSync(file, text)
  return file
}

/** What `serve` passes `hostedAgents` when no flag says otherwise. */
const serveDefaults = { maxWorkers: 8, recovery: "rerun", idempotency: "on", retentionMs: undefined, push: {}, leaseMs: 15_000 } as const

describe("the config file", () => {
  it("reads YAML and JSON alike", () => {
    const yaml = load(write("c.yaml", "auth:\n  apiKeys:\n    - { principal: a, key: k1 }\n"))
    const json = load(write("c.json", JSON.stringify({ auth: { apiKeys: [{ principal: "a", key: "k1" }] } })))
    expect(Either.getOrThrow(yaml)).toEqual(Either.getOrThrow(json))
  })

  it.each([
    ["auth:\n  apiKeys:\n    - principal: ''\n      key: k", "auth.apiKeys[0].principal"],
    ["auth:\n  apiKeys:\n    - principal: a\n      key: k\n      keyEnv: K", "exactly one of key and keyEnv"],
    ["auth:\n  jwt:\n    issuer: x", "auth.jwt.jwksUrl: is required"],
    ["auth:\n  apikeys: []", "auth.apikeys"],
    ["auth: [", "not valid YAML or JSON"],
    ["delegation:\n  credentials:\n    - { host: a.example, bearer: t, apiKey: k }", "exactly one of bearer, bearerEnv, apiKey and apiKeyEnv"],
    ["delegation:\n  credentials:\n    - { bearer: t }", "delegation.credentials[0].host: is required"]
  ])("names what is wrong in %j", (text, expected) => {
    const r = load(write("bad.yaml", text))
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) expect(r.left).toContain(expected)
  })

  it("signing: a key file relative to the config file, or the PEM in a variable; --signing-key wins; exactly one source", () => {
    const dir = tempDir()
    fs.mkdirSync(path.join(dir, "keys"))
    fs.writeFileSync(path.join(dir, "keys", "server.pem"), "PEM FROM FILE")
    const config = path.join(dir, "a2a.yaml")
    fs.writeFileSync(config, "signing:\n  privateKeyFile: keys/server.pem\n  kid: k1\n")
    const file = Either.getOrThrow(load(config))
    expect(signingOptions(file, config, undefined, {})).toEqual(Either.right({ privateKeyPem: "PEM FROM FILE", kid: "k1" }))
    const flag = path.join(dir, "flag.pem")
    fs.writeFileSync(flag, "PEM FROM FLAG")
    expect(signingOptions(file, config, flag, {})).toEqual(Either.right({ privateKeyPem: "PEM FROM FLAG", kid: "k1" }))
    const fromEnv = Either.getOrThrow(load(write("e.yaml", "signing:\n  privateKeyEnv: SIGNING_PEM\n")))
    expect(signingOptions(fromEnv, undefined, undefined, { SIGNING_PEM: "PEM FROM ENV" })).toEqual(Either.right({ privateKeyPem: "PEM FROM ENV" }))
    expect(signingOptions(fromEnv, undefined, undefined, {})).toEqual(
      Either.left("signing.privateKeyEnv: the environment variable SIGNING_PEM is not set")
    )
    expect(signingOptions({}, undefined, undefined, {})).toEqual(Either.right(undefined))
    const missing = Either.getOrThrow(load(write("m.yaml", "signing:\n  privateKeyFile: nowhere.pem\n")))
    expect(Either.getLeft(signingOptions(missing, config, undefined, {}))).toEqual(
      expect.objectContaining({ value: expect.stringMatching(/^signing.privateKeyFile: cannot read the signing key .*nowhere.pem/) })
    )
    expect(Either.getLeft(load(write("b.yaml", "signing:\n  privateKeyFile: a.pem\n  privateKeyEnv: B\n"))).pipe((l) => JSON.stringify(l))).toContain(
      "give exactly one of privateKeyFile and privateKeyEnv"
    )
  })

  it("delegation credentials name a host and a bearer token or API key, inline or from the environment", () => {
    const config = Either.getOrThrow(
      load(
        write("d.yaml", "delegation:\n  credentials:\n    - { host: a.example, bearer: t1 }\n    - { host: 'b.example:8443', apiKeyEnv: B_KEY }\n")
      )
    )
    expect(Either.getOrThrow(delegationOptions(config, { B_KEY: "k2" }))).toEqual({
      credentials: [
        { host: "a.example", bearer: "t1" },
        { host: "b.example:8443", apiKey: "k2" }
      ]
    })
    expect(delegationOptions(config, {})).toEqual(Either.left("delegation.credentials[1].apiKeyEnv: the environment variable B_KEY is not set"))
  })

  it("flow control: defaults, tenants of their own, and an agent's own limits", () => {
    const config = Either.getOrThrow(
      load(
        write(
          "f.yaml",
          [
            "flowControl:",
            "  creations: { limit: 60, per: 1m }",
            "  maxRunningPerPrincipal: 2",
            "  tenants:",
            "    acme: { maxRunning: 4 }",
            "agents:",
            "  - { name: a, agent: echo }",
            "  - { name: b, agent: echo, flowControl: { maxRunning: 1 } }"
          ].join("\n")
        )
      )
    )
    const defaults = flowControlOptions(config.flowControl)
    expect(defaults).toEqual({ creations: { limit: 60, window: 60_000 }, maxRunningPerPrincipal: 2, tenants: { acme: { maxRunning: 4 } } })
    const hosted = Either.getOrThrow(hostedAgents(config.agents!, path.join(tempDir(), "x.db"), { ...serveDefaults, flowControl: defaults }))
    expect(hosted.map((h) => h.flowControl)).toEqual([defaults, { maxRunning: 1 }])
    const bad = load(write("g.yaml", "flowControl:\n  creations: { limit: 0, per: 1m }\n"))
    expect(Either.isLeft(bad) && bad.left).toContain("flowControl.creations.limit")
  })

  it("an extended card, at the top (the single agent's) or per agent: its skills get their tags; a skill without an id is refused, by path", () => {
    const config = Either.getOrThrow(
      load(
        write(
          "x.yaml",
          [
            "extendedCard: { description: For members }",
            "agents:",
            "  - name: a",
            "    agent: echo",
            "    extendedCard: { skills: [{ id: audit, name: Audit, description: Audits }] }"
          ].join("\n")
        )
      )
    )
    expect(config.extendedCard).toEqual({ description: "For members" })
    const hosted = Either.getOrThrow(hostedAgents(config.agents!, path.join(tempDir(), "x.db"), serveDefaults))
    expect(hosted[0]!.agent.extendedCard).toEqual({ skills: [{ id: "audit", name: "Audit", description: "Audits", tags: [] }] })
    const bad = load(write("y.yaml", "extendedCard: { skills: [{ name: Audit, description: Audits }] }\n"))
    expect(Either.isLeft(bad) && bad.left).toContain("extendedCard.skills[0].id")
  })

  it("an API key may be bound to tenants, and a JWT issuer may name a tenant claim", () => {
    const file = load(
      write(
        "t.yaml",
        "auth:\n  apiKeys:\n    - { principal: a, key: k1, tenants: [acme, ''] }\n  jwt:\n    jwksUrl: https://x/jwks\n    tenantClaim: tenants\n"
      )
    )
    const auth = Either.getOrThrow(authOptions(Either.getOrThrow(file), {}))
    expect(auth.apiKeys).toEqual([{ principal: "a", key: "k1", tenants: ["acme", ""] }])
    expect(auth.jwt?.tenantClaim).toBe("tenants")
  })

  it("A2A_API_KEYS holds principal=key pairs; a key may contain '='", () => {
    expect(Either.getOrThrow(apiKeysFromEnv(" alice=k1, bob=k2=="))).toEqual([
      { principal: "alice", key: "k1" },
      { principal: "bob", key: "k2==" }
    ])
    expect(Either.isLeft(apiKeysFromEnv("alice"))).toBe(true)
    expect(Either.isLeft(apiKeysFromEnv("=k"))).toBe(true)
  })

  it("keys from the file (inline or from the environment) and from A2A_API_KEYS are all accepted", () => {
    const config = Either.getOrThrow(
      load(write("k.yaml", "auth:\n  apiKeys:\n    - { principal: a, key: k1 }\n    - { principal: b, keyEnv: B_KEY }\n"))
    )
    const options = Either.getOrThrow(authOptions(config, { B_KEY: "k2", A2A_API_KEYS: "c=k3" }))
    expect(options.apiKeys).toEqual([
      { principal: "a", key: "k1" },
      { principal: "b", key: "k2" },
      { principal: "c", key: "k3" }
    ])
  })

  it("admins come from auth.admins and A2A_ADMINS (comma-separated); an empty name is refused", () => {
    const config = Either.getOrThrow(load(write("admins.yaml", "auth:\n  apiKeys:\n    - { principal: ops, key: k1 }\n  admins: [ops]\n")))
    expect(Either.getOrThrow(authOptions(config, { A2A_ADMINS: "sre, oncall" })).admins).toEqual(["ops", "sre", "oncall"])
    expect(Either.getOrThrow(authOptions(config, {})).admins).toEqual(["ops"])
    const empty = load(write("empty-admin.yaml", 'auth:\n  admins: [""]\n'))
    expect(Either.isLeft(empty) && empty.left).toContain("auth.admins")
  })
})
