import { Clock, Effect, Either, Option, Stream } from "effect"
import { SqlClient } from "@effect/sql"
import { type AnySnapshot, apply, initialState, type TaskSnapshot, turnOf } from "../domain/Task.js"
import type { TaskEvent, VersionedEvent } from "../domain/TaskEvent.js"
import { EventLog } from "../eventlog/EventLog.js"
import { type AcceptedMessage, acceptedIn, defaultWindowMs, type KeyClaim, keyText, MessageIndex, type MessageKey } from "./MessageIndex.js"
import type { TaskRow } from "../eventlog/SqliteCommits.js"
import { attachEvents, parseStored, type StoredRow, TaskReadModel, taskRow } from "./TaskReadModel.js"

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
  let s: AnySnapshot = initialState
  for (const [i, e] of events.entries()) {
    if (e.version !== i + 1) return { snapshots, problem: { taskId, problem: `version ${e.version} where ${i + 1} was expected` } }
    const next = apply(s, e.event)
    if (next === undefined) return { snapshots, problem: { taskId, problem: `version ${e.version}: ${e.event.type} is not legal in ${s.state}` } }
    const fault = journalFault(s, e.event)
    if (fault !== undefined) return { snapshots, problem: { taskId, problem: `version ${e.version}: ${fault}` } }
    s = next
    snapshots.push(s)
  }
  return { snapshots }
}

/**
 * What the step journal's own law says of an event the machine allowed (the machine checks the places'
 * order): a record names the turn it was made in, and a timer never fires before it is due.
 */
const journalFault = (s: AnySnapshot, event: TaskEvent): string | undefined => {
  switch (event.type) {
    case "StepCompleted":
    case "StepAttemptFailed":
    case "StepsReset":
    case "TimerStarted":
    case "DelegationStarted": {
      const turn = s.task === undefined ? 1 : turnOf(s.task.history)
      return event.turn === turn ? undefined : `${event.type} names turn ${event.turn}, recorded in turn ${turn}`
    }
    case "TimerFired": {
      const due = s.machine.timer?.dueAt
      return due !== undefined && Date.parse(event.at) < Date.parse(due)
        ? `the timer of step ${event.sequence} fired at ${event.at}, before it was due (${due})`
        : undefined
    }
    default:
      return undefined
  }
}

/** The task its events fold to, or the first fault. */
export const refold = (taskId: string, events: ReadonlyArray<VersionedEvent>): Either.Either<TaskSnapshot, Problem> => {
  const { snapshots, problem } = walk(taskId, events)
  if (problem !== undefined) return Either.left(problem)
  const last = snapshots[snapshots.length - 1]
  return last === undefined ? Either.left({ taskId, problem: "no events" }) : Either.right(last)
}

/**
 * Everything wrong with one task's projections, each read alone. Its messages accepted before
 * `keysSince` (ms) need no key: their keys have expired (the idempotency window).
 */
export const checkTask = (taskId: string, events: ReadonlyArray<VersionedEvent>, keysSince: number) =>
  Effect.gen(function* () {
    const stored = yield* (yield* TaskReadModel).row(taskId)
    const index = yield* MessageIndex
    return yield* checkAgainst(taskId, events, Option.getOrUndefined(stored), new Map(), index.find, keysSince)
  })

/**
 * Is `row` what the fold of the task's events stores? Column by column, the snapshot first as the JSON
 * the writer would store now; a snapshot stored in another shape (key order, a row written whole that
 * would now be a head, an owner written before owners existed) is compared as the task it completes to.
 */
export const rowMatches = (row: TaskRow, folded: TaskSnapshot, events: ReadonlyArray<VersionedEvent>): boolean => {
  const expected = taskRow(folded)
  const columns =
    row.tenant === expected.tenant &&
    row.owner === expected.owner &&
    row.context_id === expected.context_id &&
    row.state === expected.state &&
    row.version === expected.version &&
    row.status_timestamp === expected.status_timestamp &&
    row.created_at === expected.created_at &&
    row.wake_at === expected.wake_at &&
    row.priority === expected.priority
  if (!columns) return false
  if (row.snapshot === expected.snapshot) return true
  // Both through JSON.stringify: the row went through it when it was written.
  const stored = parseStored(row.snapshot)
  return Either.isRight(stored) && JSON.stringify(attachEvents(stored.right, events)) === JSON.stringify(folded)
}

