import { Context, Effect, Layer, Scope } from "effect"
import { type Agent, agentMessage, provideAgent } from "../agent/Agent.js"
import type { Command } from "../domain/Task.js"
import { defaultWindowMs } from "../projections/MessageIndex.js"

export type RecoveryPolicy = "rerun" | "fail"

/**
 * How a task left WORKING is recovered, by either supervisor: its turn died (`why`: a process stopped, the
 * store failed), so the policy runs it again from its last input (`rerun`) or fails it (`fail`).
 */
export const recoveryCommand = (policy: RecoveryPolicy, why: string): Command =>
  policy === "rerun"
    ? { type: "Requeue", reason: `${why}; running it again` }
    : {
        type: "Fail",
        reason: `${why} (recovery policy: fail)`,
        message: agentMessage(`${why.charAt(0).toUpperCase()}${why.slice(1)}; it was not resumed.`)
      }

export interface EngineOptions {
  /** Worker turns running at once; more tasks wait in SUBMITTED, oldest first. */
  readonly maxWorkers: number
  /** What to do at start-up with tasks a dead process left WORKING. */
  readonly recovery: RecoveryPolicy
  /** Several processes may share the store: work goes by leases, and start-up recovery is theirs to do. */
  readonly sharedStore: boolean
  /**
   * A message whose messageId the caller already sent returns the original
   * task instead of starting another ("on"). "off" accepts every message as new,
   * for clients that reuse messageIds (the official TCK does, per scenario).
   */
  readonly idempotency: Idempotency
  /**
   * How long a messageId stays an idempotency key (ms): a repeat after it is a new message, and older
   * keys are deleted (KeyExpiry.ts).
   */
  readonly idempotencyWindowMs: number
  /**
   * The longest a caller waits on the store: a commit (queued and written), a
   * read. Past it the caller gets a StoreFailure instead of waiting on a store
   * that does not answer.
   */
  readonly storeTimeoutMs: number
  /**
   * How long a worker turn's start waits to be committed with the agent's first emission (one commit
   * fewer per turn); an agent quiet for longer has its start committed alone, so its task shows WORKING.
   */
  readonly startDelayMs: number
  /**
   * A durable sleep (`ctx.sleep`) this long or longer gives its worker up: the turn stops and its task is
   * woken when the timer is due. A shorter one waits in its worker (waking a turn costs a commit and a replay).
   */
  readonly parkSleepsFromMs: number
}

export type Idempotency = "on" | "off"

export const defaultEngineOptions: EngineOptions = {
  maxWorkers: 64,
  recovery: "rerun",
  sharedStore: false,
  idempotency: "on",
  idempotencyWindowMs: defaultWindowMs,
  storeTimeoutMs: 10_000,
  startDelayMs: 50,
  parkSleepsFromMs: 5_000
}

export class EngineConfig extends Context.Tag("a2a-ledger/EngineConfig")<EngineConfig, EngineOptions>() {}

/** The agent whose turns this engine runs. */
export class CurrentAgent extends Context.Tag("a2a-ledger/CurrentAgent")<CurrentAgent, Agent>() {}

export const layerConfig = (options: Partial<EngineOptions> = {}) => Layer.succeed(EngineConfig, { ...defaultEngineOptions, ...options })

/**
 * The agent, with the services its turns require taken from the context this layer is built in (once).
 * That context holds more than `R` (which has no keys at run time): the layer's own scope is left out, so
 * that nothing a turn adds to a scope of its own outlives the turn.
 */
export const layerAgent = <R>(agent: Agent<R>): Layer.Layer<CurrentAgent, never, R> =>
  Layer.effect(
    CurrentAgent,
    Effect.map(Effect.context<R>(), (services) => provideAgent(agent, Context.omit(Scope.Scope)(services) as Context.Context<R>))
  )
