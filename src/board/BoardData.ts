import { Context, Effect, Layer, Option } from "effect"
import { summary } from "../domain/eventText.js"
import { type AnySnapshot, apply, initialState, type TaskSnapshot } from "../domain/Task.js"
import { EventHub, type Noticed } from "../engine/EventHub.js"
import { CurrentAgent } from "../engine/EngineConfig.js"
import { InstanceId } from "../engine/InstanceId.js"
import { TaskEngine } from "../engine/TaskEngine.js"
import { EventLog } from "../eventlog/EventLog.js"
import type { StoreFailure } from "../eventlog/StoreFailure.js"
import { LeaseStore } from "../eventlog/LeaseStore.js"
import { isShared, StoreKind } from "../eventlog/StoreKind.js"
import { EngineMetrics } from "../observability/Metrics.js"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { presentTask } from "../protocol/present.js"
import { PushStore } from "../push/PushStore.js"

/**
 * What the operator's board (`/board`, Board.ts) reads and does, for one agent's engine: every tenant's
 * and principal's tasks (the board is for admins), a task's whole log with the machine's state after each
 * event (and the task as it was at any version: time travel, as `replay` does), its webhook deliveries,
 * the outbox's dead letters, the leases of a shared store, and the overview's figures. Its actions (cancel,
 * answer, redeliver) go through the engine as the task's own caller would.
 */

/** One event of a task's timeline. */
export interface TimelineEntry {
  readonly version: number
  readonly at: string
  readonly type: string
  /** The task's state after it (the machine's: SUBMITTED, WORKING, …). */
  readonly state: string
  readonly summary: string
  /** The process that wrote it. */
  readonly instanceId?: string
}

const activeStates = ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"]

/** A task as the board lists it. */
const row = (s: TaskSnapshot) => ({
  id: s.task.id,
  contextId: s.task.contextId,
  tenant: s.tenant,
  owner: s.owner,
  state: s.task.status.state,
  createdAt: s.createdAt,
  updatedAt: s.task.status.timestamp,
  version: s.version,
  message: s.task.status.message?.parts.map((p) => ("text" in p && typeof p.text === "string" ? p.text : "")).join(" ") ?? ""
})

