import * as FlowControl from "../engine/FlowControl.js"
import * as RemoteAgents from "../engine/RemoteAgents.js"
import { Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import type { Agent } from "../agent/Agent.js"
import * as CommitFeed from "../engine/CommitFeed.js"
import * as EngineConfig from "../engine/EngineConfig.js"
import * as EventHub from "../engine/EventHub.js"
import * as InstanceId from "../engine/InstanceId.js"
import * as LeasedSupervisor from "../engine/LeasedSupervisor.js"
import * as Supervisor from "../engine/Supervisor.js"
import * as TaskEngine from "../engine/TaskEngine.js"
import * as Retention from "../engine/Retention.js"
import * as KeyExpiry from "../engine/KeyExpiry.js"
import * as TaskWriter from "../engine/TaskWriter.js"
import * as Deliverer from "../push/Deliverer.js"
import type { PushOptions } from "../push/PushConfig.js"
import * as PushConfigs from "../push/PushConfigs.js"
import * as StoreKind from "../eventlog/StoreKind.js"
import * as Metrics from "../observability/Metrics.js"
import * as StoreGauges from "../observability/StoreGauges.js"
import * as BoardData from "../board/BoardData.js"

export interface EngineLayerOptions<R = never> {
  /** The agent; the layer requires what its turns require (`R`). */
  readonly agent: Agent<R>
  /** Turns that run at once (default 64); more tasks wait as SUBMITTED, oldest first. */
  readonly maxWorkers?: number
  /** What happens to a task left WORKING by a process that stopped: its turn runs again (`"rerun"`, default), or it fails. */
  readonly recovery?: EngineConfig.RecoveryPolicy
  /** Repeated messageIds return the original task (default "on"). */
  readonly idempotency?: EngineConfig.Idempotency | undefined
  /** How long a messageId stays an idempotency key, in ms (default 24 h); older keys are deleted. */
  readonly idempotencyWindowMs?: number | undefined
  /** Who this process is: recorded on every event it writes, and the owner of its leases on PostgreSQL (default: a fresh UUID). */
  readonly instanceId?: string
  /** Unread events kept per live stream before the oldest are dropped (and re-read from the log). */
  readonly hubCapacity?: number
  /** Webhook delivery: retries, timeouts, and the hosts allowed past the SSRF guard. */
  readonly push?: Partial<PushOptions> | undefined
  /** On a shared PostgreSQL store: how often watched tasks are checked when no commit notice came (default 2 s). */
  readonly commitPollMs?: number | undefined
  /** Delete finished tasks this long after their last change (unset: keep them). */
  readonly retentionMs?: number | undefined
  /** On a shared PostgreSQL store: how long a work lease lasts without renewal (default 15 s). */
  readonly leaseMs?: number | undefined
  /** The longest a caller waits on the store (a commit, a read) before it gets a StoreFailure (default 10 s). */
  readonly storeTimeoutMs?: number | undefined
  /** How long a turn's start waits to be committed with the agent's first emission (default 50 ms). */
  readonly startDelayMs?: number | undefined
  /** Flow control: task creations per principal, turns running per tenant and per principal (FlowControl.ts). */
  readonly flowControl?: FlowControl.FlowControlOptions | undefined
  /** Delegation to other A2A agents (`ctx.delegate`): the credentials for each remote host. */
  readonly delegation?: RemoteAgents.DelegationOptions | undefined
  /** A durable sleep (`ctx.sleep`) this long or longer gives its worker up until it is due (default 5 s). */
  readonly parkSleepsFromMs?: number | undefined
  /**
   * The `agent` label of this engine's metrics (default: the agent's name). Metrics are recorded when the
   * context has a `MetricsRegistry` (the server provides one); otherwise nothing is.
   */
  readonly metricsLabel?: string | undefined
}

/**
 * The task engine (writer, supervisor, hub, façade, webhook deliverer) for
 * one agent. Needs a store (see `Store`). Building it recovers unfinished
 * tasks and starts delivering queued webhooks.
 *
 * On SQLite (one process per file) work is queued in memory. On PostgreSQL,
 * which several processes may share, the database is the queue: workers run
 * under leases, and unfinished tasks are recovered by lease expiry.
 */
export const layer = <R = never>(options: EngineLayerOptions<R>) =>
  Layer.unwrapEffect(
    Effect.map(StoreKind.StoreKind, (kind) => {
      const instanceId = options.instanceId ?? randomUUID()
      // Every log of this engine names its agent and this process (JSON logs carry them as fields).
      return compose({ ...options, instanceId, metricsLabel: options.metricsLabel ?? options.agent.name }, StoreKind.isShared(kind)).pipe(
        Layer.annotateLogs({ agent: options.metricsLabel ?? options.agent.name, instance: instanceId })
      )
    })
  )

type SupervisorLayer = Layer.Layer<
  Layer.Layer.Success<typeof Supervisor.layer>,
  Layer.Layer.Error<typeof Supervisor.layer> | Layer.Layer.Error<ReturnType<typeof LeasedSupervisor.layer>>,
  Layer.Layer.Context<typeof Supervisor.layer> | Layer.Layer.Context<ReturnType<typeof LeasedSupervisor.layer>>
>
const supervisorLayer = (layer: SupervisorLayer): SupervisorLayer => layer

const compose = <R>(options: EngineLayerOptions<R>, shared: boolean) =>
  Layer.merge(PushConfigs.layer, BoardData.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(TaskEngine.layer, Deliverer.layer, Retention.layer(options.retentionMs), KeyExpiry.layer, StoreGauges.layer)),
    // (Each supervisor as the union of both: the ternary's two layer types do not unify by themselves.)
    Layer.provideMerge(shared ? supervisorLayer(LeasedSupervisor.layer(options.leaseMs)) : supervisorLayer(Supervisor.layer)),
    Layer.provideMerge(
      writer(
        { ...options, sharedStore: shared },
        Layer.mergeAll(
          Deliverer.layerSettings(options.push),
          RemoteAgents.layer(options.delegation),
          FlowControl.layer(options.flowControl),
          EngineConfig.layerAgent(options.agent)
        )
      )
    )
  )

