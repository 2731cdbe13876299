import { Args, Command, Options } from "@effect/cli"
import { SqlClient } from "@effect/sql"
import { Clock, Console, Effect, Option } from "effect"
import { textOf } from "../domain/Message.js"
import { isTerminal, type TaskState } from "../domain/TaskState.js"
import { EventLog } from "../eventlog/EventLog.js"
import * as SqliteOwnership from "../eventlog/SqliteOwnership.js"
import * as Store from "../eventlog/Store.js"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { age, stateName, summary } from "../domain/eventText.js"
import { journalOf } from "../engine/steps.js"
import { sleepingUntil } from "../domain/Task.js"
import type { TaskEvent } from "../domain/TaskEvent.js"
import { CommandFailed } from "./CommandFailed.js"
import { db, withStore } from "./storeOption.js"

/**
 * `a2a-ledger doctor <taskId>`: why a task is where it is. Its state and last
 * event, who runs it (the lease and its expiry on PostgreSQL; whether a server
 * holds the SQLite file), its place in the queue, its webhooks, and a verdict
 * in one sentence.
 */
interface Diagnosis {
  readonly taskId: string
  readonly state: TaskState
  readonly version: number
  readonly tenant: string
  readonly owner: string
  readonly createdAt: string
  readonly lastEvent: { readonly version: number; readonly type: string; readonly at: string; readonly ageMs: number; readonly summary: string }
  /** The last worker to take the turn up: its start, or its waking from a durable timer (`woken`). */
  readonly lastStart?: { readonly instanceId: string; readonly at: string; readonly leaseEpoch?: number; readonly woken?: true }
  readonly turns: number
  /** The current turn's step journal, when the agent keeps one. */
  readonly steps?: {
    readonly recorded: number
    readonly last?: string
    readonly retrying?: { readonly name: string; readonly failedAttempts: number; readonly nextAttemptAt: string }
    /** A delegation waiting on its remote task (`ctx.delegate`). */
    readonly delegating?: { readonly url: string; readonly remoteTaskId: string; readonly attempt: number; readonly since: string }
  }
  /** The durable timer a sleeping task waits on (its turn parked; no worker holds it). */
  readonly sleeping?: { readonly until: string; readonly dueInMs: number }
  readonly lease?: { readonly holder: string; readonly epoch: number; readonly expiresAt: string; readonly expiresInMs: number }
  readonly server?: SqliteOwnership.Owner
  readonly queue?: { readonly olderWaiting: number }
  readonly webhooks: { readonly configs: number; readonly pending: number; readonly dead: number }
  readonly verdict: string
}

const taskId = Args.text({ name: "taskId" })
const json = Options.boolean("json").pipe(Options.withDescription("print the diagnosis as JSON"))

