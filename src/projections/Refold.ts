import { Effect, Either, Option } from "effect"
import { SqlClient } from "@effect/sql"
import { canApply, evolve, initialState, type TaskSnapshot } from "../domain/Task"
import type { VersionedEvent } from "../domain/TaskEvent"
import { EventLog } from "../eventlog/EventLog"
import { acceptedIn, MessageIndex } from "./MessageIndex"
import { TaskReadModel } from "./TaskReadModel"

/**
 * The projections, recomputed from the log: what `verify` compares and
 * `rebuild` (and `import`) write. A task's projections are its read-model
 * row (the fold of its events) and the keys of the messages it accepted.
 */
export interface Problem {
  readonly taskId: string
  readonly problem: string
}

/**
 * Fold a task's events one by one, judging each by the machine as the writer
 * did and checking versions run 1, 2, 3… without gaps: the task after each
 * event, up to the first fault (which stops the walk).
 */
export const walk = (
  taskId: string,
  events: ReadonlyArray<VersionedEvent>
): { readonly snapshots: ReadonlyArray<TaskSnapshot>; readonly problem?: Problem } => {
  const snapshots: Array<TaskSnapshot> = []
  let s = initialState
  for (const [i, e] of events.entries()) {
    if (e.version !== i + 1) return { snapshots, problem: { taskId, problem: `version ${e.version} where ${i + 1} was expected` } }
    if (!canApply(s, e.event)) {
      return { snapshots, problem: { taskId, problem: `version ${e.version}: ${e.event.type} is not legal in ${s.state}` } }
    }
    s = evolve(s, e.event)
    snapshots.push(s)
  }
  return { snapshots }
}

/** The task its events fold to, or the first fault. */
export const refold = (taskId: string, events: ReadonlyArray<VersionedEvent>): Either.Either<TaskSnapshot, Problem> => {
  const { snapshots, problem } = walk(taskId, events)
  if (problem !== undefined) return Either.left(problem)
  const last = snapshots[snapshots.length - 1]
  return last === undefined ? Either.left({ taskId, problem: "no events" }) : Either.right(last)
}

// The stored row went through JSON; compare like with like.
const asStored = (s: TaskSnapshot) => JSON.stringify(JSON.parse(JSON.stringify(s)))

/** Everything wrong with one task's projections. */
export const checkTask = (taskId: string, events: ReadonlyArray<VersionedEvent>) =>
  Effect.gen(function* () {
    const folded = refold(taskId, events)
    if (Either.isLeft(folded)) return [folded.left]
    const problems: Array<Problem> = []
    const stored = yield* (yield* TaskReadModel).get(taskId)
    if (Option.isNone(stored)) problems.push({ taskId, problem: "has events but no read-model row" })
    else if (JSON.stringify(stored.value) !== asStored(folded.right)) {
      problems.push({
        taskId,
        problem: `read model differs from the fold of the log (row: ${stored.value.state} v${stored.value.version}; log: ${folded.right.state} v${folded.right.version})`
      })
    }
    const index = yield* MessageIndex
    for (const { key, accepted } of acceptedIn(folded.right, events)) {
      const found = yield* index.find(key)
      // A key held by another task is a duplicate from before idempotency existed: not a fault.
      if (Option.isNone(found)) problems.push({ taskId, problem: `message ${key.messageId} (version ${accepted.version}) is not in the message index` })
      else if (found.value.taskId === taskId && found.value.version !== accepted.version) {
        problems.push({ taskId, problem: `message ${key.messageId} is indexed at version ${found.value.version}, the log has it at ${accepted.version}` })
      }
    }
    return problems
  })

/** Write a task's projections from its events (which must refold). */
export const projectTask = (snapshot: TaskSnapshot, events: ReadonlyArray<VersionedEvent>) =>
  Effect.gen(function* () {
    yield* (yield* TaskReadModel).save(snapshot)
    const index = yield* MessageIndex
    yield* index.forget(snapshot.task!.id)
    for (const { key, accepted } of acceptedIn(snapshot, events)) yield* index.claim(key, accepted)
  })

export interface ScanReport {
  readonly tasks: number
  readonly events: number
  readonly problems: ReadonlyArray<Problem>
}

/**
 * Visit every task of the log in id order (a page of ids at a time, each
 * task's events read whole), then report read-model rows that have no events.
 * An event that cannot be read is that task's problem, not the end of the scan.
 */
export const scan = <R>(visit: (taskId: string, events: ReadonlyArray<VersionedEvent>) => Effect.Effect<ReadonlyArray<Problem>, unknown, R>) =>
  Effect.gen(function* () {
    const log = yield* EventLog
    const sql = yield* SqlClient.SqlClient
    const problems: Array<Problem> = []
    let tasks = 0
    let events = 0
    let after = ""
    for (;;) {
      const ids = yield* log.taskIds(after, 500)
      if (ids.length === 0) break
      for (const taskId of ids) {
        tasks++
        const read = yield* Effect.either(log.read(taskId))
        if (Either.isLeft(read)) {
          problems.push({ taskId, problem: `unreadable: ${describe(read.left)}` })
          continue
        }
        events += read.right.length
        problems.push(...(yield* visit(taskId, read.right)))
      }
      after = ids[ids.length - 1]!
    }
    const orphans = yield* sql<{ task_id: string }>`SELECT task_id FROM a2a_tasks t
      WHERE NOT EXISTS (SELECT 1 FROM a2a_events e WHERE e.task_id = t.task_id) ORDER BY task_id`
    for (const { task_id } of orphans) problems.push({ taskId: task_id, problem: "read-model row without events" })
    return { tasks, events, problems } satisfies ScanReport
  })

const describe = (e: unknown) => {
  const tagged = e as { _tag?: string; reason?: string; message?: string; version?: number }
  return tagged._tag === "UnreadableEvent" ? `version ${tagged.version}: ${tagged.reason}` : (tagged.message ?? String(e))
}

/**
 * Invariant 4 and the message index, checked for the whole store. A task
 * found wrong is read and checked once more before it is reported: beside a
 * running server it may have committed between the read of its events and of its row.
 */
export const verify = scan((taskId, events) =>
  Effect.flatMap(checkTask(taskId, events), (problems) =>
    problems.length === 0
      ? Effect.succeed(problems)
      : Effect.flatMap(EventLog, (log) => log.read(taskId)).pipe(Effect.flatMap((again) => checkTask(taskId, again)))
  )
)

/**
 * Recreate every task's projections from its log, each task in its own
 * transaction. A task whose log does not refold is reported and left as it
 * is; read-model rows without events are removed.
 */
export const rebuild = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const report = yield* scan((taskId, events) => {
    const folded = refold(taskId, events)
    if (Either.isLeft(folded)) return Effect.succeed([folded.left])
    return sql.withTransaction(projectTask(folded.right, events)).pipe(Effect.as([]))
  })
  const orphans = report.problems.filter((p) => p.problem === "read-model row without events").map((p) => p.taskId)
  if (orphans.length > 0) yield* sql`DELETE FROM a2a_tasks WHERE ${sql.in("task_id", orphans)}`
  return { ...report, problems: report.problems.filter((p) => !orphans.includes(p.taskId)), removed: orphans.length }
})
