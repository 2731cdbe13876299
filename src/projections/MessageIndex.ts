import { Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { TaskSnapshot } from "../domain/Task"
import type { VersionedEvent } from "../domain/TaskEvent"
import { SqlReader } from "../eventlog/SqlReader"

/**
 * Which task took which user message: (tenant, owner, messageId) → the task
 * and the version of the event that recorded the message (TaskSubmitted or
 * InputProvided). Written by the committer in the same transaction as that
 * event, so a repeated SendMessage can be answered with the original task
 * (idempotency) and a racing duplicate loses at the primary key. Like the
 * read model it is a projection of the log: `rebuild` recreates it.
 */
export interface MessageKey {
  readonly tenant: string
  readonly owner: string
  readonly messageId: string
}

export interface AcceptedMessage {
  readonly taskId: string
  /** The version of the event that recorded the message. */
  readonly version: number
}

/** The user messages a task's log records as accepted, with their keys: what the index must hold for it. */
export const acceptedIn = (
  snapshot: Pick<TaskSnapshot, "tenant" | "owner">,
  events: ReadonlyArray<VersionedEvent>
): ReadonlyArray<{ readonly key: MessageKey; readonly accepted: AcceptedMessage }> =>
  events.flatMap((e) =>
    e.event.type === "TaskSubmitted" || e.event.type === "InputProvided"
      ? [{ key: { tenant: snapshot.tenant, owner: snapshot.owner, messageId: e.event.message.messageId }, accepted: { taskId: e.taskId, version: e.version } }]
      : []
  )

export class MessageIndex extends Context.Tag("a2a-ledger/MessageIndex")<
  MessageIndex,
  {
    /** Record the message for `taskId`; false (and nothing written) when the key is already taken. */
    readonly claim: (key: MessageKey, accepted: AcceptedMessage) => Effect.Effect<boolean, SqlError>
    readonly find: (key: MessageKey) => Effect.Effect<Option.Option<AcceptedMessage>, SqlError>
    /** Drop a task's keys (before they are rebuilt from its log). */
    readonly forget: (taskId: string) => Effect.Effect<void, SqlError>
  }
>() {}

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const reader = Option.getOrElse(yield* Effect.serviceOption(SqlReader), () => sql)

  const claim = (key: MessageKey, accepted: AcceptedMessage) =>
    sql<{ task_id: string }>`INSERT INTO a2a_message_ids (tenant, owner, message_id, task_id, version)
      VALUES (${key.tenant}, ${key.owner}, ${key.messageId}, ${accepted.taskId}, ${accepted.version})
      ON CONFLICT DO NOTHING RETURNING task_id`.pipe(Effect.map((rows) => rows.length === 1))

  const find = (key: MessageKey) =>
    reader<{ task_id: string; version: number | string }>`SELECT task_id, version FROM a2a_message_ids
      WHERE tenant = ${key.tenant} AND owner = ${key.owner} AND message_id = ${key.messageId}`.pipe(
      Effect.map((rows) =>
        Option.map(Option.fromNullable(rows[0]), (r): AcceptedMessage => ({ taskId: r.task_id, version: Number(r.version) }))
      )
    )

  const forget = (taskId: string) => sql`DELETE FROM a2a_message_ids WHERE task_id = ${taskId}`.pipe(Effect.asVoid)

  return MessageIndex.of({ claim, find, forget })
})

export const layer = Layer.effect(MessageIndex, make)
