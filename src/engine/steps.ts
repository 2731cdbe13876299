import { traced } from "../observability/Tracing.js"
import { Cause, Clock, Deferred, Duration, Effect, Either, Exit, FiberId, Option, ParseResult, Schema } from "effect"
import { StepFailed, type StepOptions } from "../agent/Agent.js"
import type { JsonValue } from "../domain/Message.js"
import type { Command, TaskSnapshot } from "../domain/Task.js"
import { EventLog, type UnreadableEvent } from "../eventlog/EventLog.js"
import type { StoreFailure } from "../eventlog/StoreFailure.js"
import type { TaskEvent } from "../domain/TaskEvent.js"
import { describeCause } from "./describeCause.js"
import { CommandRefused } from "./TaskWriter.js"

/**
 * The step journal (`ctx.step`): a turn's steps are recorded as events of their task (StepCompleted, or
 * the final StepAttemptFailed), in the order the agent calls them. A turn that runs again (after a crash,
 * a lost lease, a restart) is given what its steps recorded: a step whose record exists returns it without
 * running, so its effect and its emissions are not repeated. Steps are matched by their place in the turn
 * and checked by name; failed attempts are recorded too, so a retry resumes where it was.
 */

/**
 * One recorded step: its result (JSON, absent when it returned nothing), or how it finally failed; or a
 * durable timer (`ctx.sleep`) and whether it has fired.
 */
type RecordedStep =
  | { readonly name: string; readonly _tag: "Completed"; readonly result?: JsonValue }
  | { readonly name: string; readonly _tag: "Failed"; readonly error: string; readonly attempts: number }
  | { readonly name: typeof sleepName; readonly _tag: "Timer"; readonly dueAt: string; readonly fired: boolean }

/** How a timer's place in the journal is named (mismatches name it so). */
const sleepName = "(sleep)"

/** What a turn's journal holds when the turn starts. */
export interface Journal {
  readonly steps: ReadonlyArray<RecordedStep>
  /** The next step's failed attempts, when it has some and may try again. */
  readonly pending?: { readonly sequence: number; readonly name: string; readonly attempts: number; readonly retryAt: string }
  /** The remote task the next step (a delegation) made in its latest attempt, when that step has no final record yet. */
  readonly delegation?: {
    readonly sequence: number
    readonly attempt: number
    readonly url: string
    readonly remoteTaskId: string
    readonly remoteContextId: string
  }
}

export const emptyJournal: Journal = { steps: [] }

/**
 * How a supervisor reads a turn's journal as the turn starts: from the task's log when the task has ever
 * kept one (its machine counts steps), else none without a read (every turn of an agent without steps).
 */
export const journalLoader = Effect.map(
  EventLog,
  (log) =>
    /** `snapshot` as the turn's start leaves it; `starting`: the start's own events, not committed yet. */
    (snapshot: TaskSnapshot, starting: ReadonlyArray<TaskEvent>): Effect.Effect<Journal, StoreFailure | UnreadableEvent> =>
      snapshot.machine.steps === undefined
        ? Effect.succeed(emptyJournal)
        : Effect.map(log.read(snapshot.task.id, { toVersion: snapshot.version - starting.length }), (events) =>
            journalOf([...events.map((e) => e.event), ...starting])
          )
)

/** The current turn's journal, from the task's events (a new turn, or a reset, starts an empty one). */
export const journalOf = (events: Iterable<TaskEvent>): Journal => {
  let steps: Array<RecordedStep> = []
  let pending: Journal["pending"]
  let delegation: Journal["delegation"]
  for (const event of events) {
    switch (event.type) {
      case "TaskSubmitted":
      case "InputProvided":
      case "StepsReset":
        steps = []
        pending = undefined
        delegation = undefined
        break
      case "StepCompleted":
        steps.push(
          event.result === undefined ? { name: event.name, _tag: "Completed" } : { name: event.name, _tag: "Completed", result: event.result }
        )
        pending = undefined
        delegation = undefined
        break
      case "StepAttemptFailed":
        if (event.retryAt === undefined) {
          steps.push({ name: event.name, _tag: "Failed", error: event.error, attempts: event.attempt })
          pending = undefined
          delegation = undefined
        } else pending = { sequence: event.sequence, name: event.name, attempts: event.attempt, retryAt: event.retryAt }
        break
      case "DelegationStarted": {
        const { sequence, attempt, url, remoteTaskId, remoteContextId } = event
        delegation = { sequence, attempt, url, remoteTaskId, remoteContextId }
        break
      }
      case "TimerStarted":
        steps.push({ name: sleepName, _tag: "Timer", dueAt: event.dueAt, fired: false })
        break
      case "TimerFired": {
        const timer = steps[event.sequence - 1]
        if (timer?._tag === "Timer") steps[event.sequence - 1] = { ...timer, fired: true }
        break
      }
    }
  }
  return { steps, ...(pending !== undefined ? { pending } : {}), ...(delegation !== undefined ? { delegation } : {}) }
}