export const make = Effect.gen(function* () {
  const readModel = yield* TaskReadModel
  const log = yield* EventLog
  const push = yield* PushStore
  const leases = yield* LeaseStore
  const shared = isShared(yield* StoreKind)
  const engine = yield* TaskEngine
  const hub = yield* EventHub
  const metrics = yield* EngineMetrics
  const agent = yield* CurrentAgent
  const instanceId = yield* InstanceId

  const list = (q: {
    readonly state?: string
    readonly contextId?: string
    readonly tenant?: string
    readonly pageSize: number
    readonly after?: string
  }) =>
    Effect.map(
      readModel.listAll({
        pageSize: q.pageSize,
        ...(q.state !== undefined ? { state: q.state } : {}),
        ...(q.contextId !== undefined ? { contextId: q.contextId } : {}),
        ...(q.tenant !== undefined ? { tenant: q.tenant } : {}),
        ...(q.after !== undefined ? { after: decodeCursor(q.after) } : {})
      }),
      (page) => ({ tasks: page.tasks.map(row), ...(page.next !== undefined ? { next: encodeCursor(page.next) } : {}) })
    )

  /** The task's log, the state after each event, and the task at `version` (its latest without one). */
  const task = (taskId: string, version?: number) =>
    Effect.gen(function* () {
      const events = yield* log.read(taskId)
      if (events.length === 0) return Option.none()
      let s: AnySnapshot = initialState
      let at: TaskSnapshot | undefined
      const timeline: Array<TimelineEntry> = []
      for (const e of events) {
        s = apply(s, e.event) ?? s
        const instance = e.metadata?.instanceId
        timeline.push({
          version: e.version,
          at: e.event.at,
          type: e.event.type,
          state: s.state,
          summary: summary(e.event),
          ...(typeof instance === "string" ? { instanceId: instance } : {})
        })
        if (s.state !== "NEW" && (version === undefined || e.version <= version)) at = s
      }
      if (at === undefined) return Option.none()
      const latest = events[events.length - 1]!.version
      const deliveries = yield* push.forTask(taskId, 200)
      const lastStart = [...events].reverse().find((e) => e.event.type === "TaskStarted" || e.event.type === "TimerFired")
      const lease = shared ? (yield* leases.live(Date.now())).find((l) => l.taskId === taskId) : undefined
      return Option.some({
        agent: agent.name,
        version: at.version,
        latestVersion: latest,
        state: at.state,
        tenant: at.tenant,
        owner: at.owner,
        task: presentTask(at.task),
        timeline,
        deliveries,
        worker: {
          ...(lastStart !== undefined && typeof lastStart.metadata?.instanceId === "string" ? { lastTurnBy: lastStart.metadata.instanceId } : {}),
          ...(lease !== undefined ? { lease } : {})
        }
      })
    })

  /** The task's own caller: an admin's action on it is the action its owner could take. */
  const ownerOf = (taskId: string) =>
    Effect.map(
      readModel.get(taskId),
      Option.map((s) => ({ tenant: s.tenant, principal: s.owner }))
    )

  const cancel = (taskId: string) =>
    Effect.flatMap(ownerOf(taskId), (caller) =>
      Option.isNone(caller) ? Effect.succeed(Option.none()) : Effect.map(engine.cancel(taskId, caller.value), Option.some)
    )

  const answer = (taskId: string, text: string) =>
    Effect.flatMap(ownerOf(taskId), (caller) =>
      Option.isNone(caller)
        ? Effect.succeed(Option.none())
        : Effect.map(
            engine.send({ caller: caller.value, message: { messageId: crypto.randomUUID(), role: "ROLE_USER", taskId, parts: [{ text }] } }),
            Option.some
          )
    )

  const overview = (now: number) =>
    Effect.gen(function* () {
      const active = yield* readModel.activeCounts
      const since = new Date(now - 60 * 60_000).toISOString()
      const finished = yield* readModel.finishedPerMinute(since)
      const outbox = yield* push.depth
      return {
        agent: agent.name,
        active: activeStates.map((state) => ({ state, n: active.find((a) => a.state === state)?.n ?? 0 })),
        finishedPerMinute: finished,
        outbox,
        commits: metrics.recentCommits()
      }
    })

  const instances = (
    now: number
  ): Effect.Effect<{ readonly store: "postgres" | "sqlite"; readonly instance: string; readonly leases: ReadonlyArray<unknown> }, StoreFailure> =>
    shared
      ? Effect.map(leases.live(now), (live) => ({ store: "postgres", instance: instanceId, leases: live }))
      : Effect.succeed({ store: "sqlite", instance: instanceId, leases: [] })

  return {
    agent: agent.name,
    list,
    task,
    cancel,
    answer,
    overview,
    instances,
    deadLetters: push.deadLetters(500),
    redeliver: (ids: ReadonlyArray<number>) => push.redeliver(ids, Date.now()),
    listen: (listener: (commit: Noticed) => void) => hub.listenAll(listener)
  }
})

export class BoardData extends Context.Tag("a2a-ledger/BoardData")<BoardData, Effect.Effect.Success<typeof make>>() {}

export const layer = Layer.effect(BoardData, make)

/** A page cursor: the last row's sort key, opaque to the browser. */
const encodeCursor = (k: { readonly timestamp: string; readonly taskId: string }) => Buffer.from(`${k.timestamp}|${k.taskId}`).toString("base64url")
const decodeCursor = (cursor: string) => {
  const [timestamp = "", taskId = ""] = Buffer.from(cursor, "base64url").toString("utf8").split("|")
  return { timestamp, taskId }
}
