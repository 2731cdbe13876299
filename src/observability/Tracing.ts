import { Context, Effect, type Fiber, FiberRef, Tracer } from "effect"

/**
 * Where the engine makes spans, and how the trace context travels. The spans are Effect's own; they go
 * wherever the runtime's tracer sends them: `serve` provides an OTLP exporter (cli/otlpTracing.ts), an
 * application embedding the engine may provide its own; with none, nothing is made at all.
 *
 * The trace context travels as W3C `traceparent`: read from a SendMessage, stored with the task (its
 * TaskSubmitted or InputProvided), so a turn run after a restart joins the same trace; written on
 * webhook calls and on delegated A2A calls.
 */

/** Effect's own tracer, which records nothing anywhere: the one every runtime has until a tracer is provided. */
export const nativeTracer = Effect.runSync(Effect.tracer)

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
