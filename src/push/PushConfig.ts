/**
 * A webhook a client registered for one task (A2A TaskPushNotificationConfig).
 * `format` is the protocol version the client spoke when it registered: a
 * v1.0 config receives StreamResponses, a v0.3 config the whole Task, as
 * v0.3 servers sent it.
 */
export interface PushConfig {
  readonly taskId: string
  readonly id: string
  readonly tenant: string
  readonly url: string
  readonly token?: string
  readonly authentication?: { readonly scheme: string; readonly credentials?: string }
  readonly format: PushFormat
  readonly createdAt: string
}

export type PushFormat = "1.0" | "0.3"

/** Push configs one task may have, however they came (CreateTaskPushNotificationConfig or inline on SendMessage). */
export const maxConfigsPerTask = 10

/** A config as a request describes it, before the server binds it to a task. */
export type PushConfigInput = Omit<PushConfig, "taskId" | "tenant" | "createdAt" | "id"> & { readonly id?: string }

/** One queued webhook call: the event at `version` of `taskId`, for config `configId`. */
export interface Delivery {
  readonly id: number
  readonly taskId: string
  readonly configId: string
  readonly contextId: string
  readonly version: number
  readonly attempts: number
  readonly nextAttemptAt: number
  /** Waiting to be made (or retried), made (kept until its task is pruned, for the board), or failed for good. */
  readonly status: "pending" | "delivered" | "dead"
  readonly lastError?: string
  readonly createdAt: string
  readonly updatedAt: string
}

/** Delivery retry policy. */
export interface PushOptions {
  /** Attempts before a delivery moves to the dead letters. */
  readonly maxAttempts: number
  /** First retry delay; each retry doubles it, with jitter, up to `retryMaxMs`. */
  readonly retryBaseMs: number
  readonly retryMaxMs: number
  /** How long one webhook call may take. */
  readonly timeoutMs: number
  /** Webhook calls in flight at once. */
  readonly concurrency: number
  /** How often the outbox is looked at when nothing wakes the deliverer (redeliveries from the CLI). */
  readonly pollMs: number
  /** Hosts, addresses or CIDR ranges allowed even though private, loopback or link-local. */
  readonly allowHosts: ReadonlyArray<string>
}

export const defaultPushOptions: PushOptions = {
  maxAttempts: 8,
  retryBaseMs: 2_000,
  retryMaxMs: 10 * 60_000,
  timeoutMs: 10_000,
  concurrency: 16,
  pollMs: 1_000,
  allowHosts: []
}

/**
 * The wait before attempt `attempt + 1`, after `attempt` failures: exponential
 * with "equal jitter" (half fixed, half random), so receivers coming back up
 * are not hit by every sender at the same instant.
 */
export const retryDelay = (options: PushOptions, attempt: number, random: number) => {
  const ceiling = Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + (ceiling / 2) * random)
}
