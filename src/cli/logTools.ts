import { Args, Command, Options } from "@effect/cli"
import { Clock, Console, Effect, Option } from "effect"
import { nextEvents } from "../domain/Task.js"
import { isTerminal, stateAfter, type TaskState, TerminalStates } from "../domain/TaskState.js"
import { EventLog, type LoggedEvent, type TailCursor, tailStart } from "../eventlog/EventLog.js"
import { Pruner } from "../eventlog/Pruner.js"
import { parseDuration } from "../engine/Retention.js"
import { inThisThread, rebuildWith, type ScanReport, verifyWith, walk } from "../projections/Refold.js"
import * as ScanThreads from "../projections/ScanThreads.js"
import * as Store from "../eventlog/Store.js"
import { presentTask } from "../protocol/present.js"
import { stateName, summary } from "../domain/eventText.js"
import { CommandFailed } from "./CommandFailed.js"
import { db, idempotencyWindow, withStore } from "./storeOption.js"

/**
 * The event-log tools: `verify`, `rebuild`, `replay`, `tail`, `prune`. Each
 * opens the store named by `--db` without taking it over, so all but
 * `rebuild` work beside a running server.
 */
const json = Options.boolean("json").pipe(Options.withDescription("print JSON for scripts instead of text"))

const threads = Options.integer("threads").pipe(
  Options.optional,
  Options.withDescription(
    "threads that read and fold the log beside this one (SQLite; default one per core, at most 4, none on one core or from the sources; 0 for none)"
  )
)

/** How the pages of a scan of `db` are judged: by scan threads on a SQLite file, else in this thread. */
const judgeFor = (db: string, asked: Option.Option<number>) =>
  Effect.gen(function* () {
    const postgres = Store.isPostgresUrl(db)
    if (Option.isSome(asked) && asked.value < 0) return yield* new CommandFailed({ message: "--threads must be 0 or more" })
    if (Option.isSome(asked) && asked.value > 0 && postgres) {
      return yield* new CommandFailed({ message: "--threads: a PostgreSQL store is scanned in this thread only; leave --threads out" })
    }
    const count = Option.getOrElse(asked, () => (postgres ? 0 : ScanThreads.defaultThreads()))
    return count === 0 ? inThisThread : yield* ScanThreads.make(db, count)
  })

const printProblems = (report: ScanReport, what: string) =>
  Effect.gen(function* () {
    for (const p of report.problems) yield* Console.log(`${p.taskId}\t${p.problem}`)
    yield* Console.log(
      `${what} ${report.tasks} task(s), ${report.events} event(s): ${report.problems.length === 0 ? "no problems" : `${report.problems.length} problem(s)`}`
    )
  })

const failOnProblems = (report: ScanReport) =>
  report.problems.length === 0 ? Effect.void : Effect.fail(new CommandFailed({ message: `${report.problems.length} problem(s) found` }))

const verifyCommand = Command.make("verify", { db, json, threads, idempotencyWindow }, (o) =>
  Effect.gen(function* () {
    const report = yield* withStore(
      o.db,
      Effect.flatMap(judgeFor(o.db, o.threads), (judge) => verifyWith(judge, o.idempotencyWindow))
    )
    yield* o.json ? Console.log(JSON.stringify(report, null, 2)) : printProblems(report, "verified")
    yield* failOnProblems(report)
  })
).pipe(
  Command.withDescription(
    "Refold every task's events: each must be legal under the task machine, versions without gaps, and the read model and message index must match. Exit 1 and a list of problems otherwise"
  )
)

const rebuildCommand = Command.make("rebuild", { db, json, threads, idempotencyWindow }, (o) =>
  Effect.gen(function* () {
    // The engine caches snapshots and writes rows: a rebuild under a live SQLite server is refused
    // (it holds the file); on PostgreSQL, stop the servers first (docs/cli.md).
    const report = yield* withStore(
      o.db,
      Effect.flatMap(judgeFor(o.db, o.threads), (judge) => rebuildWith(judge, o.idempotencyWindow)),
      { exclusive: true }
    )
    if (o.json) yield* Console.log(JSON.stringify(report, null, 2))
    else {
      yield* printProblems(report, "rebuilt")
      if (report.removed > 0) yield* Console.log(`removed ${report.removed} read-model row(s) that had no events`)
    }
    yield* failOnProblems(report)
  })
).pipe(Command.withDescription("Recreate the read model and the message index from the log (stop the server first)"))

