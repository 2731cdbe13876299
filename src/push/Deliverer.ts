import { Cause, Clock, Context, Effect, Either, FiberSet, Layer, Option, Queue, Random } from "effect"
import * as http from "node:http"
import * as https from "node:https"
import { EventLog } from "../eventlog/EventLog.js"
import { presentTask, streamResponseFor } from "../protocol/present.js"
import { taskOut } from "../protocol/v03.js"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { defaultPushOptions, type Delivery, type PushConfig, type PushOptions, retryDelay } from "./PushConfig.js"
import { PushStore } from "./PushStore.js"
import { checkUrl, guardedLookup, makePolicy, type WebhookPolicy } from "./WebhookGuard.js"
import { EngineMetrics } from "../observability/Metrics.js"
import { isTracing, parentOf, traceHeaders } from "../observability/Tracing.js"
import { notificationJwt, type ServerKey, SigningKey } from "../signing/SigningKey.js"

/** Wakes the deliverer when the committer queued deliveries, so they leave at once instead of at the next poll. */
export class OutboxSignal extends Context.Tag("a2a-ledger/OutboxSignal")<
  OutboxSignal,
  { readonly wake: Effect.Effect<void>; readonly sleep: (ms: number) => Effect.Effect<void> }
>() {}

export const layerSignal = Layer.effect(
  OutboxSignal,
  Effect.map(Queue.sliding<void>(1), (queue) =>
    OutboxSignal.of({
      wake: Effect.asVoid(Queue.offer(queue, undefined)),
      sleep: (ms) => Queue.take(queue).pipe(Effect.timeout(ms), Effect.ignore)
    })
  )
)

/** The push settings and the SSRF policy the deliverer and the config methods share. */
export class PushSettings extends Context.Tag("a2a-ledger/PushSettings")<
  PushSettings,
  { readonly options: PushOptions; readonly policy: WebhookPolicy }
>() {}

/** The settings from options; an allowlist entry that is not a host, address or range fails the layer. */
export const layerSettings = (options: Partial<PushOptions> = {}) =>
  Layer.effect(
    PushSettings,
    Effect.map(Either.match(makePolicy(options.allowHosts ?? []), { onLeft: (e) => Effect.fail(new Error(e)), onRight: Effect.succeed }), (policy) =>
      PushSettings.of({ options: { ...defaultPushOptions, ...options }, policy })
    )
  )

/**
 * A webhook call's JWT (docs/signing.md): `Authorization: Bearer` unless the client registered credentials
 * of its own for that header, else `X-A2A-Notification-JWT`. Each attempt gets a fresh one (new `jti`, `iat`).
 */
const signatureHeaders = (signing: ServerKey, config: PushConfig, taskId: string, body: string) =>
  Effect.map(
    notificationJwt(signing, config.url, taskId, body),
    (jwt): Record<string, string> => (config.authentication === undefined ? { authorization: `Bearer ${jwt}` } : { "x-a2a-notification-jwt": jwt })
  )

/** The result of one webhook call: delivered, or why not. */
type Attempt = Either.Either<void, string>

const maxErrorLength = 500

/**
 * One POST to a webhook. Connects only to addresses the policy allows (checked
 * after DNS), never follows redirects, gives up after `timeoutMs`, and reads
 * at most a little of the answer.
 */
export const post = (
  config: PushConfig,
  body: string,
  policy: WebhookPolicy,
  timeoutMs: number,
  extraHeaders: Readonly<Record<string, string>> = {}
): Effect.Effect<Attempt> =>
  Effect.async<Attempt>((resume) => {
    const checked = checkUrl(policy, config.url)
    if (Either.isLeft(checked)) {
      resume(Effect.succeed(Either.left(checked.left)))
      return
    }
    const url = checked.right
    const headers: Record<string, string | number> = {
      "content-type": "application/a2a+json",
      "content-length": Buffer.byteLength(body),
      "user-agent": "a2a-ledger",
      ...extraHeaders
    }
    if (config.authentication !== undefined) {
      const { scheme, credentials } = config.authentication
      headers.authorization = credentials !== undefined && credentials !== "" ? `${scheme} ${credentials}` : scheme
    }
    if (config.token !== undefined && config.token !== "") headers["x-a2a-notification-token"] = config.token
    const client = url.protocol === "https:" ? https : http
    let settled = false
    const finish = (a: Attempt) => {
      if (settled) return
      settled = true
      resume(Effect.succeed(a))
    }
    const req = client.request(url, { method: "POST", headers, lookup: guardedLookup(policy), timeout: timeoutMs }, (res) => {
      const status = res.statusCode ?? 0
      res.resume()
      res.on("end", () => finish(status >= 200 && status < 300 ? Either.right(undefined) : Either.left(`HTTP ${status}`)))
      res.on("error", (e) => finish(Either.left(e.message)))
    })
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on("error", (e) => finish(Either.left(e.message.slice(0, maxErrorLength))))
    req.end(body)
    return Effect.sync(() => req.destroy())
  })

/**
 * The delivery loop: takes due deliveries from the outbox and POSTs each on
 * its own fiber (at most `concurrency` at once), so a slow webhook delays
 * only its own queue, and never a task. A success deletes the row; a failure
 * schedules a retry with backoff, or after `maxAttempts` moves it to the
 * dead letters. Shutting down interrupts calls in flight: they stay pending
 * and go out again after the restart (at least once).
 */