/** Write a task's projections from its events (which must refold). */
export const projectTask = (snapshot: TaskSnapshot, events: ReadonlyArray<VersionedEvent>) =>
  Effect.gen(function* () {
    yield* (yield* TaskReadModel).save(snapshot)
    const index = yield* MessageIndex
    yield* index.forget(snapshot.task.id)
    for (const claim of acceptedIn(snapshot, events)) yield* index.claim(claim)
  })

export interface ScanReport {
  readonly tasks: number
  readonly events: number
  readonly problems: ReadonlyArray<Problem>
}

/** One page of a scan: the tasks with `after < id <= last`, each with its events (those that could be read). */
export interface Page {
  readonly after: string
  readonly last: string
  readonly tasks: ReadonlyArray<{ readonly taskId: string; readonly events: ReadonlyArray<VersionedEvent> }>
}

/** Tasks per page of a scan: one query reads all their events, one their rows, one their message keys. */
export const pageSize = 100

/** What a page's tasks need written to match their logs (a rebuild): rows, and the tasks whose keys are written again. */
export interface PageWrites {
  readonly rows: ReadonlyArray<TaskRow>
  readonly rekeyed: ReadonlyArray<string>
  readonly claims: ReadonlyArray<KeyClaim>
}

/** A page of a rebuild, folded: what it found, and what it needs written. */
export interface FoldedPage extends ScanReport {
  readonly writes: PageWrites
}

/** The services a page is read and judged with. */
export type PageServices = EventLog | TaskReadModel | MessageIndex

/**
 * How the pages of a scan are judged: here, one after another (`inThisThread`), or by scan threads
 * (ScanThreads, on a SQLite file), `concurrency` pages at once. Either way a page is given by its
 * bounds and the ids the scan found in them, and the results come back in page order. Messages
 * accepted before `keysSince` (ms) need no key in the index: theirs have expired.
 */
export interface PageJudge {
  readonly concurrency: number
  readonly verify: (after: string, ids: ReadonlyArray<string>, keysSince: number) => Effect.Effect<ScanReport, unknown, PageServices>
  readonly fold: (after: string, ids: ReadonlyArray<string>, keysSince: number) => Effect.Effect<FoldedPage, unknown, PageServices>
}

/**
 * A page's events, read in one query: the tasks among `ids` that still have events (one gone between
 * the queries, pruned beside a running server, has nothing to check), and the tasks whose events
 * cannot be read, as problems.
 */
const readPage = (after: string, ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const last = ids[ids.length - 1]!
    const read = yield* (yield* EventLog).readTasks(after, last)
    const problems: Array<Problem> = []
    const tasks: Array<Page["tasks"][number]> = []
    let events = 0
    let found = 0
    for (const taskId of ids) {
      const taskEvents = read.get(taskId)
      if (taskEvents === undefined) continue
      found++
      if (Either.isLeft(taskEvents)) {
        problems.push({ taskId, problem: `unreadable: ${describe(taskEvents.left)}` })
        continue
      }
      events += taskEvents.right.length
      tasks.push({ taskId, events: taskEvents.right })
    }
    return { page: { after, last, tasks } satisfies Page, tasks: found, events, problems }
  })

/**
 * Visit every task of the log in id order, a page at a time, judging up to `concurrency` pages at once
 * and taking their results in page order (`take`), then report read-model rows that have no events.
 */