/**
 * The writer and what it needs (hub, commit feed, metrics, config), over `services`: the engine's base.
 * Alone (`layerWriter`), it commits commands with no supervisor and no workers.
 */
const writer = <ROut, E, RIn>(
  options: Omit<EngineLayerOptions<never>, "agent"> & { readonly sharedStore?: boolean },
  services: Layer.Layer<ROut, E, RIn>
) =>
  TaskWriter.layer.pipe(
    Layer.provideMerge(CommitFeed.layer(options.commitPollMs)),
    Layer.provideMerge(
      Layer.mergeAll(
        services,
        Deliverer.layerSignal,
        EventHub.layer(options.hubCapacity),
        Metrics.layerEngine(options.metricsLabel ?? "a2a-ledger"),
        InstanceId.layer(options.instanceId),
        EngineConfig.layerConfig({
          ...(options.maxWorkers !== undefined ? { maxWorkers: options.maxWorkers } : {}),
          ...(options.recovery !== undefined ? { recovery: options.recovery } : {}),
          ...(options.idempotency !== undefined ? { idempotency: options.idempotency } : {}),
          ...(options.idempotencyWindowMs !== undefined ? { idempotencyWindowMs: options.idempotencyWindowMs } : {}),
          ...(options.storeTimeoutMs !== undefined ? { storeTimeoutMs: options.storeTimeoutMs } : {}),
          ...(options.startDelayMs !== undefined ? { startDelayMs: options.startDelayMs } : {}),
          ...(options.parkSleepsFromMs !== undefined ? { parkSleepsFromMs: options.parkSleepsFromMs } : {}),
          sharedStore: options.sharedStore ?? false
        })
      )
    )
  )

/**
 * The writer alone, for a tool that commits commands to a store (`a2a-ledger task cancel --config`): no
 * supervisor, no workers, no recovery. On SQLite the store must be the tool's own (no server on it); on a
 * shared PostgreSQL store it commits as one more instance would.
 */
export const layerWriter = (instanceId: string) =>
  Layer.unwrapEffect(
    Effect.map(StoreKind.StoreKind, (kind) => writer({ instanceId, sharedStore: StoreKind.isShared(kind), metricsLabel: "cli" }, Layer.empty))
  )
