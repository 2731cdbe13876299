import canonicalize from "canonicalize"
import * as jose from "jose"

/**
 * Signed agent cards (spec §8.4): each entry of a card's `signatures` is a JWS (RFC 7515, flattened JSON
 * serialization without its payload) over the card's canonical form: the card without `signatures`, with
 * default-valued fields dropped (empty strings, empty lists and objects, nulls: what a proto3 JSON encoder
 * leaves out), serialized by RFC 8785 (JCS). Its protected header carries `alg`, `typ: "JOSE"` and `kid`
 * (and `jku`, where the keys are published).
 */
export interface CardSignature {
  readonly protected: string
  readonly signature: string
  readonly header?: Record<string, unknown>
}

/** A value with its empty members dropped, recursively; `undefined` when nothing is left of it. */
const withoutDefaults = (value: unknown): unknown => {
  if (value === null || value === undefined || value === "") return undefined
  if (Array.isArray(value)) {
    const kept = value.map(withoutDefaults).filter((v) => v !== undefined)
    return kept.length === 0 ? undefined : kept
  }
  if (typeof value === "object") {
    const kept: Record<string, unknown> = {}
    for (const [key, member] of Object.entries(value)) {
      const k = withoutDefaults(member)
      if (k !== undefined) kept[key] = k
    }
    return Object.keys(kept).length === 0 ? undefined : kept
  }
  return value
}

/** The bytes a card's signatures sign. */
export const canonicalCard = (card: Readonly<Record<string, unknown>>): Uint8Array => {
  const { signatures: _signatures, ...unsigned } = card
  return new TextEncoder().encode(canonicalize(withoutDefaults(unsigned) ?? {}) ?? "{}")
}

export interface CardSigningKey {
  readonly key: jose.CryptoKey | jose.KeyObject
  readonly alg: string
  readonly kid: string
  /** Where the public keys are published (`/.well-known/jwks.json`), for verifiers that fetch them. */
  readonly jku?: string
}

/** The card with one signature (by `signing`) in `signatures`, replacing any it had. */
export const signCard = async (card: Readonly<Record<string, unknown>>, signing: CardSigningKey): Promise<Record<string, unknown>> => {
  const header: jose.JWSHeaderParameters = {
    alg: signing.alg,
    typ: "JOSE",
    kid: signing.kid,
    ...(signing.jku !== undefined ? { jku: signing.jku } : {})
  }
  const jws = await new jose.FlattenedSign(canonicalCard(card)).setProtectedHeader(header).sign(signing.key)
  const signature: CardSignature = { protected: jws.protected!, signature: jws.signature }
  const { signatures: _old, ...unsigned } = card
  return { ...unsigned, signatures: [signature] }
}

/** Where a verifier gets the public key for a signature's header: a JWKS (`createLocalJWKSet`, `createRemoteJWKSet`) or one key. */
export type KeySource = jose.JWTVerifyGetKey | jose.CryptoKey | jose.KeyObject

/** Why a card's signatures did not verify. */
export class CardSignatureInvalid extends Error {
  readonly _tag = "CardSignatureInvalid"
}

/**
 * Verify a card: at least one of its signatures must verify against `keys` over the card as it is now.
 * Resolves with the `kid` that verified; rejects with CardSignatureInvalid saying why none did.
 */
export const verifyCard = async (card: Readonly<Record<string, unknown>>, keys: KeySource): Promise<string> => {
  const signatures = card.signatures
  if (!Array.isArray(signatures) || signatures.length === 0) throw new CardSignatureInvalid("the card has no signatures")
  const payload = canonicalCard(card)
  const reasons: Array<string> = []
  for (const entry of signatures as ReadonlyArray<CardSignature>) {
    try {
      const header = jose.decodeProtectedHeader(entry)
      if (header.typ !== "JOSE" || typeof header.kid !== "string" || typeof header.alg !== "string") {
        throw new Error("its protected header lacks typ JOSE, kid or alg")
      }
      const jws = { payload: jose.base64url.encode(payload), protected: entry.protected, signature: entry.signature }
      // (A KeyObject or CryptoKey is one key; anything else is a key set, which chooses by the header's kid.)
      if (typeof keys === "function") await jose.flattenedVerify(jws, keys as jose.FlattenedVerifyGetKey)
      else await jose.flattenedVerify(jws, keys)
      return header.kid
    } catch (e) {
      reasons.push((e as Error).message)
    }
  }
  throw new CardSignatureInvalid(`no signature of the card verifies: ${reasons.join("; ")}`)
}