/** Where a step's attempt stands (`stepWith`). */
export interface StepPlace {
  readonly sequence: number
  readonly attempt: number
  /** Until the places before this one are recorded. */
  readonly previous: Effect.Effect<void>
}

/** The agent's code changed under a running task and it asked to run the turn's steps again: the turn restarts. */
export class RestartSteps {
  readonly _tag = "RestartSteps"
  constructor(readonly reason: string) {}
}

/** Is `value` JSON that reads back as itself (no Date, Map, class instance, function, bigint, undefined or NaN inside)? */
const isJson = (value: unknown): value is JsonValue => {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true
  if (typeof value === "number") return Number.isFinite(value)
  if (Array.isArray(value)) return value.every(isJson)
  if (typeof value !== "object") return false
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  return Object.values(value).every(isJson)
}

const defaults = { attempts: 3, initialDelayMs: 500, maxDelayMs: 30_000 }

/** The wait before attempt `attempt + 1`: exponential from the initial delay, capped, drawn between half and all of it (jitter) unless asked not to. */
const backoff = (attempt: number, retry: Omit<NonNullable<StepOptions<unknown, never>["retry"]>, "retryable"> | undefined): number => {
  const initial = retry?.initialDelayMs ?? defaults.initialDelayMs
  const capped = Math.min(retry?.maxDelayMs ?? defaults.maxDelayMs, initial * 2 ** (attempt - 1))
  return retry?.jitter === false ? capped : Math.round(capped / 2 + (Math.random() * capped) / 2)
}

/**
 * The `step` and `sleep` of one run of a turn. `commit` records (the turn's own commit: fenced by its lease
 * on a shared store); a record that cannot be committed ends the turn (a defect: the store failed, the
 * lease was lost). `park` stops the turn until a timer is due (the supervisor wakes it then; it never
 * returns). A sleep of `park.fromMs` or longer parks when it is the turn's last place: no step runs beside
 * it, and none was recorded or called after it (the task is then sleeping, Task.sleepingUntil, and is
 * woken by its timer); otherwise it waits in its worker.
 */
