import { FetchHttpClient } from "@effect/platform"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import { Context, Effect, type Fiber, FiberRef, Layer, Option, Tracer } from "effect"

/**
 * OpenTelemetry traces, exported over OTLP/HTTP by `@effect/opentelemetry`'s OtlpTracer (Effect's own
 * spans, no OpenTelemetry SDK in the process). Configured with the standard `OTEL_*` variables and off
 * without an endpoint; while off, Effect's tracer stays disabled, so nothing is recorded or allocated.
 *
 * The trace context travels as W3C `traceparent`: read from a SendMessage, stored with the task (its
 * TaskSubmitted or InputProvided), so a turn run after a restart joins the same trace; written on
 * webhook calls and on delegated A2A calls.
 */

/** Effect's own tracer, which records nothing anywhere: the one every runtime has until a tracer is provided. */
const nativeTracer = Effect.runSync(Effect.tracer)

export interface TracingConfig {
  /** Where spans go: the OTLP/HTTP traces endpoint (…/v1/traces). */
  readonly url: string
  readonly protocol: "http/json" | "http/protobuf"
  readonly headers: Readonly<Record<string, string>>
  readonly serviceName: string
  readonly resourceAttributes: Readonly<Record<string, string>>
  /** How often buffered spans are sent. */
  readonly exportIntervalMs: number
}

/** `k1=v1,k2=v2` (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS), values percent-decoded. */
const pairs = (text: string | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const item of (text ?? "").split(",")) {
    const eq = item.indexOf("=")
    if (eq <= 0) continue
    const key = item.slice(0, eq).trim()
    const raw = item.slice(eq + 1).trim()
    let value = raw
    try {
      value = decodeURIComponent(raw)
    } catch {}
    if (key !== "") out[key] = value
  }
  return out
}

/**
 * Tracing as the environment asks for it (OpenTelemetry's variables): `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
 * (used as it is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`); none, `OTEL_TRACES_EXPORTER=none`
 * or `OTEL_SDK_DISABLED=true`: off. `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` (`http/protobuf`, the default,
 * or `http/json`), `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`, `OTEL_SERVICE_NAME` (default a2a-ledger),
 * `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_SCHEDULE_DELAY` (ms between exports, default 5000).
 * A protocol this exporter does not speak (gRPC) is an error, named.
 */
export const fromEnv = (env: Record<string, string | undefined>): Option.Option<TracingConfig> | string => {
  if (env.OTEL_SDK_DISABLED === "true" || env.OTEL_TRACES_EXPORTER === "none") return Option.none()
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT
  const url = traces !== undefined && traces !== "" ? traces : base !== undefined && base !== "" ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined
  if (url === undefined) return Option.none()
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf"
  if (protocol !== "http/protobuf" && protocol !== "http/json") {
    return `OTEL_EXPORTER_OTLP_PROTOCOL: ${protocol} is not supported; use http/protobuf or http/json (OTLP over HTTP)`
  }
  const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY ?? 5_000)
  const resourceAttributes = pairs(env.OTEL_RESOURCE_ATTRIBUTES)
  return Option.some({
    url,
    protocol,
    headers: { ...pairs(env.OTEL_EXPORTER_OTLP_HEADERS), ...pairs(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) },
    serviceName: env.OTEL_SERVICE_NAME ?? resourceAttributes["service.name"] ?? "a2a-ledger",
    resourceAttributes,
    exportIntervalMs: Number.isFinite(delay) && delay > 0 ? delay : 5_000
  })
}

/**
 * Statements outside any traced operation (the migrations, the outbox's and the leases' polling loops,
 * the store probe) are not traced: each would be a trace of its own, every second. A statement inside
 * one (a request's read, a delivery's) is a span of it. `tracer` records the rest.
 */
export const withoutBackgroundStatements = (tracer: Tracer.Tracer): Tracer.Tracer => {
  const dropped = new WeakSet<Tracer.AnySpan>()
  return Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const background = Option.isNone(parent) ? name.startsWith("sql.") : dropped.has(parent.value)
      if (!background) return tracer.span(name, parent, context, links, startTime, kind, options)
      const span = nativeTracer.span(name, parent, context, links, startTime, kind, options)
      dropped.add(span)
      return span
    },
    context: (f, fiber) => tracer.context(f, fiber)
  })
}

/** The tracer: spans made in its context are exported to `config.url`. */
export const layer = (config: TracingConfig, serviceVersion?: string) =>
  Layer.unwrapScoped(
    Effect.map(
      OtlpTracer.make({
        url: config.url,
        headers: config.headers,
        exportInterval: config.exportIntervalMs,
        resource: {
          serviceName: config.serviceName,
          ...(serviceVersion !== undefined ? { serviceVersion } : {}),
          attributes: config.resourceAttributes
        }
      }),
      (tracer) => Layer.setTracer(withoutBackgroundStatements(tracer))
    )
  ).pipe(
    Layer.provide(config.protocol === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf),
    Layer.provide(FetchHttpClient.layer)
  )

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** A W3C `traceparent` as the parent span it names; none when it is not one. */
export const parentOf = (traceparent: string | undefined): Tracer.ExternalSpan | undefined => {
  if (traceparent === undefined) return undefined
  const m = traceparentPattern.exec(traceparent)
  if (m === null || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return undefined
  return Tracer.externalSpan({ traceId: m[1]!, spanId: m[2]!, sampled: (Number.parseInt(m[3]!, 16) & 1) === 1 })
}

/** The current span as a W3C `traceparent`, when there is a real one (not while tracing is off). */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.withFiberRuntime((fiber) => {
  if (!isTracing(fiber)) return Effect.succeed(undefined)
  const span = fiber.currentSpan
  if (span === undefined) return Effect.succeed(undefined)
  const traceparent = `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
  return Effect.succeed(traceparentPattern.test(traceparent) ? traceparent : undefined)
})

/** `traceparent` for an outgoing call, from the current span (no header while tracing is off). */
export const traceHeaders: Effect.Effect<Record<string, string>> = Effect.map(
  currentTraceparent,
  (traceparent): Record<string, string> => (traceparent !== undefined ? { traceparent } : {})
)

/**
 * Whether this fiber's spans go anywhere: the tracer is enabled and is not Effect's native one (`serve`
 * provides the OTLP tracer; an application embedding the engine may provide its own, and then the
 * engine's spans join its traces). Otherwise no span is made, no `traceparent` is sent or stored.
 */
export const isTracing = (fiber: Fiber.RuntimeFiber<unknown, unknown>) =>
  fiber.getFiberRef(FiberRef.currentTracerEnabled) && Context.get(fiber.currentDefaultServices, Tracer.Tracer) !== nativeTracer

/**
 * `Effect.withSpan` where tracing is on, and nothing at all where it is off (the hot paths: every request,
 * command and commit), so a server without an OTLP endpoint pays only this check.
 */
export const traced =
  (name: string, options: Tracer.SpanOptions | (() => Tracer.SpanOptions) = {}) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime<A, E, R>((fiber) =>
      isTracing(fiber)
        ? Effect.withSpan(effect, name, { captureStackTrace: false, ...(typeof options === "function" ? options() : options) })
        : effect
    )
