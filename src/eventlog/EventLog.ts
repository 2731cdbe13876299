import { Context, Data, type Effect, type Either } from "effect"
import type { StoreFailure } from "./StoreFailure.js"
import type { TaskEvent, VersionedEvent } from "../domain/TaskEvent.js"

/** Another writer appended to this task first: re-read and decide again. */
export class VersionConflict extends Data.TaggedError("VersionConflict")<{
  readonly taskId: string
  readonly expectedVersion: number
  readonly actualVersion: number
}> {}

/** A stored row could not be read back as a known event (corrupt or from a newer schema). */
export class UnreadableEvent extends Data.TaggedError("UnreadableEvent")<{
  readonly taskId: string
  readonly version: number
  readonly type: string
  readonly schemaVersion: number
  readonly reason: string
}> {}

export interface EventMetadata {
  readonly instanceId: string
}

/** A row of the global log, in commit order. */
export interface LoggedEvent extends VersionedEvent {
  readonly position: number
  readonly schemaVersion: number
  readonly metadata: EventMetadata
  readonly createdAt: string
}

export type LogError = StoreFailure | UnreadableEvent

/**
 * Where a tail of the whole log stands. On PostgreSQL positions come from a
 * sequence and can commit out of order, so the cursor also carries the
 * writing transaction's id (`tx`); on SQLite (one writer) the position alone
 * is enough and `tx` stays "0".
 */
export interface TailCursor {
  readonly tx: string
  readonly position: number
}

export const tailStart: TailCursor = { tx: "0", position: 0 }

/**
 * The append-only log of task facts. Versions per task are gap-free
 * (1, 2, 3 …) and `UNIQUE(task_id, version)` in the database is the last
 * line of defence against two writers.
 */
export class EventLog extends Context.Tag("a2a-ledger/EventLog")<
  EventLog,
  {
    /** Append after `expectedVersion` (0 for a new task). Join a surrounding transaction if there is one. */
    readonly append: (
      taskId: string,
      expectedVersion: number,
      events: ReadonlyArray<TaskEvent>,
      metadata: EventMetadata
    ) => Effect.Effect<ReadonlyArray<VersionedEvent>, VersionConflict | StoreFailure>
    /** A task's events with `fromVersion <= version <= toVersion`, in order. */
    readonly read: (
      taskId: string,
      options?: { readonly fromVersion?: number; readonly toVersion?: number }
    ) => Effect.Effect<ReadonlyArray<LoggedEvent>, LogError>
    /**
     * The global log after `afterPosition`, at most `limit` rows, in position order. For scans of a
     * log nobody writes to (tools, checks); to follow a live log, use `tail`.
     */
    readonly readAll: (afterPosition: number, limit: number) => Effect.Effect<ReadonlyArray<LoggedEvent>, LogError>
    /**
     * The next committed events after `cursor`, at most `limit`, and the cursor to continue from.
     * Never skips an event that commits late: on PostgreSQL only transactions older than every
     * running one are returned (`pg_snapshot_xmin`), in (transaction, position) order.
     */
    readonly tail: (
      cursor: TailCursor,
      limit: number
    ) => Effect.Effect<{ readonly events: ReadonlyArray<LoggedEvent>; readonly cursor: TailCursor }, LogError>
    /**
     * The events of every task with `afterTaskId < id <= lastTaskId`, by task, each in version order:
     * a page of a scan in one query (the events alone: no position, metadata or commit time). A task
     * with an event that cannot be read has that error instead.
     */
    readonly readTasks: (
      afterTaskId: string,
      lastTaskId: string
    ) => Effect.Effect<ReadonlyMap<string, Either.Either<ReadonlyArray<VersionedEvent>, UnreadableEvent>>, StoreFailure>
    /** The ids of tasks with events, after `afterTaskId` in id order, at most `limit`: a scan of the log task by task. */
    readonly taskIds: (afterTaskId: string, limit: number) => Effect.Effect<ReadonlyArray<string>, StoreFailure>
    /**
     * The cursor from which `tail` returns the last `count` committed events (and then whatever
     * commits next): where a live feed that shows some history starts.
     */
    readonly tailFromLast: (count: number) => Effect.Effect<TailCursor, StoreFailure>
    /** The task's current version (0 when it has no events). */
    readonly version: (taskId: string) => Effect.Effect<number, StoreFailure>
  }
>() {}
