import { Either } from "effect"
import * as dns from "node:dns"
import * as net from "node:net"

/**
 * The SSRF guard for webhooks (spec §13.2). A webhook may not reach a
 * private, loopback, link-local or otherwise internal address unless the
 * operator allowed that host, address or range.
 *
 * Two checks: when a config is registered (the URL's form, and its host when
 * it is an address or a localhost name), and again when a delivery connects,
 * on the addresses DNS returned at that moment; so a name that later resolves
 * to an internal address (DNS rebinding) is still refused.
 */
export interface WebhookPolicy {
  /** Host names allowed as written in the URL (lower case). */
  readonly names: ReadonlySet<string>
  /** Addresses and ranges allowed although internal. */
  readonly addresses: net.BlockList
}

const internal = new net.BlockList()
for (const [network, prefix] of [
  ["0.0.0.0", 8], // "this" network
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local, cloud metadata
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4] // reserved, broadcast
] as const) {
  internal.addSubnet(network, prefix, "ipv4")
}
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96], // NAT64 (embeds an IPv4 address)
  ["fc00::", 7], // unique local
  ["fe80::", 10], // link-local
  ["ff00::", 8] // multicast
] as const) {
  internal.addSubnet(network, prefix, "ipv6")
}
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is checked against the IPv4 ranges by BlockList itself.

const family = (address: string) => (net.isIPv6(address) ? "ipv6" : "ipv4")

/** Build the policy from `--allow-webhook-host` values: host names, addresses or CIDR ranges. */
export const makePolicy = (allow: ReadonlyArray<string>): Either.Either<WebhookPolicy, string> => {
  const names = new Set<string>()
  const addresses = new net.BlockList()
  for (const raw of allow
    .flatMap((a) => a.split(","))
    .map((a) => a.trim())
    .filter((a) => a !== "")) {
    const [base, prefix, ...extra] = raw.split("/")
    if (prefix !== undefined) {
      const bits = Number(prefix)
      const kind = net.isIP(base!)
      if (extra.length > 0 || kind === 0 || !Number.isInteger(bits) || bits < 0 || bits > (kind === 4 ? 32 : 128)) {
        return Either.left(`allowed webhook host "${raw}" is not a valid CIDR range (such as 10.0.0.0/8)`)
      }
      addresses.addSubnet(base!, bits, family(base!))
    } else if (net.isIP(unbracket(raw)) !== 0) {
      addresses.addAddress(unbracket(raw), family(unbracket(raw)))
    } else if (/^[a-z0-9.-]+$/i.test(raw)) {
      names.add(normalizeHost(raw))
    } else {
      return Either.left(`allowed webhook host "${raw}" is not a host name, an address or a CIDR range`)
    }
  }
  return Either.right({ names, addresses })
}

export const openPolicy = (): WebhookPolicy => ({ names: new Set(), addresses: new net.BlockList() })

const unbracket = (host: string) => (host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host)

/**
 * A host name as every check compares it: no brackets, lower case, and no
 * trailing dot (`localhost.` is the fully qualified `localhost`, and DNS
 * resolves both alike).
 */
export const normalizeHost = (host: string) => unbracket(host).toLowerCase().replace(/\.+$/, "")

const isLocalName = (host: string) => host === "localhost" || host.endsWith(".localhost")

/** Why this resolved address may not be called, or undefined when it may. */
export const refuseAddress = (policy: WebhookPolicy, host: string, address: string): string | undefined => {
  if (policy.names.has(normalizeHost(host))) return undefined
  const kind = family(address)
  if (!internal.check(address, kind) || policy.addresses.check(address, kind)) return undefined
  return `webhook host ${host} is ${host === address ? "" : `resolved to ${address}, `}a private, loopback or link-local address; allow it with --allow-webhook-host (the push.allowHosts option when embedded)`
}

const maxUrlLength = 2048

/** Check a webhook URL when it is registered: its form, and its host when no DNS is needed to judge it. */
export const checkUrl = (policy: WebhookPolicy, raw: string): Either.Either<URL, string> => {
  if (raw.length > maxUrlLength) return Either.left(`must be at most ${maxUrlLength} characters`)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Either.left(`must be an absolute http or https URL (got ${JSON.stringify(raw.slice(0, 100))})`)
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return Either.left(`must use http or https (got ${url.protocol.slice(0, -1)})`)
  if (url.hostname === "") return Either.left("must name a host")
  const host = normalizeHost(url.hostname)
  if (host === "") return Either.left("must name a host")
  if (policy.names.has(host)) return Either.right(url)
  if (net.isIP(host) !== 0) {
    const refused = refuseAddress(policy, host, host)
    return refused === undefined ? Either.right(url) : Either.left(refused)
  }
  if (isLocalName(host)) {
    const loopbackAllowed = policy.addresses.check("127.0.0.1", "ipv4") || policy.addresses.check("::1", "ipv6")
    if (loopbackAllowed) return Either.right(url)
    return Either.left(`webhook host ${host} is a loopback name; allow it with --allow-webhook-host (the push.allowHosts option when embedded)`)
  }
  return Either.right(url)
}

/**
 * A `lookup` for node:http that resolves like the default one, then refuses
 * the connection when any address it would use is internal.
 */
export const guardedLookup =
  (policy: WebhookPolicy): net.LookupFunction =>
  (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, "", 4)
      for (const a of addresses) {
        const refused = refuseAddress(policy, hostname, a.address)
        if (refused !== undefined) return callback(Object.assign(new Error(refused), { code: "EWEBHOOKREFUSED" }), "", 4)
      }
      if (addresses.length === 0) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), "", 4)
      if ((options as dns.LookupOptions).all === true) return (callback as unknown as (e: null, a: Array<dns.LookupAddress>) => void)(null, addresses)
      return callback(null, addresses[0]!.address, addresses[0]!.family)
    })
  }
