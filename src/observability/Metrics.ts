import { Context, Effect, Layer, Option, Runtime, type Scope } from "effect"
import * as Prom from "prom-client"
import type { TaskSnapshot } from "../domain/Task.js"
import type { TaskEvent, VersionedEvent } from "../domain/TaskEvent.js"

/**
 * Prometheus metrics (prom-client): one registry per server, the families below registered in it once,
 * and each agent's engine writing through `EngineMetrics`, bound to its `agent` label. The names are
 * fixed (dashboards are built on them) and documented in docs/operations.md.
 *
 * Counters and histograms are updated where things happen (a commit, a turn's start, a delivery);
 * gauges that describe the store (active tasks, the outbox) are read from it at scrape time, so they
 * are right for every instance sharing a PostgreSQL store and cost nothing between scrapes.
 */

/** A gauge's reading at scrape time: its label values and value, per row. */
export type Reading = ReadonlyArray<readonly [Prom.LabelValues<string>, number]>
type Source = () => Promise<Reading>

/** A gauge whose value is read when Prometheus scrapes, from every source that registered for it. */
class ReadGauge {
  readonly sources = new Set<Source>()
  constructor(registry: Prom.Registry, name: string, help: string, labelNames: ReadonlyArray<string>) {
    const sources = this.sources
    new Prom.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        // A source that fails (its store is down) is left out of this scrape; the others are still served.
        const readings = await Promise.all([...sources].map((read) => read().catch((): Reading => [])))
        this.reset()
        for (const reading of readings) for (const [labels, value] of reading) this.set(labels, value)
      }
    })
  }
}

const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400]