export const run = Effect.gen(function* () {
  const store = yield* PushStore
  const log = yield* EventLog
  const readModel = yield* TaskReadModel
  const signal = yield* OutboxSignal
  const { options, policy } = yield* PushSettings
  const metrics = yield* EngineMetrics
  const signing = yield* Effect.serviceOption(SigningKey)
  const permits = yield* Effect.makeSemaphore(options.concurrency)
  const running = yield* FiberSet.make()
  // Taken rows wait for a permit here; one that waits longer than its hold could be taken again.
  const inFlight = new Set<number>()

  /** What to POST for a delivery; none for an event no client is shown (the step journal), or one gone. */
  const bodyFor = (d: Delivery, config: PushConfig) =>
    Effect.gen(function* () {
      const [event] = yield* log.read(d.taskId, { fromVersion: d.version, toVersion: d.version })
      const update = event === undefined ? undefined : streamResponseFor(d.taskId, d.contextId, event.event)
      if (update === undefined) return Option.none()
      if (config.format === "0.3") {
        // v0.3 servers POSTed the whole Task; its state now is the freshest answer.
        const task = yield* readModel.get(d.taskId)
        return Option.map(task, (s) => JSON.stringify(taskOut(presentTask(s.task))))
      }
      return Option.some(JSON.stringify(update))
    })

  /** Traced: a delivery is a client span in the trace of the turn whose update it carries. */
  const deliver = (d: Delivery) =>
    Effect.withFiberRuntime<void, unknown>((fiber) =>
      isTracing(fiber)
        ? Effect.flatMap(Effect.option(readModel.get(d.taskId)), (task) => {
            const parent = parentOf(Option.getOrUndefined(Option.flatten(task))?.traceparent)
            return Effect.withSpan(deliverOnce(d), "POST", {
              kind: "client",
              captureStackTrace: false,
              ...(parent !== undefined ? { parent } : { root: true }),
              attributes: {
                "http.request.method": "POST",
                "a2a.task.id": d.taskId,
                "a2a_ledger.push.config_id": d.configId,
                "a2a_ledger.push.attempt": d.attempts + 1,
                "a2a_ledger.event.version": Number(d.version)
              }
            })
          })
        : deliverOnce(d)
    )

  const deliverOnce = (d: Delivery) =>
    Effect.gen(function* () {
      const config = yield* store.getConfig(d.taskId, d.configId)
      // The config was deleted: nothing more goes to that webhook.
      if (Option.isNone(config)) return yield* store.dropped(d.id)
      const body = yield* bodyFor(d, config.value)
      if (Option.isNone(body)) return yield* store.dropped(d.id)
      const headers = yield* traceHeaders
      const signed = Option.isSome(signing) ? yield* signatureHeaders(signing.value, config.value, d.taskId, body.value) : {}
      const attempt = yield* post(config.value, body.value, policy, options.timeoutMs, { ...headers, ...signed })
      if (Either.isLeft(attempt)) yield* Effect.annotateCurrentSpan("error.type", attempt.left)
      const now = yield* Clock.currentTimeMillis
      if (Either.isRight(attempt)) {
        metrics.delivery("delivered")
        return yield* store.delivered(d.id, now)
      }
      const attempts = d.attempts + 1
      if (attempts >= options.maxAttempts) {
        metrics.delivery("dead")
        yield* Effect.logWarning(
          `webhook delivery ${d.id} (task ${d.taskId}, config ${d.configId}, version ${d.version}) failed ${attempts} times; moved to the dead letters: ${attempt.left}`
        )
        return yield* store.failed(d.id, attempt.left, now, undefined)
      }
      const random = yield* Random.next
      metrics.delivery("retry")
      yield* store.failed(d.id, attempt.left, now, now + retryDelay(options, attempts, random))
    }).pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause)
          : Effect.logWarning(`webhook delivery ${d.id} could not be recorded; it stays queued`, cause)
      ),
      permits.withPermits(1),
      // Stopped mid-call (shutdown): due again at once, for the next start or another process.
      Effect.onInterrupt(() => Effect.flatMap(Clock.currentTimeMillis, (now) => store.unhold(d.id, now)).pipe(Effect.ignore)),
      Effect.ensuring(
        Effect.zipRight(
          Effect.sync(() => inFlight.delete(d.id)),
          signal.wake
        )
      )
    )

  const round = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    // Held for a whole call plus a margin: another process (or this one) sends it again only if this one died.
    const due = (yield* store.take(now, 4 * options.concurrency, options.timeoutMs + 30_000)).filter((d) => !inFlight.has(d.id))
    for (const d of due) {
      inFlight.add(d.id)
      yield* FiberSet.run(running, deliver(d))
    }
    if (due.length > 0) return
    // Nothing new is due: sleep until the next retry falls due, a commit or a finished call wakes us, or the poll.
    // (A head already in flight counts as not due: its end wakes us.)
    const next = yield* store.nextDueAt
    const wait = Option.match(next, { onNone: () => options.pollMs, onSome: (t) => (t <= now ? options.pollMs : Math.min(options.pollMs, t - now)) })
    yield* signal.sleep(Math.max(wait, 10))
  })

  yield* round.pipe(
    Effect.catchAllCause((cause) =>
      Effect.logWarning("the webhook outbox could not be read; trying again", cause).pipe(Effect.zipRight(Effect.sleep(options.pollMs)))
    ),
    Effect.forever,
    Effect.forkScoped
  )
})

export const layer = Layer.scopedDiscard(run)