const scan = <A extends ScanReport, R>(
  judgePage: (after: string, ids: ReadonlyArray<string>) => Effect.Effect<A, unknown, PageServices>,
  concurrency: number,
  take: (result: A) => Effect.Effect<void, unknown, R>
) =>
  Effect.gen(function* () {
    const log = yield* EventLog
    const sql = yield* SqlClient.SqlClient
    const problems: Array<Problem> = []
    let tasks = 0
    let events = 0
    const pages = Stream.paginateEffect("", (after) =>
      Effect.map(
        log.taskIds(after, pageSize),
        (ids) => [{ after, ids }, ids.length < pageSize ? Option.none() : Option.some(ids[ids.length - 1]!)] as const
      )
    ).pipe(Stream.filter(({ ids }) => ids.length > 0))
    yield* pages.pipe(
      Stream.mapEffect(({ after, ids }) => judgePage(after, ids), { concurrency }),
      Stream.runForEach((result) => {
        tasks += result.tasks
        events += result.events
        problems.push(...result.problems)
        return take(result)
      })
    )
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
 * One task checked against its stored row and the keys `held` (by the tasks
 * of its page). A key not held there is looked up (`elsewhere`): another task
 * may hold it, from before idempotency existed.
 */
const checkAgainst = (
  taskId: string,
  events: ReadonlyArray<VersionedEvent>,
  stored: StoredRow | undefined,
  held: ReadonlyMap<string, AcceptedMessage>,
  elsewhere: (key: MessageKey) => Effect.Effect<Option.Option<AcceptedMessage>, unknown, MessageIndex>,
  keysSince: number
) => {
  const folded = refold(taskId, events)
  if (Either.isLeft(folded)) return Effect.succeed([folded.left])
  const problems: Array<Problem> = []
  if (stored === undefined) problems.push({ taskId, problem: "has events but no read-model row" })
  else if (Either.isLeft(stored)) problems.push({ taskId, problem: `its read-model row cannot be read (${stored.left})` })
  else if (!rowMatches(stored.right, folded.right, events)) {
    problems.push({
      taskId,
      problem: `read model differs from the fold of the log (row: ${stored.right.state} v${stored.right.version}; log: ${folded.right.state} v${folded.right.version})`
    })
  }
  const missing: Array<KeyClaim> = []
  const judge = (key: MessageKey, accepted: AcceptedMessage, found: Option.Option<AcceptedMessage>) => {
    // A key held by another task is a duplicate from before idempotency existed: not a fault.
    if (Option.isNone(found)) problems.push({ taskId, problem: `message ${key.messageId} (version ${accepted.version}) is not in the message index` })
    else if (found.value.taskId === taskId && found.value.version !== accepted.version) {
      problems.push({
        taskId,
        problem: `message ${key.messageId} is indexed at version ${found.value.version}, the log has it at ${accepted.version}`
      })
    }
  }
  for (const k of acceptedIn(folded.right, events, keysSince)) {
    const found = held.get(keyText(k.key))
    if (found !== undefined) judge(k.key, k.accepted, Option.some(found))
    else missing.push(k)
  }
  if (missing.length === 0) return Effect.succeed(problems)
  return Effect.as(
    Effect.forEach(missing, ({ key, accepted }) => Effect.map(elsewhere(key), (found) => judge(key, accepted, found)), { discard: true }),
    problems
  )
}

/**
 * Invariant 4 and the message index, checked for one page of tasks. A task
 * found wrong is read and checked once more before it is reported: beside a
 * running server it may have committed between the read of its events and of
 * its row.
 */
export const verifyPage = (after: string, ids: ReadonlyArray<string>, keysSince: number) =>
  Effect.gen(function* () {
    const read = yield* readPage(after, ids)
    const { page } = read
    const readModel = yield* TaskReadModel
    const index = yield* MessageIndex
    const log = yield* EventLog
    const rows = yield* readModel.rowsBetween(page.after, page.last)
    const held = yield* index.heldBetween(page.after, page.last)
    const problems: Array<Problem> = [...read.problems]
    for (const { taskId, events } of page.tasks) {
      const found = yield* checkAgainst(taskId, events, rows.get(taskId), held, index.find, keysSince)
      if (found.length === 0) continue
      problems.push(...(yield* checkTask(taskId, yield* log.read(taskId), keysSince)))
    }
    return { tasks: read.tasks, events: read.events, problems } satisfies ScanReport
  })

/**
 * A page of tasks folded for a rebuild: each task's row and keys as its log
 * has them, where they differ from what is stored.
 */
export const foldPage = (after: string, ids: ReadonlyArray<string>, keysSince: number) =>
  Effect.gen(function* () {
    const read = yield* readPage(after, ids)
    const { page } = read
    const rows = yield* (yield* TaskReadModel).rowsBetween(page.after, page.last)
    const held = yield* (yield* MessageIndex).heldBetween(page.after, page.last)
    const heldBy = new Map<string, number>()
    for (const accepted of held.values()) heldBy.set(accepted.taskId, (heldBy.get(accepted.taskId) ?? 0) + 1)
    const problems: Array<Problem> = [...read.problems]
    const written: Array<TaskRow> = []
    const rekeyed: Array<string> = []
    const claims: Array<KeyClaim> = []
    for (const { taskId, events } of page.tasks) {
      const folded = refold(taskId, events)
      if (Either.isLeft(folded)) {
        problems.push(folded.left)
        continue
      }
      const row = rows.get(taskId)
      if (row === undefined || Either.isLeft(row) || !rowMatches(row.right, folded.right, events)) written.push(taskRow(folded.right))
      // The task's keys are right when it holds exactly the keys its log accepted, each at its version.
      // (An expired key still held is dropped by the rekey.)
      const accepted = acceptedIn(folded.right, events, keysSince)
      const exact = accepted.every(({ key, accepted: a }) => {
        const found = held.get(keyText(key))
        return found !== undefined && found.taskId === a.taskId && found.version === a.version
      })
      if (!exact || (heldBy.get(taskId) ?? 0) !== accepted.length) {
        rekeyed.push(taskId)
        claims.push(...accepted)
      }
    }
    return { tasks: read.tasks, events: read.events, problems, writes: { rows: written, rekeyed, claims } } satisfies FoldedPage
  })

/** Pages judged one after another, in this thread (and the only way on PostgreSQL). */
export const inThisThread: PageJudge = { concurrency: 1, verify: verifyPage, fold: foldPage }

/** Messages accepted since then (ms) still hold their keys; older keys have expired (`windowMs`, the idempotency window). */
const keysSinceNow = (windowMs: number) => Effect.map(Clock.currentTimeMillis, (now) => now - windowMs)

/**
 * Invariant 4 and the message index, checked for the whole store, a page of
 * tasks at a time, and ListTasks' counts of tasks (SQLite) against the rows.
 * A message older than the idempotency window (`windowMs`) needs no key.
 */
export const verifyWith = (judge: PageJudge, windowMs = defaultWindowMs) =>
  keysSinceNow(windowMs).pipe(
    Effect.flatMap((keysSince) =>
      scan(
        (after, ids) => judge.verify(after, ids, keysSince),
        judge.concurrency,
        () => Effect.void
      )
    ),
    // Rebuild counts them again.
    Effect.flatMap((report) =>
      Effect.map(
        Effect.flatMap(TaskReadModel, (readModel) => readModel.countsDrift),
        (drift) =>
          drift.length === 0 ? report : { ...report, problems: [...report.problems, ...drift.map((d) => ({ taskId: countsProblem, problem: d }))] }
      )
    )
  )

export const verify = verifyWith(inThisThread)

/** What a drift of ListTasks' counts is reported under, in place of a task id. */
export const countsProblem = "(task counts)"

/**
 * Tasks whose writes share one transaction in a rebuild. One transaction per page made a wiped rebuild
 * mostly COMMITs: each wrote the page's B-tree leaves to the WAL again, and the checkpoints wrote them
 * back (about 11 page writes a task). Each statement still holds one page: the bound on a statement's
 * parameters (SQLite's 32,766) is the page's, not the transaction's.
 */
const tasksPerTransaction = 5_000

/**
 * Recreate every task's projections from its log: what differs from the fold is written (a page's rows
 * in one statement, their message keys in another; several pages to a transaction, in this thread),
 * what already matches is left as it is. A task whose log does not refold is reported and left as it
 * is; read-model rows without events are removed.
 */
export const rebuildWith = (judge: PageJudge, windowMs = defaultWindowMs) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const keysSince = yield* keysSinceNow(windowMs)
    const readModel = yield* TaskReadModel
    const index = yield* MessageIndex
    let pending: Array<PageWrites> = []
    let pendingTasks = 0
    const writePage = (w: PageWrites) =>
      Effect.all([readModel.saveRows(w.rows), index.forgetAll(w.rekeyed), index.claimAll(w.claims)], { discard: true })
    const flush = Effect.suspend(() => {
      if (pending.length === 0) return Effect.void
      const writes = pending
      pending = []
      pendingTasks = 0
      return sql.withTransaction(Effect.forEach(writes, writePage, { discard: true }))
    })
    const report = yield* scan(
      (after, ids) => judge.fold(after, ids, keysSince),
      judge.concurrency,
      ({ writes }) => {
        if (writes.rows.length === 0 && writes.rekeyed.length === 0) return Effect.void
        pending.push(writes)
        pendingTasks += Math.max(writes.rows.length, writes.rekeyed.length)
        return pendingTasks >= tasksPerTransaction ? flush : Effect.void
      }
    )
    yield* flush
    const orphans = report.problems.filter((p) => p.problem === "read-model row without events").map((p) => p.taskId)
    if (orphans.length > 0) yield* sql`DELETE FROM a2a_tasks WHERE ${sql.in("task_id", orphans)}`
    yield* readModel.recount
    return { ...report, problems: report.problems.filter((p) => !orphans.includes(p.taskId)), removed: orphans.length }
  })