const makeFamilies = (registry: Prom.Registry) => {
  const registers = [registry]
  // Counts kept as plain numbers on the hot path (a prom-client `inc` hashes its labels every call) and
  // added to their counters when Prometheus scrapes: each engine's `flush`.
  const flushes = new Set<() => void>()
  const collect = () => {
    for (const flush of flushes) flush()
  }
  return {
    flushes,
    tasksCreated: new Prom.Counter({
      name: "a2a_ledger_tasks_created_total",
      help: "Tasks created.",
      labelNames: ["agent"],
      registers,
      collect
    }),
    tasksFinished: new Prom.Counter({
      name: "a2a_ledger_tasks_finished_total",
      help: "Tasks that reached a terminal state, by that state.",
      labelNames: ["agent", "state"],
      registers,
      collect
    }),
    tasksActive: new ReadGauge(registry, "a2a_ledger_tasks_active", "Tasks in a non-terminal state, by state (read from the store).", [
      "agent",
      "state"
    ]),
    taskDuration: new Prom.Histogram({
      name: "a2a_ledger_task_duration_seconds",
      help: "From a task's creation to its terminal state.",
      labelNames: ["agent", "state"],
      buckets: seconds,
      registers
    }),
    queueWait: new Prom.Histogram({
      name: "a2a_ledger_queue_wait_seconds",
      help: "From a task becoming SUBMITTED (created, or answered) to its turn starting.",
      labelNames: ["agent"],
      buckets: seconds,
      registers
    }),
    eventsAppended: new Prom.Counter({
      name: "a2a_ledger_events_appended_total",
      help: "Events this process appended to the log, by type.",
      labelNames: ["agent", "type"],
      registers,
      collect
    }),
    commitSeconds: new Prom.Histogram({
      name: "a2a_ledger_commit_seconds",
      help: "One commit batch, from the committer taking it to its callers being answered (durable).",
      labelNames: ["agent"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers
    }),
    commitBatchSize: new Prom.Histogram({
      name: "a2a_ledger_commit_batch_size",
      help: "Commits written in one commit batch (each one task's commands: a blocking send's whole turn can be one).",
      labelNames: ["agent"],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers
    }),
    sseSubscribers: new Prom.Gauge({
      name: "a2a_ledger_sse_subscribers",
      help: "Open streams (SendStreamingMessage, SubscribeToTask): SSE, and gRPC server streams.",
      labelNames: ["agent"],
      registers
    }),
    pushDeliveries: new Prom.Counter({
      name: "a2a_ledger_push_deliveries_total",
      help: "Webhook delivery attempts, by outcome: delivered, retry (failed, tried again later), dead (failed for good).",
      labelNames: ["agent", "outcome"],
      registers
    }),
    pushOutboxPending: new ReadGauge(registry, "a2a_ledger_push_outbox_pending", "Webhook deliveries waiting to be made (read from the store).", [
      "agent"
    ]),
    pushDeadLetters: new ReadGauge(registry, "a2a_ledger_push_dead_letters", "Webhook deliveries that failed for good (read from the store).", [
      "agent"
    ]),
    leasesHeld: new ReadGauge(registry, "a2a_ledger_leases_held", "Work leases this process holds (PostgreSQL).", ["agent"]),
    leaseTakeovers: new Prom.Counter({
      name: "a2a_ledger_lease_takeovers_total",
      help: "Tasks this process claimed from another whose lease lapsed with the turn unfinished (PostgreSQL).",
      labelNames: ["agent"],
      registers
    }),
    httpDuration: new Prom.Histogram({
      name: "http_server_request_duration_seconds",
      help: "Duration of HTTP server requests (OpenTelemetry HTTP semantic conventions); an SSE stream counts until it ends.",
      labelNames: ["http_request_method", "http_route", "http_response_status_code"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
      registers
    })
  }
}

export type Families = ReturnType<typeof makeFamilies>

/** The server's registry: what `GET /metrics` serves. */
export class MetricsRegistry extends Context.Tag("a2a-ledger/MetricsRegistry")<
  MetricsRegistry,
  { readonly registry: Prom.Registry; readonly families: Families }
>() {}

/** A registry with the a2a-ledger families and prom-client's default process metrics. */
export const makeRegistry = () => {
  const registry = new Prom.Registry()
  Prom.collectDefaultMetrics({ register: registry })
  return MetricsRegistry.of({ registry, families: makeFamilies(registry) })
}

/** A registry for the server when `enabled`; nothing otherwise (then nothing is recorded, and `/metrics` is 404). */
export const layerRegistry = (enabled = true): Layer.Layer<never> =>
  enabled ? (Layer.sync(MetricsRegistry, makeRegistry) as Layer.Layer<never>) : Layer.empty

/** The Prometheus text exposition of a registry. */
export const exposition = (registry: Prom.Registry) =>
  Effect.promise(async () => ({ body: await registry.metrics(), contentType: registry.contentType }))

const terminal: Partial<Record<TaskEvent["type"], string>> = {
  TaskCompleted: "completed",
  TaskFailed: "failed",
  TaskCanceled: "canceled",
  TaskRejected: "rejected"
}

/** The state label of an A2A state: `TASK_STATE_INPUT_REQUIRED` is `input_required`. */
export const stateLabel = (state: string) => state.replace(/^TASK_STATE_/, "").toLowerCase()

export type ReadGaugeName = "tasksActive" | "pushOutboxPending" | "pushDeadLetters" | "leasesHeld"

/** What one agent's engine records; a no-op where no registry is provided (an embedded engine). */
export interface EngineMetricsShape {
  /** One task's events, committed by this process, and the task as they left it. */
  readonly committed: (events: ReadonlyArray<VersionedEvent>, snapshot: TaskSnapshot) => void
  /** One commit batch: how long it took and how many commands it wrote. */
  readonly batch: (seconds: number, size: number) => void
  /** A turn started (at `at`) on this SUBMITTED task: how long it waited since it became SUBMITTED. */
  readonly turnStarted: (submitted: TaskSnapshot, at: string) => void
  readonly delivery: (outcome: "delivered" | "retry" | "dead") => void
  readonly leaseTakeover: () => void
  /** The last commit batches' latency (the board's overview): how many, and their median and 99th percentile in ms. */
  readonly recentCommits: () => { readonly count: number; readonly p50Ms: number; readonly p99Ms: number } | undefined
  /** An SSE stream on this agent opened (1) or ended (-1). */
  readonly stream: (delta: 1 | -1) => void
  /** Read a gauge from this agent at scrape time, as long as the calling scope lasts (label `agent` added). */
  readonly read: <R>(gauge: ReadGaugeName, read: Effect.Effect<Reading, unknown, R>) => Effect.Effect<void, never, R | Scope.Scope>
  readonly enabled: boolean
  /** Add what is counted but not yet in the registry, and stop counting (the engine is going). */
  readonly close: () => void
}

export class EngineMetrics extends Context.Tag("a2a-ledger/EngineMetrics")<EngineMetrics, EngineMetricsShape>() {}

const noop: EngineMetricsShape = {
  committed: () => {},
  batch: () => {},
  turnStarted: () => {},
  delivery: () => {},
  leaseTakeover: () => {},
  stream: () => {},
  recentCommits: () => undefined,
  read: () => Effect.void,
  enabled: false,
  close: () => {}
}

/** One agent's metrics, labelled `agent`, in the registry the context has (none: nothing is recorded). */
export const makeEngineMetrics = (agent: string, registry: typeof MetricsRegistry.Service): EngineMetricsShape => {
  const f = registry.families
  const created = f.tasksCreated.labels(agent)
  const commitSeconds = f.commitSeconds.labels(agent)
  const batchSize = f.commitBatchSize.labels(agent)
  const queueWait = f.queueWait.labels(agent)
  const takeovers = f.leaseTakeovers.labels(agent)
  const streams = f.sseSubscribers.labels(agent)
  // Every series this agent can have is there from the start, at 0 (a missing series is not a 0 to alerts).
  created.inc(0)
  takeovers.inc(0)
  streams.set(0)
  for (const h of [f.commitSeconds, f.commitBatchSize, f.queueWait]) h.zero({ agent })
  for (const state of Object.values(terminal)) {
    f.tasksFinished.labels(agent, state).inc(0)
    f.taskDuration.zero({ agent, state })
  }
  for (const outcome of ["delivered", "retry", "dead"]) f.pushDeliveries.labels(agent, outcome).inc(0)
  // Label children are made once per label set: the hot path only adds.
  const appended = new Map<string, Prom.Counter.Internal>()
  const finished = new Map<string, { readonly count: Prom.Counter.Internal; readonly duration: Prom.Histogram.Internal<string> }>()
  const deliveries = new Map<string, Prom.Counter.Internal>()
  const appendedOf = (type: string) => {
    let c = appended.get(type)
    if (c === undefined) appended.set(type, (c = f.eventsAppended.labels(agent, type)))
    return c
  }
  const finishedOf = (state: string) => {
    let c = finished.get(state)
    if (c === undefined) finished.set(state, (c = { count: f.tasksFinished.labels(agent, state), duration: f.taskDuration.labels(agent, state) }))
    return c
  }
  // The last 512 batches' latencies (ms), for the board.
  const recent = new Float64Array(512)
  let recentNext = 0
  let recentCount = 0
  let createdNow = 0
  const appendedNow = new Map<string, number>()
  const finishedNow = new Map<string, number>()
  const flush = () => {
    if (createdNow > 0) created.inc(createdNow)
    createdNow = 0
    for (const [type, n] of appendedNow) appendedOf(type).inc(n)
    appendedNow.clear()
    for (const [state, n] of finishedNow) finishedOf(state).count.inc(n)
    finishedNow.clear()
  }
  f.flushes.add(flush)
  return {
    enabled: true,
    close: () => {
      flush()
      f.flushes.delete(flush)
    },
    committed: (events, snapshot) => {
      for (const { event: e } of events) {
        appendedNow.set(e.type, (appendedNow.get(e.type) ?? 0) + 1)
        if (e.type === "TaskSubmitted") createdNow++
        const state = terminal[e.type]
        if (state !== undefined) {
          finishedNow.set(state, (finishedNow.get(state) ?? 0) + 1)
          const took = (Date.parse((e as { readonly at: string }).at) - Date.parse(snapshot.createdAt)) / 1000
          if (took >= 0) finishedOf(state).duration.observe(took)
        }
      }
    },
    batch: (s, size) => {
      commitSeconds.observe(s)
      batchSize.observe(size)
      recent[recentNext++ % recent.length] = s * 1000
      recentCount++
    },
    recentCommits: () => {
      if (recentCount === 0) return undefined
      const sorted = Array.from(recent.subarray(0, Math.min(recentCount, recent.length))).sort((a, b) => a - b)
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
      return { count: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99) }
    },
    turnStarted: (submitted, at) => {
      const wait = (Date.parse(at) - Date.parse(submitted.task.status.timestamp)) / 1000
      if (Number.isFinite(wait)) queueWait.observe(Math.max(0, wait))
    },
    delivery: (outcome) => {
      let c = deliveries.get(outcome)
      if (c === undefined) deliveries.set(outcome, (c = f.pushDeliveries.labels(agent, outcome)))
      c.inc()
    },
    leaseTakeover: () => takeovers.inc(),
    stream: (delta) => streams.inc(delta),
    read: <R>(gauge: ReadGaugeName, read: Effect.Effect<Reading, unknown, R>) =>
      Effect.gen(function* () {
        const runtime = yield* Effect.runtime<R>()
        const source: Source = () =>
          Runtime.runPromise(runtime)(Effect.map(read, (rows): Reading => rows.map(([labels, value]) => [{ ...labels, agent }, value] as const)))
        f[gauge].sources.add(source)
        yield* Effect.addFinalizer(() => Effect.sync(() => f[gauge].sources.delete(source)))
      })
  }
}

/** Bound to `agent` when the context has a registry (the server); a no-op otherwise. */
export const layerEngine = (agent: string) =>
  Layer.scoped(
    EngineMetrics,
    Effect.flatMap(Effect.serviceOption(MetricsRegistry), (registry) =>
      Option.isSome(registry)
        ? Effect.acquireRelease(
            Effect.sync(() => makeEngineMetrics(agent, registry.value)),
            (m) => Effect.sync(m.close)
          )
        : Effect.succeed(noop)
    )
  )
