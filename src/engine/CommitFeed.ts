import { Context, Duration, Effect, Exit, Layer, Option, Schedule, Stream } from "effect"
import { type StoreFailure, storeService } from "../eventlog/StoreFailure.js"
import { StoreKind } from "../eventlog/StoreKind.js"
import { EventLog } from "../eventlog/EventLog.js"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { EventHub } from "./EventHub.js"
import { Answer } from "./Answer.js"

/**
 * Commits made by other processes on a shared PostgreSQL store, fed into this
 * process's EventHub so its streams and blocking sends see them.
 *
 * The committer announces each task's new version with `pg_notify` inside its
 * transaction, so the notice goes out exactly when the commit does. Every
 * process LISTENs, and for tasks it has streams on, reads the event at that
 * version from the log and publishes it; streams fill any gap by version from
 * the log themselves. NOTIFY only wakes: a notice that is lost (a dropped
 * listening connection) costs latency, never an event, because the watched
 * tasks are also checked against the log every `pollMs`.
 *
 * On SQLite (one process per file) there is nothing to announce.
 */
export class CommitFeed extends Context.Tag("a2a-ledger/CommitFeed")<
  CommitFeed,
  {
    /** Inside the commit's transaction: this task now stands at `version`. */
    /** Announce a batch's new versions to every process (PostgreSQL: one `pg_notify` statement, in the batch's transaction). */
    readonly announce: (commits: ReadonlyArray<Announced>) => Effect.Effect<void, StoreFailure>
    /**
     * These versions were committed and published here by this process's writer: their notices, when they
     * come back, need no read of the log.
     */
    readonly published: (commits: ReadonlyArray<Announced>) => void
    /**
     * A batch for these tasks is on its way to the store from this process: a notice for one of them
     * waits until `landed` is called (after `published`, or after the batch failed), so the notice of
     * our own commit, which can arrive before the batch's answer does, is not read from the log.
     */
    readonly landing: (taskIds: ReadonlyArray<string>) => { readonly landed: () => void }
  }
>() {}

const defaultPollMs = 2_000

const nothingLanding = { landed: () => {} }
const landingWait = Duration.seconds(2)

/** A task's new version, as a batch committed it. */
export interface Announced {
  readonly taskId: string
  readonly contextId: string
  readonly version: number
}

/** A notice that only says the channel works (task ids never start with "~"). */
const ping = "~ping"
const pingInterval = Duration.seconds(1)
const silenceLimit = Duration.seconds(3)

