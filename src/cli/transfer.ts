import { Args, Command, Options } from "@effect/cli"
import { SqlClient } from "@effect/sql"
import { Console, Effect, Either, Option, Schema } from "effect"
import * as fs from "node:fs"
import * as readline from "node:readline"
import { EventLog } from "../eventlog/EventLog.js"
import { EventMetadataSchema, firstProblem, TaskEventSchema } from "../eventlog/StoredSchema.js"
import { projectTask, refold } from "../projections/Refold.js"
import { CommandFailed } from "./CommandFailed.js"
import { db, withStore } from "./storeOption.js"

/**
 * `a2a-ledger export` and `import`: the event log as NDJSON, one event per
 * line, each task's events together and in version order. This is how a
 * store moves, e.g. from SQLite to PostgreSQL. Import replays every task
 * through the machine, writes its events and its read-model row in one
 * transaction, and refuses tasks the target already has.
 */
/** A line of the file: an event as the log holds it, checked on import like a row read back from the store. */
const Line = Schema.Struct({
  taskId: Schema.String,
  version: Schema.Number.pipe(Schema.int(), Schema.greaterThanOrEqualTo(1)),
  event: TaskEventSchema,
  metadata: EventMetadataSchema
})
type Line = typeof Line.Type
const decodeLine = Schema.decodeUnknownEither(Line)

const task = Options.text("task").pipe(Options.optional, Options.withDescription("only this task"))
const context = Options.text("context").pipe(Options.optional, Options.withDescription("only the tasks of this context"))
const since = Options.text("since").pipe(
  Options.optional,
  Options.withDescription("only tasks changed at or after this ISO-8601 time, e.g. 2026-01-01T00:00:00Z")
)
const out = Options.file("out").pipe(Options.optional, Options.withDescription("write here instead of standard output"))

const exportCommand = Command.make("export", { db, task, context, since, out }, (o) =>
  Effect.gen(function* () {
    const written = yield* withStore(
      o.db,
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const log = yield* EventLog
        const filters = [sql`1 = 1`]
        if (Option.isSome(o.task)) filters.push(sql`task_id = ${o.task.value}`)
        if (Option.isSome(o.context)) filters.push(sql`context_id = ${o.context.value}`)
        if (Option.isSome(o.since)) {
          const t = Date.parse(o.since.value)
          if (Number.isNaN(t)) return yield* new CommandFailed({ message: `--since ${o.since.value} is not an ISO-8601 time` })
          filters.push(sql`status_timestamp >= ${new Date(t).toISOString()}`)
        }
        const ids = yield* sql<{ task_id: string }>`SELECT task_id FROM a2a_tasks WHERE ${sql.and(filters)} ORDER BY created_at, task_id`
        const sink = Option.isSome(o.out) ? fs.openSync(o.out.value, "w") : 1
        let events = 0
        try {
          for (const { task_id } of ids) {
            const lines = (yield* log.read(task_id)).map((e) =>
              JSON.stringify({ taskId: e.taskId, version: e.version, event: e.event, metadata: e.metadata } satisfies Line)
            )
            if (lines.length > 0) fs.writeSync(sink, `${lines.join("\n")}\n`)
            events += lines.length
          }
        } finally {
          if (sink !== 1) fs.closeSync(sink)
        }
        return { tasks: ids.length, events }
      })
    )
    yield* Console.error(`exported ${written.tasks} task(s), ${written.events} event(s)`)
  })
).pipe(Command.withDescription("Write the event log as NDJSON (one event per line, each task's events together)"))

const file = Args.file({ name: "file", exists: "yes" }).pipe(Args.withDescription("NDJSON written by `a2a-ledger export`"))

/** The file's tasks, one at a time, in the order they appear. */
async function* tasksOf(path: string): AsyncGenerator<{ taskId: string; lines: Array<Line>; lineNo: number }> {
  const rl = readline.createInterface({ input: fs.createReadStream(path), crlfDelay: Infinity })
  let current: { taskId: string; lines: Array<Line>; lineNo: number } | undefined
  let n = 0
  for await (const text of rl) {
    n++
    if (text.trim() === "") continue
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new Error(`line ${n} is not JSON`)
    }
    const decoded = decodeLine(parsed, { errors: "first" })
    if (Either.isLeft(decoded)) {
      throw new Error(`line ${n} is not an exported event (taskId, version, event, metadata): ${firstProblem(decoded.left.issue)}`)
    }
    const line = decoded.right
    if (current !== undefined && current.taskId !== line.taskId) {
      yield current
      current = undefined
    }
    current ??= { taskId: line.taskId, lines: [], lineNo: n }
    current.lines.push(line)
  }
  if (current !== undefined) yield current
}

const importCommand = Command.make("import", { db, file }, (o) =>
  Effect.gen(function* () {
    const counts = yield* withStore(
      o.db,
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const log = yield* EventLog
        const result = { imported: 0, events: 0, refused: [] as Array<string> }
        const iterator = tasksOf(o.file)
        for (;;) {
          const next = yield* Effect.tryPromise({ try: () => iterator.next(), catch: (e) => e as Error })
          if (next.done === true) break
          const { taskId, lines, lineNo } = next.value
          // The machine judges every event again: a gap or an illegal history is refused, not stored.
          const folded = refold(taskId, lines)
          if (folded._tag === "Left") return yield* Effect.fail(new Error(`task ${taskId} (from line ${lineNo}): ${folded.left.problem}`))
          const written = yield* sql.withTransaction(
            Effect.gen(function* () {
              if ((yield* log.version(taskId)) > 0) return false
              const appended = yield* log.append(
                taskId,
                0,
                lines.map((l) => l.event),
                lines[0]!.metadata
              )
              yield* projectTask(folded.right, appended)
              return true
            })
          )
          if (written) {
            result.imported++
            result.events += lines.length
          } else {
            result.refused.push(taskId)
          }
        }
        return result
      }),
      { create: true }
    )
    yield* Console.log(`imported ${counts.imported} task(s), ${counts.events} event(s)`)
    if (counts.refused.length > 0) {
      return yield* new CommandFailed({
        message: `refused ${counts.refused.length} task(s) the store already has: ${counts.refused.slice(0, 5).join(", ")}${counts.refused.length > 5 ? ", …" : ""}`
      })
    }
  })
).pipe(Command.withDescription("Load NDJSON written by `export` into a store, refusing tasks it already has"))

export const transfer = [exportCommand, importCommand] as const
