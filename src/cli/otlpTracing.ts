import { FetchHttpClient } from "@effect/platform"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import { Effect, Layer, Option, Tracer } from "effect"
import { nativeTracer } from "../observability/Tracing.js"

/**
 * `serve`'s traces: OpenTelemetry over OTLP/HTTP, exported by `@effect/opentelemetry`'s OtlpTracer (Effect's
 * own spans, no OpenTelemetry SDK in the process; bundled into the command, not a dependency of the
 * package). Configured with the standard `OTEL_*` variables and off without an endpoint; while off,
 * Effect's tracer stays disabled, so nothing is recorded or allocated (observability/Tracing.ts).
 */

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