const diagnose = (file: string, id: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const readModel = yield* TaskReadModel
    const log = yield* EventLog
    const now = yield* Clock.currentTimeMillis
    const row = yield* readModel.get(id)
    if (Option.isNone(row)) return yield* new CommandFailed({ message: `no task ${id} in this store` })
    const s = row.value
    const state = s.task.status.state
    const events = yield* log.read(id)
    const last = events[events.length - 1]!
    const starts = events.flatMap((e) => (e.event.type === "TaskStarted" ? [e.event] : []))
    const takenUp = events.flatMap(
      (e): Array<{ instanceId: string; at: string; leaseEpoch: number | undefined; woken?: true }> =>
        e.event.type === "TaskStarted"
          ? [{ instanceId: e.event.instanceId, at: e.event.at, leaseEpoch: e.event.leaseEpoch }]
          : e.event.type === "TimerFired" && e.event.instanceId !== undefined
            ? [{ instanceId: e.event.instanceId, at: e.event.at, leaseEpoch: e.event.leaseEpoch, woken: true as const }]
            : []
    )
    const lastStart = takenUp[takenUp.length - 1]
    const sleepsUntil = sleepingUntil(s)
    const leases = yield* sql<{ owner: string; epoch: number | string; expires_at: number | string }>`SELECT owner, epoch, expires_at
      FROM a2a_leases WHERE task_id = ${id}`
    const lease = leases[0]
    const journal = s.machine.steps === undefined ? undefined : journalOf(events.map((e) => e.event))
    const steps =
      journal === undefined
        ? undefined
        : {
            recorded: journal.steps.length,
            ...(journal.steps.length > 0 ? { last: journal.steps[journal.steps.length - 1]!.name } : {}),
            ...(journal.delegation !== undefined
              ? {
                  delegating: {
                    url: journal.delegation.url,
                    remoteTaskId: journal.delegation.remoteTaskId,
                    attempt: journal.delegation.attempt,
                    since: delegatedAt(events, journal.delegation.remoteTaskId)
                  }
                }
              : {}),
            ...(journal.pending !== undefined
              ? {
                  retrying: {
                    name: journal.pending.name,
                    failedAttempts: journal.pending.attempts,
                    nextAttemptAt: journal.pending.retryAt
                  }
                }
              : {})
          }
    const olderWaiting =
      state === "TASK_STATE_SUBMITTED"
        ? Number(
            (yield* sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM a2a_tasks WHERE state = 'TASK_STATE_SUBMITTED'
            AND (status_timestamp < ${s.task.status.timestamp} OR (status_timestamp = ${s.task.status.timestamp} AND task_id < ${id}))`)[0]?.n ?? 0
          )
        : undefined
    const configs = Number((yield* sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM a2a_push_configs WHERE task_id = ${id}`)[0]?.n ?? 0)
    const outbox = yield* sql<{ status: string; n: number | string }>`SELECT status, COUNT(*) AS n FROM a2a_push_outbox
      WHERE task_id = ${id} GROUP BY status`
    const count = (status: string) => Number(outbox.find((r) => r.status === status)?.n ?? 0)
    const server = Store.isPostgresUrl(file) ? undefined : yield* SqliteOwnership.probe(file)
    const diagnosis: Omit<Diagnosis, "verdict"> = {
      taskId: id,
      state,
      version: s.version,
      tenant: s.tenant,
      owner: s.owner,
      createdAt: s.createdAt,
      lastEvent: {
        version: last.version,
        type: last.event.type,
        at: last.event.at,
        ageMs: now - Date.parse(last.event.at),
        summary: summary(last.event)
      },
      ...(lastStart !== undefined
        ? {
            lastStart: {
              instanceId: lastStart.instanceId,
              at: lastStart.at,
              ...(lastStart.leaseEpoch !== undefined ? { leaseEpoch: lastStart.leaseEpoch } : {}),
              ...(lastStart.woken === true ? { woken: true as const } : {})
            }
          }
        : {}),
      turns: starts.length,
      ...(steps !== undefined ? { steps } : {}),
      ...(sleepsUntil !== undefined ? { sleeping: { until: sleepsUntil, dueInMs: Date.parse(sleepsUntil) - now } } : {}),
      ...(lease !== undefined
        ? {
            lease: {
              holder: lease.owner,
              epoch: Number(lease.epoch),
              expiresAt: new Date(Number(lease.expires_at)).toISOString(),
              expiresInMs: Number(lease.expires_at) - now
            }
          }
        : {}),
      ...(server !== undefined ? { server } : {}),
      ...(olderWaiting !== undefined ? { queue: { olderWaiting } } : {}),
      webhooks: { configs, pending: count("pending"), dead: count("dead") }
    }
    return {
      ...diagnosis,
      verdict: verdictOf(diagnosis, s.task.status.message === undefined ? undefined : textOf(s.task.status.message))
    } satisfies Diagnosis
  })

/** When the delegation to this remote task was recorded. */
const delegatedAt = (events: ReadonlyArray<{ readonly event: TaskEvent }>, remoteTaskId: string) =>
  events.find((e) => e.event.type === "DelegationStarted" && e.event.remoteTaskId === remoteTaskId)?.event.at ?? ""

const noServer = (d: Omit<Diagnosis, "verdict">) => d.server !== undefined && !d.server.running

const verdictOf = (d: Omit<Diagnosis, "verdict">, said: string | undefined): string => {
  const since = age(d.lastEvent.ageMs)
  if (isTerminal(d.state)) return `finished: ${stateName(d.state)} ${since} ago; a final state never changes`
  switch (d.state) {
    case "TASK_STATE_INPUT_REQUIRED":
    case "TASK_STATE_AUTH_REQUIRED":
      return `waiting for the client for ${since}: the agent asked${said ? ` "${said}"` : ""}; a SendMessage with this taskId continues it`
    case "TASK_STATE_SUBMITTED": {
      const queue = `waiting for a worker for ${since}, behind ${d.queue?.olderWaiting ?? 0} older submitted task(s)`
      if (noServer(d)) return `${queue}; no server runs on this store, so it starts when one does`
      if (d.lease !== undefined && d.lease.expiresInMs > 0)
        return `claimed by ${d.lease.holder} (lease epoch ${d.lease.epoch}); its turn is about to start`
      return `${queue}; the next free worker takes it, oldest first`
    }
    case "TASK_STATE_WORKING": {
      if (d.sleeping !== undefined) return sleepingVerdict(d, d.sleeping)
      const started = d.lastStart !== undefined ? ` since ${d.lastStart.at}` : ""
      const retry = d.steps?.retrying
      const remote = d.steps?.delegating
      const stepping =
        remote !== undefined
          ? `; waiting on remote task ${remote.remoteTaskId} at ${remote.url} since ${remote.since}${remote.attempt > 1 ? ` (attempt ${remote.attempt})` : ""}`
          : retry !== undefined
            ? `; step "${retry.name}" failed ${retry.failedAttempts} time(s), next attempt at ${retry.nextAttemptAt}`
            : d.steps !== undefined && d.steps.recorded > 0
              ? `; ${d.steps.recorded} step(s) recorded in this turn, the last "${d.steps.last}"`
              : ""
      if (d.lease !== undefined) {
        return d.lease.expiresInMs > 0
          ? `running on ${d.lease.holder}${started}; its lease (epoch ${d.lease.epoch}) is renewed and runs for another ${age(d.lease.expiresInMs)}${stepping}`
          : `its worker on ${d.lease.holder} stopped renewing ${age(-d.lease.expiresInMs)} ago: another instance takes the turn over under the recovery policy`
      }
      if (noServer(d))
        return `no server runs on this store: the turn${started} died with its process; the next start reruns it${d.steps !== undefined && d.steps.recorded > 0 ? ` (its ${d.steps.recorded} recorded step(s) are not run again)` : ""} or fails it (--recovery)`
      return `running in the server that holds this store${started}, by ${d.lastStart?.instanceId ?? "?"}${stepping}`
    }
    default:
      return stateName(d.state)
  }
}