const taskId = Args.text({ name: "taskId" }).pipe(Args.withDescription("the task's id"))
const toVersion = Options.integer("to-version").pipe(
  Options.optional,
  Options.withDescription("stop at this version and show the task as it was then (time travel)")
)

const replayCommand = Command.make("replay", { db, taskId, toVersion, json }, (o) =>
  Effect.gen(function* () {
    const upTo = Option.getOrUndefined(o.toVersion)
    if (upTo !== undefined && upTo < 1) return yield* new CommandFailed({ message: "--to-version must be 1 or more" })
    const events = yield* withStore(
      o.db,
      Effect.flatMap(EventLog, (log) => log.read(o.taskId))
    )
    if (events.length === 0) return yield* new CommandFailed({ message: `no task ${o.taskId} in this store` })
    const shown = events.filter((e) => upTo === undefined || e.version <= upTo)
    const walked = walk(o.taskId, shown)
    if (walked.problem !== undefined) {
      return yield* new CommandFailed({ message: `${walked.problem.problem}; the log is damaged (run \`a2a-ledger verify\`)` })
    }
    const steps = walked.snapshots.map((s, i) => {
      const e = shown[i]!
      return { version: e.version, at: e.event.at, type: e.event.type, event: e.event, state: s.state, next: nextEvents(s) }
    })
    const s = walked.snapshots[walked.snapshots.length - 1]!
    const task = presentTask(s.task)
    const latest = events[events.length - 1]!.version
    if (o.json) return yield* Console.log(JSON.stringify({ taskId: o.taskId, version: s.version, latestVersion: latest, steps, task }, null, 2))
    for (const step of steps) {
      yield* Console.log(`v${step.version}  ${step.at}  ${step.type.padEnd(18)} ${summary(step.event)}`.trimEnd())
      yield* Console.log(`      → ${stateName(step.state)}; next: ${step.next.length === 0 ? "nothing (final)" : step.next.join(", ")}`)
    }
    yield* Console.log(`\nTask ${o.taskId} at version ${s.version}${s.version < latest ? ` (the log goes on to version ${latest})` : " (latest)"}:`)
    yield* Console.log(JSON.stringify(task, null, 2))
  })
).pipe(Command.withDescription("Each event of a task with the state it led to and the events legal next, then the task as it was"))

const task = Options.text("task").pipe(Options.optional, Options.withDescription("only this task's events"))
const follow = Options.boolean("follow").pipe(Options.withAlias("f"), Options.withDescription("keep printing events as they commit (Ctrl-C stops)"))
const lines = Options.integer("lines").pipe(
  Options.withAlias("n"),
  Options.withDefault(10),
  Options.withDescription("how many of the latest events to show first")
)
const fromStart = Options.boolean("from-start").pipe(Options.withDescription("show the whole log (or task) first, not only the latest events"))
const pollMs = Options.integer("poll-ms").pipe(Options.withDefault(250), Options.withDescription("with --follow: how often to look for new events"))

const line = (e: LoggedEvent, asJson: boolean) =>
  asJson
    ? JSON.stringify({ position: e.position, taskId: e.taskId, version: e.version, type: e.event.type, event: e.event, metadata: e.metadata })
    : `${e.event.at}  ${e.taskId}  v${e.version}  ${e.event.type.padEnd(18)} ${summary(e.event)}`.trimEnd()

