import * as RateLimiter from "@effect/experimental/RateLimiter"
import { Context, Duration, Effect, Layer } from "effect"
import { RateLimited } from "./errors.js"

/**
 * Flow control for a server many callers share: how many tasks a principal may create in a window (a
 * token bucket each), and how many turns a tenant, and a principal within it, may run at once. Waiting
 * tasks are started fairly across tenants whatever the limits (the supervisors' part). A tenant may have
 * limits of its own (`tenants`), which replace the defaults for it.
 */
export interface Limits {
  /** Tasks one principal may create per window, as a token bucket: `limit` at once, refilled over `window`. */
  readonly creations?: { readonly limit: number; readonly window: Duration.DurationInput }
  /** Turns of one tenant's tasks running at once. */
  readonly maxRunning?: number
  /** Turns of one principal's tasks (within its tenant) running at once. */
  readonly maxRunningPerPrincipal?: number
}

export interface FlowControlOptions extends Limits {
  /** Limits of their own, by tenant ("" is the default tenant); a tenant not named here has the ones above. */
  readonly tenants?: Readonly<Record<string, Limits>>
}

export { priorityKey, priorityOf } from "../domain/Task.js"

/**
 * Who runs how many turns now, against the limits: counted only when some running limit is set. A
 * supervisor counts a turn from its start to its end.
 */
export const runningCounter = (flow: typeof FlowControl.Service) => {
  const byTenant = new Map<string, number>()
  const byPrincipal = new Map<string, number>()
  const key = (tenant: string, principal: string) => `${tenant}\u0000${principal}`
  const add = (map: Map<string, number>, k: string, n: number) => {
    const v = (map.get(k) ?? 0) + n
    if (v === 0) map.delete(k)
    else map.set(k, v)
  }
  return {
    tenantMay: (tenant: string) => {
      const max = flow.limitsOf(tenant).maxRunning
      return max === undefined || (byTenant.get(tenant) ?? 0) < max
    },
    principalMay: (tenant: string, principal: string) => {
      const max = flow.limitsOf(tenant).maxRunningPerPrincipal
      return max === undefined || (byPrincipal.get(key(tenant, principal)) ?? 0) < max
    },
    began: (tenant: string, principal: string) => {
      if (!flow.capsRunning) return
      add(byTenant, tenant, 1)
      add(byPrincipal, key(tenant, principal), 1)
    },
    ended: (tenant: string, principal: string) => {
      if (!flow.capsRunning) return
      add(byTenant, tenant, -1)
      add(byPrincipal, key(tenant, principal), -1)
    }
  }
}

export class FlowControl extends Context.Tag("a2a-ledger/FlowControl")<
  FlowControl,
  {
    /** A principal creates a task: admitted, or RateLimited with how long to wait. */
    readonly admitCreation: (tenant: string, principal: string) => Effect.Effect<void, RateLimited>
    /** The limits of a tenant. */
    readonly limitsOf: (tenant: string) => Limits
    /** Whether any running limit is set (else the supervisors need not count running turns). */
    readonly capsRunning: boolean
  }
>() {}

export const make = (options: FlowControlOptions = {}) =>
  Effect.gen(function* () {
    const limiter = yield* RateLimiter.make
    const limitsOf = (tenant: string): Limits => options.tenants?.[tenant] ?? options
    const admitCreation = (tenant: string, principal: string) =>
      Effect.suspend(() => {
        const creations = limitsOf(tenant).creations
        if (creations === undefined) return Effect.void
        return limiter
          .consume({
            algorithm: "token-bucket",
            onExceeded: "fail",
            key: `${tenant}\u0000${principal}`,
            limit: creations.limit,
            window: creations.window
          })
          .pipe(
            Effect.asVoid,
            Effect.catchAll((e) =>
              e.reason === "Exceeded"
                ? Effect.fail(
                    new RateLimited({
                      limit: "creations",
                      retryAfterMs: Duration.toMillis(e.retryAfter),
                      message: `Too many tasks created: at most ${creations.limit} per ${Duration.format(Duration.decode(creations.window))} for each principal; try again in ${Math.ceil(Duration.toMillis(e.retryAfter) / 1000)} s`
                    })
                  )
                : // The memory store does not fail; should another one, the request is not refused for it.
                  Effect.logWarning("rate limiter unavailable; the task is admitted", e)
            )
          )
      })
    const capsRunning = [options, ...Object.values(options.tenants ?? {})].some(
      (l) => l.maxRunning !== undefined || l.maxRunningPerPrincipal !== undefined
    )
    return FlowControl.of({ admitCreation, limitsOf, capsRunning })
  }).pipe(Effect.provide(RateLimiter.layerStoreMemory))

export const layer = (options?: FlowControlOptions) => Layer.effect(FlowControl, make(options))
