import { Context, Effect, Either, Layer, Option, Predicate } from "effect"
import { SqlClient, type Statement } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { StoreFailure, storeService } from "../eventlog/StoreFailure.js"
import { extend } from "../domain/extend.js"
import { detach, priorityOf, sleepingUntil, type TaskSnapshot } from "../domain/Task.js"
import type { TaskEvent } from "../domain/TaskEvent.js"
import * as TaskView from "../domain/TaskView.js"
import { decodeEvent } from "../eventlog/codec.js"
import { checkSnapshot, decodeTaskRow } from "../eventlog/StoredSchema.js"
import type { TaskState } from "../domain/TaskState.js"
import { SqlReader } from "../eventlog/SqlReader.js"
import { SqliteRows } from "../eventlog/SqliteRows.js"
import type { TaskRow } from "../eventlog/SqliteCommits.js"
import { ParsedRows } from "./ParsedRows.js"

/**
 * The read model: one row per task, written in the same transaction as the
 * events it folds (invariant 4). The writer loads its decision state from
 * here; GetTask and ListTasks read it.
 */
export interface ListQuery {
  readonly tenant: string
  /** Only this principal's tasks ("" = the anonymous principal of a server without authentication). */
  readonly owner: string
  readonly contextId?: string
  readonly state?: TaskState
  readonly statusTimestampAfter?: string
  readonly pageSize: number
  /** Resume after this (statusTimestamp, taskId), exclusive; newest first. */
  readonly after?: { readonly timestamp: string; readonly taskId: string }
}

export interface ListPage {
  readonly tasks: ReadonlyArray<TaskSnapshot>
  readonly totalSize: number
  /** The sort key of the last row when more rows follow. */
  readonly next?: { readonly timestamp: string; readonly taskId: string }
}

/** A row as read for a scan: its columns decoded, or why they cannot be (`verify` reports it, `rebuild` writes it again). */
export type StoredRow = Either.Either<TaskRow, string>

