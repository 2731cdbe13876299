import { createHash } from "node:crypto"
import * as jose from "jose"
import type { KeySource } from "../protocol/cardSignature.js"

/**
 * The receiving side of signed webhooks (docs/signing.md): what a client's webhook checks before it trusts
 * a call from an a2a-ledger server (or any A2A server that signs the same way). The call's JWT must verify
 * against the server's JWKS, be meant for this webhook (`aud`), be fresh (`iat`, `exp`), be new (`jti`, a
 * replay is refused), and bind this very body (`request_body_sha256`).
 */
export class NotificationRejected extends Error {
  readonly _tag = "NotificationRejected"
}

/** Remembers the `jti`s seen within the freshness window: a second call with one is a replay. */
export interface ReplayGuard {
  /** True the first time `jti` is seen (and remembers it until `expiresAt`, epoch seconds); false after. */
  readonly firstSeen: (jti: string, expiresAt: number) => boolean
}

export const replayGuard = (): ReplayGuard => {
  const seen = new Map<string, number>()
  return {
    firstSeen: (jti, expiresAt) => {
      const now = Date.now() / 1000
      for (const [id, until] of seen) if (until < now) seen.delete(id)
      if (seen.has(jti)) return false
      seen.set(jti, expiresAt)
      return true
    }
  }
}

export interface NotificationCheck {
  /** The server's public keys: `jose.createRemoteJWKSet(new URL("https://agent.example.com/.well-known/jwks.json"))`. */
  readonly keys: KeySource
  /** This webhook's URL, as it was registered: the JWT's `aud`. */
  readonly audience: string
  /** The server's `iss`, when it should be checked. */
  readonly issuer?: string
  /** The oldest `iat` accepted, in seconds (default 300). */
  readonly maxAgeSeconds?: number
  readonly replays: ReplayGuard
}

/** A request's headers as Node gives them (names in lower case). */
export type NotificationHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

const headerOf = (headers: NotificationHeaders, name: string) => {
  const value = headers[name] ?? headers[name.toLowerCase()]
  return Array.isArray(value) ? value[0] : (value as string | undefined)
}

/** The call's claims, once every check passed; otherwise NotificationRejected saying which failed. */
export const verifyNotification = async (headers: NotificationHeaders, body: string, check: NotificationCheck): Promise<jose.JWTPayload> => {
  const bearer = headerOf(headers, "authorization")
  const jwt = headerOf(headers, "x-a2a-notification-jwt") ?? (bearer?.startsWith("Bearer ") ? bearer.slice("Bearer ".length) : undefined)
  if (jwt === undefined) throw new NotificationRejected("the call carries no JWT (Authorization: Bearer or X-A2A-Notification-JWT)")
  let payload: jose.JWTPayload
  try {
    const options = {
      audience: check.audience,
      maxTokenAge: check.maxAgeSeconds ?? 300,
      requiredClaims: ["iat", "exp", "jti"],
      ...(check.issuer !== undefined ? { issuer: check.issuer } : {})
    }
    payload = (typeof check.keys === "function" ? await jose.jwtVerify(jwt, check.keys, options) : await jose.jwtVerify(jwt, check.keys, options))
      .payload
  } catch (e) {
    throw new NotificationRejected(`the JWT does not verify: ${(e as Error).message}`)
  }
  const digest = createHash("sha256").update(body).digest("hex")
  if (payload.request_body_sha256 !== digest) throw new NotificationRejected("the body is not the one the JWT was signed for")
  if (!check.replays.firstSeen(payload.jti!, payload.exp!)) throw new NotificationRejected(`a replay: jti ${payload.jti} was seen before`)
  return payload
}
