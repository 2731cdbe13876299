import { Context, Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import * as jose from "jose"
import { A2AError, Errors } from "../protocol/errors.js"
import { header, type RequestHeaders } from "./request.js"

/**
 * Authentication (spec §7, §13): who is calling. Static API keys (sent as
 * `Authorization: Bearer <key>` or `X-API-Key: <key>`) and, optionally, JWTs
 * verified against a JWKS. The principal found here scopes every task the
 * caller creates or sees. With nothing configured, authentication is off and
 * every caller is the anonymous principal "".
 */
export interface ApiKey {
  readonly principal: string
  readonly key: string
  /** The tenants this key may address ("" is the default tenant); unset: any tenant. */
  readonly tenants?: ReadonlyArray<string>
}

export interface JwtOptions {
  /** Where the signing keys are published (fetched and cached; refreshed when an unknown `kid` appears). */
  readonly jwksUrl: string
  readonly issuer?: string
  readonly audience?: string | ReadonlyArray<string>
  /** The claim naming the principal (default `sub`). */
  readonly principalClaim?: string
  /** Accepted signature algorithms (default: the asymmetric ones jose supports). */
  readonly algorithms?: ReadonlyArray<string>
  /**
   * The claim naming the tenant(s) the caller may address: a string or an
   * array of strings. Unset: any tenant. Set but missing from a token: the
   * token is refused.
   */
  readonly tenantClaim?: string
}

export interface AuthOptions {
  readonly apiKeys?: ReadonlyArray<ApiKey>
  readonly jwt?: JwtOptions
  /** The principals who may use the operator's endpoints (`/metrics`): API-key principals or JWT subjects. */
  readonly admins?: ReadonlyArray<string>
}

/**
 * Who is calling: the principal ("" when authentication is off), and the
 * tenants its credential is bound to (undefined: any). Another tenant is, to
 * this caller, a tenant with nothing in it.
 */
export interface Principal {
  readonly name: string
  readonly tenants?: ReadonlySet<string>
}

export const anonymousPrincipal: Principal = { name: "" }

/** Whether the caller may address this tenant. */
export const mayAddress = (principal: Principal, tenant: string) => principal.tenants === undefined || principal.tenants.has(tenant)

export class Authenticator extends Context.Tag("a2a-ledger/Authenticator")<
  Authenticator,
  {
    readonly enabled: boolean
    /** The principal making this request, or an Unauthenticated error. */
    readonly authenticate: (headers: RequestHeaders) => Effect.Effect<Principal, A2AError>
    /** What the agent card declares: `securitySchemes` and `securityRequirements`. */
    readonly cardSecurity: Readonly<Record<string, unknown>>
    /**
     * The caller of an operator's endpoint (`/metrics`): with authentication on, an admin (else
     * PERMISSION_DENIED); with it off, anyone.
     */
    readonly authenticateAdmin: (headers: RequestHeaders) => Effect.Effect<Principal, A2AError>
  }
>() {}

/** Where the credentials go, for the 401's WWW-Authenticate challenge. */
export const challenge = 'Bearer realm="a2a-ledger"'

const unauthenticated = (message: string) => new A2AError(Errors.Unauthenticated, message)

const digest = (key: string) => createHash("sha256").update(key).digest("hex")

const defaultAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

const looksLikeJwt = (token: string) => token.split(".").length === 3

export const make = (options: AuthOptions = {}) => {
  const keys = options.apiKeys ?? []
  // Keys are compared by their SHA-256, so a lookup never compares secrets byte by byte.
  const byDigest = new Map<string, Principal>(
    keys.map((k) => [digest(k.key), { name: k.principal, ...(k.tenants !== undefined ? { tenants: new Set(k.tenants) } : {}) }])
  )
  const jwt = options.jwt
  const jwks = jwt !== undefined ? jose.createRemoteJWKSet(new URL(jwt.jwksUrl), { timeoutDuration: 5_000 }) : undefined
  const enabled = keys.length > 0 || jwt !== undefined

  const verifyJwt = (token: string): Effect.Effect<Principal, A2AError> =>
    Effect.tryPromise({
      try: () =>
        jose.jwtVerify(token, jwks!, {
          algorithms: [...(jwt!.algorithms ?? defaultAlgorithms)],
          ...(jwt!.issuer !== undefined ? { issuer: jwt!.issuer } : {}),
          ...(jwt!.audience !== undefined ? { audience: typeof jwt!.audience === "string" ? jwt!.audience : [...jwt!.audience] } : {})
        }),
      catch: (e) => unauthenticated(`the bearer token was not accepted: ${(e as Error).message ?? "invalid token"}`)
    }).pipe(
      Effect.flatMap(({ payload }) => {
        const claim = jwt!.principalClaim ?? "sub"
        const principal = payload[claim]
        if (typeof principal !== "string" || principal === "") {
          return Effect.fail(unauthenticated(`the bearer token has no "${claim}" claim naming the caller`))
        }
        const tenantClaim = jwt!.tenantClaim
        if (tenantClaim === undefined) return Effect.succeed<Principal>({ name: principal })
        const bound = payload[tenantClaim]
        const tenants =
          typeof bound === "string"
            ? [bound]
            : Array.isArray(bound) && bound.every((t) => typeof t === "string")
              ? (bound as Array<string>)
              : undefined
        return tenants !== undefined
          ? Effect.succeed<Principal>({ name: principal, tenants: new Set(tenants) })
          : Effect.fail(unauthenticated(`the bearer token has no "${tenantClaim}" claim naming the tenants it may address`))
      })
    )

  const authenticate = (headers: RequestHeaders): Effect.Effect<Principal, A2AError> => {
    if (!enabled) return Effect.succeed(anonymousPrincipal)
    const authorization = header(headers, "authorization")
    if (authorization !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
      if (m === null) return Effect.fail(unauthenticated("the Authorization header must be `Bearer <token>`"))
      const token = m[1]!
      const principal = byDigest.get(digest(token))
      if (principal !== undefined) return Effect.succeed(principal)
      if (jwks !== undefined && looksLikeJwt(token)) return verifyJwt(token)
      return Effect.fail(unauthenticated("the bearer token was not accepted"))
    }
    const apiKey = header(headers, "x-api-key")
    if (apiKey !== undefined) {
      const principal = byDigest.get(digest(apiKey.trim()))
      return principal !== undefined ? Effect.succeed(principal) : Effect.fail(unauthenticated("the API key was not accepted"))
    }
    return Effect.fail(
      unauthenticated(
        `authentication required: send ${jwks !== undefined ? "a JWT or an API key" : "an API key"} as \`Authorization: Bearer <token>\`${keys.length > 0 ? " or `X-API-Key: <key>`" : ""}`
      )
    )
  }

  const schemes: Record<string, unknown> = {}
  if (keys.length > 0) {
    schemes.apiKey = { apiKeySecurityScheme: { location: "header", name: "X-API-Key", description: "An API key issued by the operator" } }
  }
  schemes.bearer = {
    httpAuthSecurityScheme: {
      scheme: "Bearer",
      ...(jwt !== undefined ? { bearerFormat: "JWT" } : {}),
      description: jwt !== undefined ? "A JWT from the configured issuer, or an API key" : "An API key as a bearer token"
    }
  }
  const cardSecurity = enabled
    ? { securitySchemes: schemes, securityRequirements: Object.keys(schemes).map((name) => ({ schemes: { [name]: { list: [] } } })) }
    : {}

  const admins = new Set(options.admins ?? [])
  const authenticateAdmin = (headers: RequestHeaders) =>
    Effect.flatMap(authenticate(headers), (principal) =>
      !enabled || admins.has(principal.name)
        ? Effect.succeed(principal)
        : Effect.fail(
            new A2AError(
              Errors.PermissionDenied,
              `${principal.name} is not an admin: the operator's endpoints need a principal listed in auth.admins`
            )
          )
    )

  return Authenticator.of({ enabled, authenticate, cardSecurity, authenticateAdmin })
}

export const layer = (options: AuthOptions = {}) => Layer.sync(Authenticator, () => make(options))