export const stepRunner = (options: {
  readonly turn: number
  readonly journal: Journal
  readonly commit: (command: Command) => Effect.Effect<unknown, unknown>
  readonly onMismatch: "fail" | "rerun"
  readonly park?: { readonly fromMs: number; readonly until: (dueAt: number) => Effect.Effect<never> }
}) => {
  const { turn, journal, commit } = options
  let calls = 0
  // Steps of this run whose effect is running now: a sleep beside one waits in its worker (parking would stop it).
  let running = 0
  // Set once the turn parks: nothing more of it runs (the supervisor is stopping its fiber).
  let parked = false
  // When the step before the next one has its final record: records go in call order, whatever order
  // concurrent steps finish in.
  let recordedBefore: Effect.Effect<void> = Effect.void
  const record = (command: Command) => Effect.orDie(commit(command))
  /** The next place in the turn: what its record is to wait for, and what tells the next one it is recorded. */
  const nextPlace = () => {
    const previous = recordedBefore
    const done = Deferred.unsafeMake<void>(FiberId.none)
    recordedBefore = Deferred.await(done)
    return { previous, recorded: Deferred.succeed(done, undefined) }
  }

  const step = <A, E, R, I = unknown>(
    name: string,
    effect: Effect.Effect<A, E, R>,
    stepOptions?: StepOptions<A, E, I>
  ): Effect.Effect<A, StepFailed, R> => stepWith(name, () => effect, stepOptions)

  /**
   * A step whose effect is made per attempt, knowing its place (`sequence`), its attempt (from 1), and
   * `previous`: until the places before it are recorded (a record of its own within the step waits for it).
   */
  const stepWith = <A, E, R, I = unknown>(
    name: string,
    effect: (place: StepPlace) => Effect.Effect<A, E, R>,
    stepOptions?: StepOptions<A, E, I>
  ): Effect.Effect<A, StepFailed, R> =>
    Effect.suspend((): Effect.Effect<A, StepFailed, R> => {
      if (parked) return Effect.never
      const sequence = ++calls
      const recorded = journal.steps[sequence - 1]
      if (recorded !== undefined) return replay(sequence, name, recorded, stepOptions)
      const place = nextPlace()
      running++
      return Effect.ensuring(
        run(sequence, name, effect, stepOptions, place.previous),
        Effect.zipRight(
          Effect.sync(() => running--),
          place.recorded
        )
      ).pipe(
        // A step run (not one replayed from the journal) is a span of the turn's, all its attempts in it.
        traced(`step ${name}`, () => ({
          attributes: { "a2a_ledger.step.name": name, "a2a_ledger.step.sequence": sequence, "a2a_ledger.turn": turn }
        }))
      )
    })

  /**
   * A durable timer: recorded with its due time before the wait, so a turn that runs again waits only for
   * what is left; once it has fired, the turn's next run passes it at once.
   */
  const sleep = (duration: Duration.DurationInput): Effect.Effect<void> =>
    Effect.suspend((): Effect.Effect<void> => {
      if (parked) return Effect.never
      const sequence = ++calls
      const recorded = journal.steps[sequence - 1]
      if (recorded !== undefined) {
        if (recorded._tag !== "Timer") return mismatch(sequence, sleepName, recorded)
        return recorded.fired ? Effect.void : wait(sequence, Date.parse(recorded.dueAt))
      }
      const place = nextPlace()
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const dueAt = now + Duration.toMillis(Duration.decode(duration))
        return Effect.zipRight(
          Effect.ensuring(
            Effect.zipRight(place.previous, record({ type: "StartTimer", turn, sequence, dueAt: new Date(dueAt).toISOString() })),
            place.recorded
          ),
          wait(sequence, dueAt)
        )
      })
    })

  /** Until the timer at `sequence` is due: parked when long enough and nothing else runs, else in this worker; then fired. */
  const wait = (sequence: number, dueAt: number): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const left = dueAt - now
      const last = calls === sequence && sequence >= journal.steps.length && running === 0
      if (options.park !== undefined && left >= options.park.fromMs && last && !parked) {
        parked = true
        return options.park.until(dueAt)
      }
      // A timer may fire a moment early by the wall clock: look again, so a timer never fires before it is due.
      if (left > 0) return Effect.zipRight(Effect.sleep(Duration.millis(left)), wait(sequence, dueAt))
      // Refused when it is no longer the turn's pending timer (a later sleep replaced it): nothing to fire.
      // Any other failure ends the turn, as a record's does.
      return Effect.orDie(
        Effect.catchIf(
          commit({ type: "FireTimer", sequence }),
          (e) => e instanceof CommandRefused,
          () => Effect.void
        )
      )
    })

  const mismatch = (sequence: number, name: string, recorded: RecordedStep): Effect.Effect<never> => {
    const reason = `step ${sequence} of turn ${turn} was recorded as "${recorded.name}", and the agent now runs "${name}" there: its code changed under a running task`
    return options.onMismatch === "rerun"
      ? Effect.die(new RestartSteps(reason))
      : Effect.die(new Error(`${reason} (an agent with onStepMismatch: "rerun" runs the turn's steps again instead)`))
  }

  return { step, stepWith, sleep }

  function replay<A, E, I>(sequence: number, name: string, recorded: RecordedStep, stepOptions?: StepOptions<A, E, I>): Effect.Effect<A, StepFailed> {
    if (recorded.name !== name || recorded._tag === "Timer") return mismatch(sequence, name, recorded)
    if (recorded._tag === "Failed") {
      return Effect.fail(new StepFailed({ name, sequence, attempts: recorded.attempts, message: recorded.error }))
    }
    return decodeResult(name, recorded.result, stepOptions?.schema)
  }

  function run<A, E, R, I>(
    sequence: number,
    name: string,
    effect: (place: StepPlace) => Effect.Effect<A, E, R>,
    stepOptions: StepOptions<A, E, I> | undefined,
    previous: Effect.Effect<void>
  ): Effect.Effect<A, StepFailed, R> {
    const retry = stepOptions?.retry
    const maxAttempts = Math.max(1, retry?.attempts ?? defaults.attempts)
    const resumed = journal.pending?.sequence === sequence && journal.pending.name === name ? journal.pending : undefined
    return Effect.gen(function* () {
      let attempt = resumed?.attempts ?? 0
      // A retry that was waiting when the turn stopped waits only for what is left.
      if (resumed !== undefined) yield* Effect.sleep(Duration.millis(Math.max(0, Date.parse(resumed.retryAt) - (yield* Clock.currentTimeMillis))))
      for (;;) {
        attempt++
        const exit = yield* Effect.exit(effect({ sequence, attempt, previous }))
        if (Exit.isSuccess(exit)) {
          const result = encodeResult(name, exit.value, stepOptions?.schema)
          yield* previous
          yield* record(result === undefined ? { type: "RecordStep", turn, sequence, name } : { type: "RecordStep", turn, sequence, name, result })
          return exit.value
        }
        // Interruption (a cancel, a shutdown) and defects (a bug) are not the step's failure to retry.
        const failure = Cause.failureOption(exit.cause)
        if (Option.isNone(failure)) return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
        const error = failure.value
        const message = describeCause(Cause.fail(error))
        const final = attempt >= maxAttempts || retry?.retryable?.(error) === false
        const delay = final ? 0 : backoff(attempt, retry)
        const now = yield* Clock.currentTimeMillis
        yield* previous
        yield* record(
          final
            ? { type: "RecordStepAttempt", turn, sequence, name, attempt, error: message }
            : { type: "RecordStepAttempt", turn, sequence, name, attempt, error: message, retryAt: new Date(now + delay).toISOString() }
        )
        if (final) return yield* Effect.fail(new StepFailed({ name, sequence, attempts: attempt, message, cause: error }))
        yield* Effect.logInfo(`step "${name}" failed (attempt ${attempt} of ${maxAttempts}): ${message}; trying again in ${delay} ms`)
        yield* Effect.sleep(Duration.millis(delay))
      }
    })
  }
}