export class TaskReadModel extends Context.Tag("a2a-ledger/TaskReadModel")<
  TaskReadModel,
  {
    readonly save: (snapshot: TaskSnapshot) => Effect.Effect<void, StoreFailure>
    /** The writer's read, on the write connection (inside its transaction). */
    readonly load: (taskId: string) => Effect.Effect<Option.Option<TaskSnapshot>, StoreFailure>
    /**
     * A snapshot made whole: a detached one (a big task's row as stored, or its head as its writer keeps it)
     * completed with the history and artifacts its events hold, up to its version.
     */
    readonly whole: (snapshot: TaskSnapshot) => Effect.Effect<TaskSnapshot, StoreFailure>
    /** Several tasks in one read (those that exist), by id. */
    readonly getAll: (taskIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, TaskSnapshot>, StoreFailure>
    /** A read of the committed row, for everyone else. */
    readonly get: (taskId: string) => Effect.Effect<Option.Option<TaskSnapshot>, StoreFailure>
    readonly list: (query: ListQuery) => Effect.Effect<ListPage, StoreFailure>
    /** Tasks that need a worker (SUBMITTED, WORKING), oldest first. */
    readonly active: Effect.Effect<ReadonlyArray<TaskSnapshot>, StoreFailure>
    /**
     * The task if it belongs to this tenant and owner; none otherwise. Someone
     * else's task costs the same query as a missing one, and is never parsed.
     */
    readonly getVisible: (
      taskId: string,
      scope: { readonly tenant: string; readonly owner: string }
    ) => Effect.Effect<Option.Option<TaskSnapshot>, StoreFailure>
    /** The stored row of every task with `afterTaskId < id <= lastTaskId` (a page of a scan), as it is stored. */
    readonly rowsBetween: (afterTaskId: string, lastTaskId: string) => Effect.Effect<ReadonlyMap<string, StoredRow>, StoreFailure>
    /** The task's stored row, as it is stored. */
    readonly row: (taskId: string) => Effect.Effect<Option.Option<StoredRow>, StoreFailure>
    /** Write many rows (each as `taskRow` makes it) in one statement: a page of a rebuild. */
    readonly saveRows: (rows: ReadonlyArray<TaskRow>) => Effect.Effect<void, StoreFailure>
    /** The task's version, without reading its snapshot. */
    readonly version: (taskId: string) => Effect.Effect<Option.Option<number>, StoreFailure>
    /** A trivial query on the read connection: does the store answer? */
    readonly ping: Effect.Effect<void, StoreFailure>
    /**
     * Where the counts of tasks by tenant, owner and state (SQLite; kept by triggers for ListTasks'
     * `totalSize`) differ from the rows, one line each; none on PostgreSQL, which counts rows.
     */
    readonly countsDrift: Effect.Effect<ReadonlyArray<string>, StoreFailure>
    /** Count the rows again into those counts (rebuild). */
    readonly recount: Effect.Effect<void, StoreFailure>
    /**
     * Every tenant's and principal's tasks, newest change first, for the operator's board: optionally of
     * one tenant, context or state; `after` resumes a page.
     */
    readonly listAll: (query: {
      readonly tenant?: string
      readonly contextId?: string
      readonly state?: string
      readonly pageSize: number
      readonly after?: { readonly timestamp: string; readonly taskId: string }
    }) => Effect.Effect<Omit<ListPage, "totalSize">, StoreFailure>
    /** Tasks that reached a terminal state since `since` (ISO), by minute (`YYYY-MM-DDTHH:MM`) and state. */
    readonly finishedPerMinute: (
      since: string
    ) => Effect.Effect<ReadonlyArray<{ readonly minute: string; readonly state: string; readonly n: number }>, StoreFailure>
    /** How many tasks are in each non-terminal state (SQLite: from those counts; PostgreSQL: counted). */
    readonly activeCounts: Effect.Effect<ReadonlyArray<{ readonly state: string; readonly n: number }>, StoreFailure>
  }
>() {}

/**
 * A task with more facts than this keeps only its head in its row: the task without its history and
 * artifacts, which are read from its events (they are all there, in order). A commit to a big task then
 * rewrites a row of the same size at its 10,000th fact as at its 20th, where the whole task grows with
 * every message and chunk. A smaller task keeps all of itself in the row, so one read answers GetTask.
 */
export const inlineVersions = 16

/** What a row stores of a snapshot (a detached one says so in its last key). */
const storedForm = (s: TaskSnapshot): TaskSnapshot => (s.version <= inlineVersions ? s : detach(s))

/** The read-model row of a snapshot: its columns for filters and order, and the snapshot itself. */
export const taskRow = (s: TaskSnapshot): TaskRow => {
  const task = s.task
  return {
    task_id: task.id,
    tenant: s.tenant,
    owner: s.owner,
    context_id: task.contextId,
    state: task.status.state,
    version: s.version,
    status_timestamp: task.status.timestamp,
    created_at: s.createdAt,
    snapshot: JSON.stringify(storedForm(s)),
    wake_at: wakeAt(s),
    priority: priorityOf(s.turnInput)
  }
}

/** When a task sleeping on a durable timer is to be woken (ms), for claims to find it (LeaseStore); null for any other. */
const wakeAt = (s: TaskSnapshot): number | null => {
  const due = sleepingUntil(s)
  return due === undefined ? null : Date.parse(due)
}

/**
 * A row's snapshot JSON as stored: whole, or detached (`detached: true`, its task's history and artifacts
 * left out), which needs its events (`attachEvents`, `TaskReadModel.whole`) before it is the task. Checked
 * against its schema (StoredSchema): a row that is not a snapshot is a StoreFailure naming the problem.
 */
export const parseStored = (json: string): Either.Either<TaskSnapshot, StoreFailure> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    return Either.left(unreadableRow("its snapshot is not valid JSON"))
  }
  return Either.mapLeft(checkSnapshot(parsed), (problem) =>
    unreadableRow(
      `${Predicate.hasProperty(parsed, "task") && Predicate.hasProperty(parsed.task, "id") ? `task ${String(parsed.task.id)}: ` : ""}${problem}`
    )
  )
}

/** Clients are told no more than that (the details are for the logs and `verify`); `rebuild` writes such a row again. */
const unreadableRow = (problem: string) =>
  new StoreFailure({ cause: problem, reason: "a stored task cannot be read", message: `a read-model row cannot be read: ${problem}` })

/** The whole snapshot of a detached one, given its task's events (those after its version are left out). */
export const attachEvents = (
  snapshot: TaskSnapshot,
  events: ReadonlyArray<{ readonly version: number; readonly event: TaskEvent }>
): TaskSnapshot => {
  if (snapshot.detached !== true) return snapshot
  const upTo = events.filter((e) => e.version <= snapshot.version).map((e) => e.event)
  // (`undefined`, not a copy without the key: JSON leaves it out, and the object keeps its class.)
  return extend(snapshot, { task: TaskView.assemble(snapshot.task, upTo), detached: undefined })
}