const tailCommand = Command.make("tail", { db, task, follow, lines, fromStart, pollMs, json }, (o) =>
  withStore(
    o.db,
    Effect.gen(function* () {
      const log = yield* EventLog
      const print = (events: ReadonlyArray<LoggedEvent>) => Effect.forEach(events, (e) => Console.log(line(e, o.json)), { discard: true })
      const pause = Effect.sleep(Math.max(10, o.pollMs))
      if (Option.isSome(o.task)) {
        const id = o.task.value
        const all = yield* log.read(id)
        // Also with --follow: task ids come from the server when a task is submitted, so an id
        // that is not in the log now never will be (a typo, or another store); waiting would be forever.
        if (all.length === 0) {
          return yield* new CommandFailed({
            message: `no task ${id} in this store${o.follow ? " (a task is in the log from the moment SendMessage answers; check the id and --db)" : ""}`
          })
        }
        yield* print(o.fromStart ? all : all.slice(Math.max(0, all.length - o.lines)))
        let last = all[all.length - 1]!
        // A finished task gets no more events (invariant 2): following it ends there.
        for (;;) {
          if (!o.follow || isFinal(last)) return
          yield* pause
          const more = yield* log.read(id, { fromVersion: last.version + 1 })
          yield* print(more)
          last = more[more.length - 1] ?? last
        }
      }
      let cursor: TailCursor = o.fromStart ? tailStart : yield* log.tailFromLast(Math.max(0, o.lines))
      for (;;) {
        const page = yield* log.tail(cursor, 1000)
        yield* print(page.events)
        cursor = page.cursor
        if (page.events.length === 1000) continue
        if (!o.follow) return
        yield* pause
      }
    })
  )
).pipe(Command.withDescription("The event feed: the latest events of the whole log (or one task), and with --follow every new one as it commits"))

const isFinal = (e: LoggedEvent) => {
  const state = stateAfter(e.event)
  return state !== undefined && isTerminal(state)
}

const olderThan = Options.text("older-than").pipe(
  Options.withDefault("30d"),
  // 0 is allowed here (every finished task), unlike a retention period.
  Options.filterMap(
    (text) => Option.fromNullable(/^\s*0+\s*(ms|s|m|h|d)?\s*$/.test(text) ? 0 : parseDuration(text)),
    "--older-than must be a duration such as 30d, 12h or 90m"
  ),
  Options.withDescription("remove tasks whose last change is older than this (e.g. 30d, 12h, 90m; 0 for all)")
)
const states = Options.text("states").pipe(
  Options.withDefault(TerminalStates.map(stateName).join(",")),
  Options.withDescription("which final states to remove, comma-separated")
)
const batch = Options.integer("batch").pipe(Options.withDefault(500), Options.withDescription("tasks removed per transaction"))
const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("only count what would be removed"))

const parseStates = (text: string) =>
  Effect.forEach(
    text
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== ""),
    (name) => {
      const state = TerminalStates.find((t) => stateName(t) === name.toLowerCase() || t === name.toUpperCase())
      return state !== undefined
        ? Effect.succeed(state)
        : Effect.fail(
            new CommandFailed({
              message: `--states: ${name} is not a final state (one of ${TerminalStates.map(stateName).join(", ")}); unfinished tasks are never pruned`
            })
          )
    }
  )

const pruneCommand = Command.make("prune", { db, olderThan, states, batch, dryRun, json }, (o) =>
  Effect.gen(function* () {
    const chosen: ReadonlyArray<TaskState> = yield* parseStates(o.states)
    if (chosen.length === 0) return yield* new CommandFailed({ message: "--states names no state" })
    if (o.batch < 1) return yield* new CommandFailed({ message: "--batch must be 1 or more" })
    const before = new Date((yield* Clock.currentTimeMillis) - o.olderThan).toISOString()
    const removed = yield* withStore(
      o.db,
      Effect.gen(function* () {
        const pruner = yield* Pruner
        if (o.dryRun) return yield* pruner.count(before, chosen)
        let total = 0
        for (;;) {
          // Each batch is its own transaction: a running server waits at most one batch.
          const n = yield* pruner.prune(before, o.batch, chosen)
          total += n
          if (n < o.batch) return total
        }
      })
    )
    const names = chosen.map(stateName).join(", ")
    if (o.json) return yield* Console.log(JSON.stringify({ removed, dryRun: o.dryRun, before, states: chosen }))
    yield* Console.log(`${o.dryRun ? "would remove" : "removed"} ${removed} task(s) (${names}) last changed before ${before}`)
  })
).pipe(Command.withDescription("Remove whole finished tasks (events, read model, webhooks) older than a cutoff; safe while the server runs"))

export const logTools = [verifyCommand, rebuildCommand, replayCommand, tailCommand, pruneCommand] as const
