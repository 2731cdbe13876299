import { Clock, Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "@effect/sql"
import { type Command, decide, fold, initialState, type Refusal, type TaskSnapshot } from "../domain/Task"
import type { VersionedEvent } from "../domain/TaskEvent"
import { EventLog } from "../eventlog/EventLog"
import { TaskReadModel } from "../projections/TaskReadModel"
import { StoreFailure, TaskNotFound } from "./errors"
import { EventHub } from "./EventHub"
import { InstanceId } from "./InstanceId"
import * as KeyedLock from "./KeyedLock"

/** The machine refused the command; nothing was written. */
export class CommandRefused extends Error {
  readonly _tag = "CommandRefused"
  constructor(readonly taskId: string, readonly refusal: Refusal) {
    super(refusal._tag === "TaskIsTerminal" ? `task ${taskId} is already ${refusal.state}` : refusal.detail)
  }
}

export interface CommitResult {
  readonly snapshot: TaskSnapshot
  readonly events: ReadonlyArray<VersionedEvent>
}

/**
 * The one writer per task. A commit loads the task's state, lets the decider
 * judge the command, appends the new facts at the expected version and saves
 * the folded read-model row in one transaction, then publishes to the hub.
 * Commit + publish is uninterruptible: a cancelled caller never leaves a
 * fact committed but unannounced.
 */
export class TaskWriter extends Context.Tag("a2a-ledger/TaskWriter")<
  TaskWriter,
  {
    readonly commit: (taskId: string, command: Command) => Effect.Effect<CommitResult, TaskNotFound | CommandRefused | StoreFailure>
    /** Run `effect` holding the task's lock; `commitHeld` may be used inside it. */
    readonly withTaskLock: (taskId: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
    readonly commitHeld: (taskId: string, command: Command) => Effect.Effect<CommitResult, TaskNotFound | CommandRefused | StoreFailure>
  }
>() {}

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const log = yield* EventLog
  const readModel = yield* TaskReadModel
  const hub = yield* EventHub
  const instanceId = yield* InstanceId
  const lock = yield* KeyedLock.make

  const commitHeld = (taskId: string, command: Command) =>
    Effect.uninterruptible(
      Effect.gen(function* () {
        const at = new Date(yield* Clock.currentTimeMillis).toISOString()
        const result = yield* sql.withTransaction(
          Effect.gen(function* () {
            const current = Option.getOrElse(yield* readModel.load(taskId), () => initialState)
            if (current.version === 0 && command.type !== "Submit") return yield* new TaskNotFound({ taskId })
            const decision = decide(current, command, at)
            if (!decision.ok) return yield* Effect.fail(new CommandRefused(taskId, decision.refusal))
            const events = yield* log.append(taskId, current.version, decision.events, { instanceId })
            const snapshot = fold(decision.events, current)
            yield* readModel.save(snapshot)
            return { snapshot, events }
          })
        ).pipe(
          Effect.catchTags({
            SqlError: (cause) => Effect.fail(new StoreFailure({ cause })),
            VersionConflict: (cause) => Effect.fail(new StoreFailure({ cause }))
          })
        )
        const contextId = result.snapshot.task!.contextId
        yield* hub.publish(result.events.map((e) => ({ ...e, contextId })))
        return result
      })
    )

  return TaskWriter.of({
    commitHeld,
    withTaskLock: lock.withLock,
    commit: (taskId, command) => lock.withLock(taskId)(commitHeld(taskId, command))
  })
})

export const layer = Layer.effect(TaskWriter, make)