/** How the reads below fail before the service's boundary maps a SqlError into a StoreFailure. */
type Failure = SqlError | StoreFailure

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const reader = Option.getOrElse(yield* Effect.serviceOption(SqlReader), () => sql)
  // On a SQLite file, the single-row reads go through prepared statements (SqliteRows).
  const rows = Option.getOrUndefined(yield* Effect.serviceOption(SqliteRows))

  const save = (s: TaskSnapshot) => {
    const row = taskRow(s)
    return sql`INSERT INTO a2a_tasks ${sql.insert(row)}
      ON CONFLICT (task_id) DO UPDATE SET state = ${row.state}, version = ${row.version},
        status_timestamp = ${row.status_timestamp}, snapshot = ${row.snapshot}, wake_at = ${row.wake_at}, priority = ${row.priority}`.pipe(
      Effect.asVoid
    )
  }

  type EventRow = { task_id: string; version: number; type: string; schema_version: number; payload: string }
  type Versioned = { readonly version: number; readonly event: TaskEvent }
  /** Events read for detached rows, by task, each task's up to its row's version (`upTo`). */
  const eventsByTask = (
    rows: ReadonlyArray<EventRow>,
    upTo: ReadonlyMap<string, number>
  ): Either.Either<Map<string, Array<Versioned>>, StoreFailure> => {
    const byTask = new Map<string, Array<Versioned>>()
    for (const row of rows) {
      const version = Number(row.version)
      if (version > (upTo.get(row.task_id) ?? 0)) continue
      const decoded = decodeEvent(row)
      if (Either.isLeft(decoded))
        return Either.left(
          new StoreFailure({ cause: decoded.left, reason: "a stored task cannot be read", message: `an event of task ${row.task_id} cannot be read` })
        )
      const events = byTask.get(row.task_id) ?? []
      if (events.length === 0) byTask.set(row.task_id, events)
      events.push({ version, event: decoded.right })
    }
    return Either.right(byTask)
  }

  /** A detached snapshot's task completed from its events (read on `client`, up to its version). */
  const completeWith =
    (client: SqlClient.SqlClient) =>
    (snapshot: TaskSnapshot): Effect.Effect<TaskSnapshot, Failure> => {
      if (snapshot.detached !== true) return Effect.succeed(snapshot)
      const taskId = snapshot.task.id
      return client<EventRow>`SELECT task_id, version, type, schema_version, payload FROM a2a_events
      WHERE task_id = ${taskId} AND version <= ${snapshot.version} ORDER BY version`.pipe(
        Effect.flatMap((rows) =>
          Effect.map(eventsByTask(rows, new Map([[taskId, snapshot.version]])), (byTask) => attachEvents(snapshot, byTask.get(taskId) ?? []))
        )
      )
    }
  const whole = completeWith(reader)

  /** Detached tasks completed together per statement: a page of big tasks is not a query per task. */
  const tasksPerRead = 8
  const completeAll = (stored: ReadonlyArray<TaskSnapshot>): Effect.Effect<Array<TaskSnapshot>, Failure> =>
    Effect.gen(function* () {
      const detached = stored.filter((s) => s.detached === true)
      const events = new Map<string, Array<Versioned>>()
      for (let i = 0; i < detached.length; i += tasksPerRead) {
        const upTo = new Map(detached.slice(i, i + tasksPerRead).map((s) => [s.task.id, s.version]))
        const rows = yield* reader<EventRow>`SELECT task_id, version, type, schema_version, payload FROM a2a_events
          WHERE ${reader.in("task_id", [...upTo.keys()])} ORDER BY task_id, version`
        for (const [taskId, read] of yield* eventsByTask(rows, upTo)) events.set(taskId, read)
      }
      return stored.map((s) => (s.detached === true ? attachEvents(s, events.get(s.task.id) ?? []) : s))
    })
  /** Rows' snapshots, parsed and checked; the first that is not a snapshot fails them all. */
  const parseAll = (rows: ReadonlyArray<{ readonly snapshot: string }>) => Either.all(rows.map((row) => parseStored(row.snapshot)))
  const parseThen = (client: SqlClient.SqlClient) => (json: string | undefined) =>
    json === undefined
      ? Effect.succeed(Option.none<TaskSnapshot>())
      : Effect.map(Effect.flatMap(parseStored(json), completeWith(client)), Option.some)

  const loadWith = (client: SqlClient.SqlClient) => (taskId: string) =>
    client<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE task_id = ${taskId}`.pipe(
      Effect.flatMap((rows) => parseThen(client)(rows[0]?.snapshot))
    )

  const countRows = (where: Statement.Fragment, limit?: number) =>
    Effect.map(
      limit === undefined
        ? reader<{ n: number | string }>`SELECT COUNT(*) AS n FROM a2a_tasks WHERE ${where}`
        : reader<{ n: number | string }>`SELECT COUNT(*) AS n FROM (SELECT 1 FROM a2a_tasks WHERE ${where} LIMIT ${limit})`,
      (counted) => Number(counted[0]?.n ?? 0)
    )

  /**
   * `totalSize` on SQLite: the counts by tenant, owner and state (migration 0007) answer without a time
   * filter. With one, the rows in the window are counted when they are few, else the rows before it are
   * (then the window is the count less those), else, both being many, the window is counted in full: a
   * cost in proportion to the tasks it holds. A context filter counts its context's rows.
   */
  const countSqlite = (q: ListQuery, filters: ReadonlyArray<Statement.Fragment>) =>
    Effect.gen(function* () {
      if (q.contextId !== undefined) return yield* countRows(reader.and(filters))
      const stateFilter = q.state !== undefined ? reader` AND state = ${q.state}` : reader``
      const counts = yield* reader<{ n: number | string | null }>`SELECT SUM(n) AS n FROM a2a_task_counts
        WHERE tenant = ${q.tenant} AND owner = ${q.owner}${stateFilter}`
      const all = Number(counts[0]?.n ?? 0)
      const after = q.statusTimestampAfter
      if (after === undefined) return all
      const few = 10_000
      const inWindow = yield* countRows(reader.and(filters), few)
      if (inWindow < few) return inWindow
      const before = yield* countRows(reader`tenant = ${q.tenant} AND owner = ${q.owner}${stateFilter} AND status_timestamp < ${after}`, few)
      if (before < few) return all - before
      return yield* countRows(reader.and(filters))
    })

  const list = (q: ListQuery) =>
    Effect.gen(function* () {
      const filters = [reader`tenant = ${q.tenant}`, reader`owner = ${q.owner}`]
      if (q.contextId !== undefined) filters.push(reader`context_id = ${q.contextId}`)
      if (q.state !== undefined) filters.push(reader`state = ${q.state}`)
      if (q.statusTimestampAfter !== undefined) filters.push(reader`status_timestamp >= ${q.statusTimestampAfter}`)
      const where = reader.and(filters)
      const totalSize = yield* reader.onDialectOrElse({ sqlite: () => countSqlite(q, filters), orElse: () => countRows(where) })
      const page =
        q.after === undefined
          ? where
          : reader.and([
              ...filters,
              reader`(status_timestamp < ${q.after.timestamp} OR (status_timestamp = ${q.after.timestamp} AND task_id < ${q.after.taskId}))`
            ])
      const rows = yield* reader<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE ${page}
        ORDER BY status_timestamp DESC, task_id DESC LIMIT ${q.pageSize + 1}`
      const tasks = yield* completeAll(yield* parseAll(rows.slice(0, q.pageSize)))
      const last = tasks[tasks.length - 1]
      const next = rows.length > q.pageSize && last?.task ? { timestamp: last.task.status.timestamp, taskId: last.task.id } : undefined
      return { tasks, totalSize, ...(next ? { next } : {}) }
    })

  // Each half by its own index (migration 0011): the tasks waiting for a worker or running, and the sleeping.
  const active = reader<{ snapshot: string }>`SELECT snapshot, created_at, task_id FROM a2a_tasks
    WHERE state IN ('TASK_STATE_SUBMITTED', 'TASK_STATE_WORKING') AND wake_at IS NULL
    UNION ALL SELECT snapshot, created_at, task_id FROM a2a_tasks WHERE wake_at IS NOT NULL
    ORDER BY created_at, task_id`.pipe(Effect.flatMap(parseAll), Effect.flatMap(completeAll))

  // Big rows are parsed once per version (ParsedRows): rows of 64 KiB and more, 8 MiB of them in all.
  const parsed = new ParsedRows(64 * 1024, 8 * 1024 * 1024)
  /** A row read for a client: parsed, completed when detached, and kept when big. */
  const parseKeeping = (json: string | undefined): Effect.Effect<Option.Option<TaskSnapshot>, Failure> => {
    if (json === undefined) return Effect.succeed(Option.none())
    const read = parseStored(json)
    if (Either.isLeft(read)) return Effect.fail(read.left)
    const stored = read.right
    if (stored.detached === true) return Effect.map(whole(stored), Option.some)
    parsed.keep(stored, json.length)
    return Effect.succeed(Option.some(stored))
  }
  /**
   * The kept snapshot when the task's row is still at its version, else `read`. With a scope, a kept task
   * of another tenant or owner is none, after the same version lookup a missing one takes.
   */
  const keptOr = (
    taskId: string,
    read: Effect.Effect<Option.Option<TaskSnapshot>, Failure>,
    scope?: { readonly tenant: string; readonly owner: string }
  ): Effect.Effect<Option.Option<TaskSnapshot>, Failure> =>
    parsed.has(taskId)
      ? Effect.flatMap(version(taskId), (current) => {
          const kept = parsed.find(taskId, Option.getOrUndefined(current))
          if (kept === undefined) return read
          return Effect.succeed(
            scope === undefined || (kept.tenant === scope.tenant && kept.owner === scope.owner) ? Option.some(kept) : Option.none()
          )
        })
      : read

  const getVisible = (taskId: string, scope: { readonly tenant: string; readonly owner: string }) =>
    keptOr(
      taskId,
      rows !== undefined
        ? Effect.flatMap(rows.snapshot(taskId, scope), parseKeeping)
        : reader<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks
            WHERE task_id = ${taskId} AND tenant = ${scope.tenant} AND owner = ${scope.owner}`.pipe(
            Effect.flatMap((rows) => parseKeeping(rows[0]?.snapshot))
          ),
      scope
    )

  const getAll = (taskIds: ReadonlyArray<string>) =>
    taskIds.length === 0
      ? Effect.succeed(new Map<string, TaskSnapshot>())
      : reader<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE ${reader.in("task_id", taskIds)}`.pipe(
          Effect.flatMap(parseAll),
          Effect.flatMap(completeAll),
          Effect.map((snapshots) => new Map(snapshots.map((s) => [s.task.id, s])))
        )

  const rowColumns = reader`task_id, tenant, owner, context_id, state, version, status_timestamp, created_at, snapshot, wake_at, priority`
  // Decoded (StoredSchema): PostgreSQL's driver may hand integers back as strings, and a row may hold anything.
  const rowsBetween = (afterTaskId: string, lastTaskId: string) =>
    reader<{ task_id: string }>`SELECT ${rowColumns} FROM a2a_tasks WHERE task_id > ${afterTaskId} AND task_id <= ${lastTaskId}`.pipe(
      Effect.map((rows) => new Map(rows.map((r) => [r.task_id, decodeTaskRow(r)])))
    )
  const row = (taskId: string) =>
    reader`SELECT ${rowColumns} FROM a2a_tasks WHERE task_id = ${taskId}`.pipe(
      Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), decodeTaskRow))
    )

  const saveRows = (written: ReadonlyArray<TaskRow>) =>
    written.length === 0
      ? Effect.void
      : sql`INSERT INTO a2a_tasks ${sql.insert(written)}
          ON CONFLICT (task_id) DO UPDATE SET state = excluded.state, version = excluded.version,
            status_timestamp = excluded.status_timestamp, snapshot = excluded.snapshot, wake_at = excluded.wake_at, priority = excluded.priority`.pipe(
          Effect.asVoid
        )

  const version = (taskId: string): Effect.Effect<Option.Option<number>, Failure> =>
    rows !== undefined ? Effect.map(rows.version(taskId), Option.fromNullable) : versionSql(taskId)

  const versionSql = (taskId: string) =>
    reader<{ version: number | string }>`SELECT version FROM a2a_tasks WHERE task_id = ${taskId}`.pipe(
      Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (r) => Number(r.version)))
    )

  const ping = Effect.asVoid(reader`SELECT 1 FROM a2a_tasks LIMIT 1`)
  const get = (taskId: string) =>
    keptOr(
      taskId,
      rows !== undefined
        ? Effect.flatMap(rows.snapshot(taskId), parseKeeping)
        : reader<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE task_id = ${taskId}`.pipe(
            Effect.flatMap((rows) => parseKeeping(rows[0]?.snapshot))
          )
    )

  const countsDrift = sql.onDialectOrElse({
    sqlite: () =>
      Effect.map(
        sql<{ tenant: string; owner: string; state: string; counted: number; rows: number }>`
          SELECT tenant, owner, state, SUM(counted) AS counted, SUM(rows) AS rows FROM (
            SELECT tenant, owner, state, n AS counted, 0 AS rows FROM a2a_task_counts
            UNION ALL SELECT tenant, owner, state, 0, COUNT(*) FROM a2a_tasks GROUP BY tenant, owner, state
          ) GROUP BY tenant, owner, state HAVING SUM(counted) <> SUM(rows) ORDER BY tenant, owner, state`,
        (rows) => rows.map((r) => `tenant "${r.tenant}", owner "${r.owner}", ${r.state}: counted ${r.counted}, ${r.rows} task(s)`)
      ),
    orElse: () => Effect.succeed([])
  })
  const recount = sql
    .onDialectOrElse({
      sqlite: () =>
        sql.withTransaction(
          Effect.zipRight(
            sql`DELETE FROM a2a_task_counts`,
            sql`INSERT INTO a2a_task_counts (tenant, owner, state, n) SELECT tenant, owner, state, COUNT(*) FROM a2a_tasks GROUP BY tenant, owner, state`
          )
        ),
      orElse: () => Effect.void
    })
    .pipe(Effect.asVoid)

  const activeStates = ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"]
  const activeCounts = Effect.map(
    reader.onDialectOrElse({
      sqlite: () =>
        reader<{
          state: string
          n: number | string
        }>`SELECT state, SUM(n) AS n FROM a2a_task_counts WHERE ${reader.in("state", activeStates)} GROUP BY state`,
      orElse: () =>
        reader<{
          state: string
          n: number | string
        }>`SELECT state, COUNT(*) AS n FROM a2a_tasks WHERE ${reader.in("state", activeStates)} GROUP BY state`
    }),
    (rows) => rows.map((r) => ({ state: r.state, n: Number(r.n) }))
  )

  const listAll = (q: Parameters<Context.Tag.Service<typeof TaskReadModel>["listAll"]>[0]) =>
    Effect.gen(function* () {
      const filters = [reader`1 = 1`]
      if (q.tenant !== undefined) filters.push(reader`tenant = ${q.tenant}`)
      if (q.contextId !== undefined) filters.push(reader`context_id = ${q.contextId}`)
      if (q.state !== undefined) filters.push(reader`state = ${q.state}`)
      if (q.after !== undefined) {
        filters.push(reader`(status_timestamp < ${q.after.timestamp} OR (status_timestamp = ${q.after.timestamp} AND task_id < ${q.after.taskId}))`)
      }
      const rows = yield* reader<{ snapshot: string }>`SELECT snapshot FROM a2a_tasks WHERE ${reader.and(filters)}
        ORDER BY status_timestamp DESC, task_id DESC LIMIT ${q.pageSize + 1}`
      const tasks = yield* parseAll(rows.slice(0, q.pageSize))
      const last = tasks[tasks.length - 1]
      const next = rows.length > q.pageSize && last !== undefined ? { timestamp: last.task.status.timestamp, taskId: last.task.id } : undefined
      return { tasks, ...(next !== undefined ? { next } : {}) }
    })
  const finishedPerMinute = (since: string) =>
    Effect.map(
      reader<{ minute: string; state: string; n: number | string }>`SELECT substr(status_timestamp, 1, 16) AS minute, state, COUNT(*) AS n
        FROM a2a_tasks WHERE status_timestamp >= ${since}
        AND ${reader.in("state", ["TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"])}
        GROUP BY substr(status_timestamp, 1, 16), state`,
      (rows) => rows.map((r) => ({ minute: r.minute, state: r.state, n: Number(r.n) }))
    )

  return TaskReadModel.of(
    storeService({
      listAll,
      finishedPerMinute,
      save,
      saveRows,
      load: loadWith(sql),
      whole,
      get,
      getAll,
      getVisible,
      rowsBetween,
      row,
      version,
      list,
      active,
      ping,
      countsDrift,
      recount,
      activeCounts
    })
  )
})

export const layer = Layer.effect(TaskReadModel, make)