/** A task whose turn parked on a durable timer: no worker holds it until the timer is due. */
const sleepingVerdict = (d: Omit<Diagnosis, "verdict">, sleeping: NonNullable<Diagnosis["sleeping"]>): string => {
  const waiting = `waiting on a durable timer until ${sleeping.until}`
  const recorded = d.steps !== undefined && d.steps.recorded > 1 ? ` (${d.steps.recorded - 1} step(s) recorded before it are not run again)` : ""
  if (noServer(d))
    return `${waiting}; no server runs on this store: the next start wakes it${sleeping.dueInMs <= 0 ? " at once" : " when it is due"}${recorded}`
  const who = d.lease !== undefined ? "the first instance to claim it then wakes it" : "the server wakes it then"
  return sleeping.dueInMs > 0
    ? `${waiting} (in ${age(sleeping.dueInMs)}); no worker holds it meanwhile: ${who} and its turn goes on${recorded}`
    : `${waiting}, due ${age(-sleeping.dueInMs)} ago: the next free worker wakes it${recorded}`
}

const print = (d: Diagnosis) =>
  Effect.forEach(
    [
      `task ${d.taskId}: ${stateName(d.state)} at version ${d.version} (${d.turns} turn(s) started)`,
      `  created    ${d.createdAt}${d.tenant ? `, tenant ${d.tenant}` : ""}${d.owner ? `, owner ${d.owner}` : ""}`,
      `  last event v${d.lastEvent.version} ${d.lastEvent.type} ${age(d.lastEvent.ageMs)} ago${d.lastEvent.summary ? `: ${d.lastEvent.summary}` : ""}`,
      ...(d.lastStart !== undefined
        ? [
            `  worker     ${d.lastStart.instanceId} ${d.lastStart.woken === true ? "woke" : "started"} its turn at ${d.lastStart.at}${d.lastStart.leaseEpoch !== undefined ? ` (lease epoch ${d.lastStart.leaseEpoch})` : ""}`
          ]
        : []),
      ...(d.lease !== undefined
        ? [
            `  lease      held by ${d.lease.holder}, epoch ${d.lease.epoch}, ${d.lease.expiresInMs > 0 ? `expires in ${age(d.lease.expiresInMs)}` : `expired ${age(-d.lease.expiresInMs)} ago`}`
          ]
        : []),
      ...(d.server !== undefined
        ? [
            `  server     ${d.server.running ? "a server holds this store" : `none running${d.server.lastPid !== undefined ? ` (the last was pid ${d.server.lastPid}, started ${d.server.lastStartedAt})` : ""}`}`
          ]
        : []),
      ...(d.queue !== undefined ? [`  queue      ${d.queue.olderWaiting} older submitted task(s) ahead`] : []),
      ...(d.steps !== undefined
        ? [
            `  steps      ${d.steps.recorded} recorded in this turn${d.steps.last !== undefined ? ` (last "${d.steps.last}")` : ""}${d.steps.retrying !== undefined ? `; "${d.steps.retrying.name}" failed ${d.steps.retrying.failedAttempts} time(s), next attempt at ${d.steps.retrying.nextAttemptAt}` : ""}`,
            ...(d.steps.delegating !== undefined
              ? [`  remote     waiting on task ${d.steps.delegating.remoteTaskId} at ${d.steps.delegating.url}, since ${d.steps.delegating.since}`]
              : [])
          ]
        : []),
      ...(d.sleeping !== undefined
        ? [
            `  timer      sleeping until ${d.sleeping.until} (${d.sleeping.dueInMs > 0 ? `due in ${age(d.sleeping.dueInMs)}` : `due ${age(-d.sleeping.dueInMs)} ago`})`
          ]
        : []),
      `  cancel     none pending (CancelTask commits CANCELED at once and stops the worker)`,
      `  webhooks   ${d.webhooks.configs} config(s), ${d.webhooks.pending} delivery(ies) pending, ${d.webhooks.dead} dead`,
      `  verdict    ${d.verdict}`
    ],
    (line) => Console.log(line),
    { discard: true }
  )

export const doctor = Command.make("doctor", { db, taskId, json }, (o) =>
  Effect.flatMap(withStore(o.db, diagnose(o.db, o.taskId)), (d) => (o.json ? Console.log(JSON.stringify(d, null, 2)) : print(d)))
).pipe(Command.withDescription("Why a task is where it is: state, last event, worker or lease, queue, webhooks, and a verdict"))