export const make = (pollMs = defaultPollMs) =>
  Effect.gen(function* () {
    const kind = yield* StoreKind
    if (kind._tag !== "postgres") return CommitFeed.of({ announce: () => Effect.void, published: () => {}, landing: () => nothingLanding })
    const sql = kind.client
    const hub = yield* EventHub
    const log = yield* EventLog
    const readModel = yield* TaskReadModel
    const [row] = yield* sql<{ schema: string }>`SELECT current_schema() AS schema`
    // One channel per store: schemas of one database do not hear each other.
    const channel = `a2a_events:${row?.schema ?? "public"}`.slice(0, 63)
    // The newest version published here per watched task (ours or another process's).
    const seen = new Map<string, number>()

    const publishAt = (taskId: string, contextId: string | undefined, version: number) =>
      Effect.gen(function* () {
        if ((seen.get(taskId) ?? 0) >= version) return
        const [e] = yield* log.read(taskId, { fromVersion: version, toVersion: version })
        if (e === undefined) return
        seen.set(taskId, Math.max(seen.get(taskId) ?? 0, version))
        const ctx = contextId ?? Option.getOrUndefined(yield* readModel.get(taskId))?.task?.contextId ?? ""
        yield* hub.publish([{ taskId, contextId: ctx, version, event: e.event }])
      })

    // Tasks with a batch of ours in flight: how many, and a latch opened when the last has landed.
    const inFlight = new Map<string, { count: number; readonly latch: Answer<void, never> }>()
    const landing = (taskIds: ReadonlyArray<string>) => {
      for (const taskId of taskIds) {
        const flight = inFlight.get(taskId)
        if (flight !== undefined) flight.count++
        else inFlight.set(taskId, { count: 1, latch: new Answer() })
      }
      let done = false
      return {
        landed: () => {
          if (done) return
          done = true
          for (const taskId of taskIds) {
            const flight = inFlight.get(taskId)
            if (flight === undefined || --flight.count > 0) continue
            inFlight.delete(taskId)
            flight.latch.complete(Exit.void)
          }
        }
      }
    }

    const onNotice = (payload: string) =>
      Effect.gen(function* () {
        // "<taskId> <version> <contextId>": the context id comes last, as it may hold spaces.
        const [taskId, version, ...context] = payload.split(" ")
        if (taskId === undefined || version === undefined) return
        const contextId = context.join(" ")
        // Every commit of the cluster, for the board's live list (nothing is read for it).
        if (taskId !== ping) hub.noticed(taskId, Number(version))
        if (!(yield* hub.watched).includes(taskId)) return
        // Our own batch may be the one announced: once it has landed, its versions are seen, and skipped.
        // (Bounded: a batch that never lands must not hold the channel.)
        const flight = inFlight.get(taskId)
        if (flight !== undefined) yield* Effect.ignore(Effect.timeout(flight.latch.await, landingWait))
        yield* publishAt(taskId, contextId, Number(version))
      })

    const poll = Effect.gen(function* () {
      const watched = yield* hub.watched
      for (const id of seen.keys()) if (!watched.includes(id)) seen.delete(id)
      for (const taskId of watched) {
        const version = yield* log.version(taskId)
        if (version > (seen.get(taskId) ?? 0)) yield* publishAt(taskId, undefined, version)
      }
    })

    // The listening connection can die without a word (a terminated backend, a restart): the driver
    // keeps the dead client and the stream simply goes quiet. So every process pings the channel each
    // second, and a listener that has heard nothing, not even its own ping, for a few seconds is
    // replaced by a new one on a new connection.
    let lastHeard = 0
    const listen = sql.listen(channel).pipe(
      Stream.runForEach((payload) => {
        lastHeard = Date.now()
        if (payload === ping) return Effect.void
        return onNotice(payload).pipe(Effect.catchAllCause((c) => Effect.logWarning("commit notice not handled", c)))
      })
    )
    const watchdog = Effect.gen(function* () {
      for (;;) {
        yield* Effect.sleep(pingInterval)
        yield* Effect.ignore(sql`SELECT pg_notify(${channel}, ${ping})`)
        if (Date.now() - lastHeard > Duration.toMillis(silenceLimit)) {
          return yield* Effect.fail(`no commit notice for ${Duration.format(silenceLimit)}: the listening connection is gone`)
        }
      }
    })
    yield* Effect.sync(() => (lastHeard = Date.now())).pipe(
      Effect.zipRight(Effect.raceFirst(listen, watchdog)),
      Effect.catchAllCause((cause) => Effect.logWarning("listening for commits failed; listening again", cause)),
      Effect.repeat(Schedule.spaced(Duration.seconds(1))),
      Effect.forkScoped
    )
    yield* poll.pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("checking watched tasks failed", cause)),
      Effect.repeat(Schedule.spaced(Duration.millis(pollMs))),
      Effect.forkScoped
    )

    return CommitFeed.of(
      storeService({
        announce: (commits: ReadonlyArray<Announced>) =>
          commits.length === 0
            ? Effect.void
            : Effect.asVoid(
                sql`SELECT pg_notify(${channel}, n) FROM unnest(${commits.map((c: Announced) => `${c.taskId} ${c.version} ${c.contextId}`)}::text[]) AS n`
              ),
        // Only after the commit (not at announce): a batch that rolls back publishes nothing, and another
        // process may then commit that version, whose notice must not be skipped.
        published: (commits: ReadonlyArray<Announced>) => {
          for (const c of commits) if ((seen.get(c.taskId) ?? 0) < c.version) seen.set(c.taskId, c.version)
        },
        landing
      })
    )
  })

export const layer = (pollMs?: number) => Layer.scoped(CommitFeed, make(pollMs))
