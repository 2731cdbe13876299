import { Context, Data, Effect, Layer } from "effect"
import { createHash, createPrivateKey, createPublicKey, type KeyObject, randomUUID } from "node:crypto"
import * as jose from "jose"
import { signCard } from "../protocol/cardSignature.js"

/**
 * The server's signing key (config `signing`, docs/signing.md): it signs the agent card (`signatures`,
 * spec §8.4) and every webhook call (a JWT, the spec's push-notification security), and its public half is
 * published at `/.well-known/jwks.json`. Without a key nothing is signed and that route is 404.
 */
export interface SigningOptions {
  /** The private key: PKCS#8 or SEC1/PKCS#1 PEM (EC P-256, P-384 or P-521, Ed25519, RSA). */
  readonly privateKeyPem: string
  /** The key's id in JWS headers and the JWKS (default: its RFC 7638 thumbprint). */
  readonly kid?: string | undefined
  /** The webhook JWTs' `iss` (default: the server's public URL, else "a2a-ledger"). */
  readonly issuer?: string | undefined
}

export class SigningKeyInvalid extends Data.TaggedError("SigningKeyInvalid")<{ readonly message: string }> {}

export interface ServerKey {
  readonly key: KeyObject
  readonly alg: string
  readonly kid: string
  readonly issuer: string
  /** The public JWK Set served at `/.well-known/jwks.json`. */
  readonly jwks: { readonly keys: ReadonlyArray<jose.JWK> }
}

export class SigningKey extends Context.Tag("a2a-ledger/SigningKey")<SigningKey, ServerKey>() {}

/** The JWS algorithm a key signs with: ES256/384/512 by curve, EdDSA, RS256. */
const algorithmOf = (key: KeyObject): string | undefined => {
  switch (key.asymmetricKeyType) {
    case "ec":
      return { prime256v1: "ES256", secp384r1: "ES384", secp521r1: "ES512" }[key.asymmetricKeyDetails?.namedCurve ?? ""]
    case "ed25519":
      return "EdDSA"
    case "rsa":
      return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 ? "RS256" : undefined
    default:
      return undefined
  }
}

export const make = (options: SigningOptions, defaultIssuer: string) =>
  Effect.gen(function* () {
    const key = yield* Effect.try({
      try: () => createPrivateKey(options.privateKeyPem),
      catch: (e) => new SigningKeyInvalid({ message: `it is not a private key in PEM: ${(e as Error).message}` })
    })
    const alg = algorithmOf(key)
    if (alg === undefined) {
      return yield* new SigningKeyInvalid({
        message: `it is ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve !== undefined ? ` (${key.asymmetricKeyDetails.namedCurve})` : ""}: use EC P-256/P-384/P-521, Ed25519 or RSA of 2048 bits or more`
      })
    }
    const publicJwk = yield* Effect.promise(() => jose.exportJWK(createPublicKey(key)))
    const kid = options.kid ?? (yield* Effect.promise(() => jose.calculateJwkThumbprint(publicJwk)))
    return SigningKey.of({
      key,
      alg,
      kid,
      issuer: options.issuer ?? defaultIssuer,
      jwks: { keys: [{ ...publicJwk, kid, alg, use: "sig" }] }
    })
  })

/**
 * The key as a service, or none (nothing signed) without options. Its users take it as optional
 * (`Effect.serviceOption`), so the layer is typed as providing nothing they must have.
 */
export const layer = (options: SigningOptions | undefined, defaultIssuer: string): Layer.Layer<never, SigningKeyInvalid> =>
  options === undefined ? Layer.empty : Layer.effect(SigningKey, make(options, defaultIssuer))

/** Claims of a webhook call's JWT that bind it to its request: the body's SHA-256 (hex), and the task. */
export const notificationJwt = (signing: ServerKey, audience: string, taskId: string, body: string) =>
  Effect.promise(() =>
    new jose.SignJWT({ taskId, request_body_sha256: createHash("sha256").update(body).digest("hex") })
      .setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: "JWT" })
      .setIssuer(signing.issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime("5m")
      .setJti(randomUUID())
      .sign(signing.key)
  )

const signedCards = new WeakMap<ServerKey, Map<string, Record<string, unknown>>>()

/**
 * The card signed by the server's key, if it has one (else as it is). Each card is signed once per process
 * and base URL: an ECDSA signature differs every time, and the card's ETag should not.
 */
export const signedCard = (card: Record<string, unknown>, jku: string) =>
  Effect.flatMap(Effect.serviceOption(SigningKey), (signing) => {
    if (signing._tag === "None") return Effect.succeed(card)
    const key = signing.value
    let cards = signedCards.get(key)
    if (cards === undefined) signedCards.set(key, (cards = new Map()))
    const text = JSON.stringify(card)
    const known = cards.get(text)
    if (known !== undefined) return Effect.succeed(known)
    return Effect.map(
      Effect.promise(() => signCard(card, { key: key.key, alg: key.alg, kid: key.kid, jku })),
      (signed) => {
        // (A server answers under a few base URLs at most; a Host header that varies without end is bounded here.)
        if (cards.size >= 64) cards.clear()
        cards.set(text, signed)
        return signed
      }
    )
  })
