import { Clock, Context, Effect, Either, Layer, Option } from "effect"
import { randomUUID } from "node:crypto"
import { InvalidParams, PushConfigNotFound, type StoreFailure, type TaskNotFound } from "../engine/errors.js"
import { TaskWriter } from "../engine/TaskWriter.js"
import { type Caller, TaskEngine } from "../engine/TaskEngine.js"
import { Durability } from "../eventlog/Durability.js"
import { retryTransient } from "../eventlog/Transient.js"
import { PushSettings } from "./Deliverer.js"
import type { PushConfig, PushConfigInput } from "./PushConfig.js"
import { PushStore } from "./PushStore.js"
import { checkUrl } from "./WebhookGuard.js"

/** A config as registered, before it is bound to a task. */
export type PreparedConfig = Omit<PushConfig, "taskId" | "tenant">

/** Webhooks per task: enough for any real client, and a bound on the fan-out of one event. */
import { maxConfigsPerTask } from "./PushConfig.js"

export { maxConfigsPerTask }

export interface ConfigPage {
  readonly configs: ReadonlyArray<PushConfig>
  /** The id to continue after, when more configs follow. */
  readonly nextAfter?: string
}

/**
 * The push-config methods over the store. Every call first finds the task as
 * the caller may see it, so another tenant's or principal's task and its configs answer
 * exactly as missing ones.
 */
export class PushConfigs extends Context.Tag("a2a-ledger/PushConfigs")<
  PushConfigs,
  {
    /** Check a config (URL form and SSRF policy) and give it an id; `field` names it in errors. */
    readonly prepare: (input: PushConfigInput, field: string) => Effect.Effect<PreparedConfig, InvalidParams>
    readonly create: (
      caller: Caller,
      taskId: string,
      config: PreparedConfig
    ) => Effect.Effect<PushConfig, TaskNotFound | InvalidParams | StoreFailure>
    readonly get: (caller: Caller, taskId: string, id: string) => Effect.Effect<PushConfig, TaskNotFound | PushConfigNotFound | StoreFailure>
    readonly list: (caller: Caller, taskId: string, pageSize: number, after?: string) => Effect.Effect<ConfigPage, TaskNotFound | StoreFailure>
    /** Idempotent: deleting a missing config of a visible task succeeds. */
    readonly remove: (caller: Caller, taskId: string, id: string) => Effect.Effect<void, TaskNotFound | StoreFailure>
  }
>() {}

export const make = Effect.gen(function* () {
  const engine = yield* TaskEngine
  const writer = yield* TaskWriter
  const configs = yield* PushStore
  const { policy } = yield* PushSettings
  const durability = yield* Durability

  const visible = (caller: Caller, taskId: string) => Effect.asVoid(engine.get(taskId, caller))

  const prepare = (input: PushConfigInput, field: string) =>
    Effect.gen(function* () {
      const url = checkUrl(policy, input.url)
      if (Either.isLeft(url)) return yield* new InvalidParams({ field: `${field}url`, message: `${field}url ${url.left}` })
      const createdAt = new Date(yield* Clock.currentTimeMillis).toISOString()
      return { ...input, id: input.id ?? randomUUID(), format: input.format, createdAt } satisfies PreparedConfig
    })

  // Under the task's lock, as an inline config on a message is: the limit holds however configs race.
  const create = (caller: Caller, taskId: string, config: PreparedConfig) =>
    Effect.gen(function* () {
      yield* visible(caller, taskId)
      if (!(yield* configs.hasRoomFor(taskId, config.id))) {
        return yield* new InvalidParams({
          field: "id",
          message: `task ${taskId} already has ${maxConfigsPerTask} push notification configs; delete one first`
        })
      }
      const saved: PushConfig = { ...config, taskId, tenant: caller.tenant }
      // Acknowledged means on disk: the write waits for its sync, as the writer's commits do.
      yield* Effect.zipRight(retryTransient(configs.saveConfig(saved)), durability.sync)
      return saved
    }).pipe(writer.withTaskLock(taskId))

  const get = (caller: Caller, taskId: string, id: string) =>
    visible(caller, taskId).pipe(
      Effect.zipRight(configs.getConfig(taskId, id)),
      Effect.flatMap(Option.match({ onNone: () => Effect.fail(new PushConfigNotFound({ taskId, id })), onSome: Effect.succeed }))
    )

  const list = (caller: Caller, taskId: string, pageSize: number, after?: string) =>
    Effect.gen(function* () {
      yield* visible(caller, taskId)
      const rows = yield* configs.listConfigs(taskId, pageSize + 1, after)
      const page = rows.slice(0, pageSize)
      return rows.length > pageSize ? { configs: page, nextAfter: page[page.length - 1]!.id } : { configs: page }
    })

  const remove = (caller: Caller, taskId: string, id: string) =>
    visible(caller, taskId).pipe(Effect.zipRight(Effect.zipRight(configs.deleteConfig(taskId, id), durability.sync)), Effect.asVoid)

  return PushConfigs.of({ prepare, create, get, list, remove })
})

export const layer = Layer.effect(PushConfigs, make)