/** A result as the journal keeps it: through the step's schema, or as it is when it is JSON; a clear defect otherwise. */
const encodeResult = <A, I>(name: string, value: A, schema: Schema.Schema<A, I> | undefined): JsonValue | undefined => {
  if (schema !== undefined) {
    const encoded = Schema.encodeEither(schema)(value)
    if (Either.isLeft(encoded)) {
      throw new Error(`step "${name}": its result does not encode with its schema: ${ParseResult.TreeFormatter.formatErrorSync(encoded.left)}`)
    }
    if (!isJson(encoded.right)) throw new Error(`step "${name}": its schema encodes the result as something that is not JSON`)
    return encoded.right
  }
  if (value === undefined) return undefined
  if (!isJson(value)) {
    throw new Error(
      `step "${name}" returned a value that is not JSON (a Date, Map, class instance, function, bigint, undefined or NaN inside): give the step a schema to encode it`
    )
  }
  return value
}

/** A recorded result, as the step returns it: decoded by its schema, or the JSON itself (the step's own type says what it holds). */
const decodeResult = <A, I>(name: string, recorded: JsonValue | undefined, schema: Schema.Schema<A, I> | undefined): Effect.Effect<A> => {
  if (schema === undefined) return Effect.succeed(recorded as A)
  const decoded = Schema.decodeUnknownEither(schema)(recorded)
  return Either.isRight(decoded)
    ? Effect.succeed(decoded.right)
    : Effect.die(
        new Error(`step "${name}": its recorded result no longer decodes with its schema: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
      )
}
