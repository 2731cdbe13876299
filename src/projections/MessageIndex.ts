import { Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "@effect/sql"
import { type StoreFailure, storeService } from "../eventlog/StoreFailure.js"
import type { TaskSnapshot } from "../domain/Task.js"
import type { VersionedEvent } from "../domain/TaskEvent.js"
import { SqlReader } from "../eventlog/SqlReader.js"

/**
 * Which task took which user message: (tenant, owner, messageId) → the task
 * and the version of the event that recorded the message (TaskSubmitted or
 * InputProvided). Written by the committer in the same transaction as that
 * event, so a repeated SendMessage can be answered with the original task
 * (idempotency) and a racing duplicate loses at the primary key. Like the
 * read model it is a projection of the log: `rebuild` recreates it.
 *
 * A key lasts for the idempotency window (EngineConfig): one accepted before
 * it (`accepted_at`, ms) no longer answers for its task, a new message under
 * its id takes it over, and the expiry loop (KeyExpiry.ts) deletes it.
 */
/** The idempotency window unless configured (EngineConfig): a day. */
export const defaultWindowMs = 86_400_000

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

/** A message's key with the task that took it, and when (ms): a row of the index. */
export interface KeyClaim {
  readonly key: MessageKey
  readonly accepted: AcceptedMessage
  readonly at: number
}

/**
 * The user messages a task's log records as accepted, with their keys: what the index must hold for it.
 * With `since` (ms), only those accepted since then: older keys have expired.
 */
export const acceptedIn = (
  snapshot: Pick<TaskSnapshot, "tenant" | "owner">,
  events: ReadonlyArray<VersionedEvent>,
  since?: number
): ReadonlyArray<KeyClaim> =>
  events.flatMap((e) => {
    if (e.event.type !== "TaskSubmitted" && e.event.type !== "InputProvided") return []
    const at = Date.parse(e.event.at)
    if (since !== undefined && at < since) return []
    return [
      {
        key: { tenant: snapshot.tenant, owner: snapshot.owner, messageId: e.event.message.messageId },
        accepted: { taskId: e.taskId, version: e.version },
        at
      }
    ]
  })

/** A key as one string (a map key). */
export const keyText = (key: MessageKey) => `${key.tenant}\u0000${key.owner}\u0000${key.messageId}`

export class MessageIndex extends Context.Tag("a2a-ledger/MessageIndex")<
  MessageIndex,
  {
    /**
     * Record the message for `taskId`, accepted at `at` (ms); false (and nothing written) when the key is
     * already taken by a message accepted at or after `expiresBefore` (by default, by any).
     */
    readonly claim: (claim: KeyClaim, expiresBefore?: number) => Effect.Effect<boolean, StoreFailure>
    /** The task that holds the key, if its message was accepted at or after `since` (by default, ever). */
    readonly find: (key: MessageKey, since?: number) => Effect.Effect<Option.Option<AcceptedMessage>, StoreFailure>
    /** The keys held by tasks with `afterTaskId < id <= lastTaskId` (a page of a scan), by `keyText`. */
    readonly heldBetween: (afterTaskId: string, lastTaskId: string) => Effect.Effect<ReadonlyMap<string, AcceptedMessage>, StoreFailure>
    /** Record many messages in one statement; a key already taken stays with its task (a page of a rebuild). */
    readonly claimAll: (claims: ReadonlyArray<KeyClaim>) => Effect.Effect<void, StoreFailure>
    /** Drop these tasks' keys (before a rebuild writes them again). */
    readonly forgetAll: (taskIds: ReadonlyArray<string>) => Effect.Effect<void, StoreFailure>
    /** Drop a task's keys (before they are rebuilt from its log). */
    readonly forget: (taskId: string) => Effect.Effect<void, StoreFailure>
    /** Delete up to `limit` keys accepted before `before` (ms), oldest first; the number deleted. */
    readonly expire: (before: number, limit: number) => Effect.Effect<number, StoreFailure>
  }
>() {}

export const make = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const reader = Option.getOrElse(yield* Effect.serviceOption(SqlReader), () => sql)

  const claim = ({ key, accepted, at }: KeyClaim, expiresBefore = 0) =>
    sql<{ task_id: string }>`INSERT INTO a2a_message_ids AS k (tenant, owner, message_id, task_id, version, accepted_at)
      VALUES (${key.tenant}, ${key.owner}, ${key.messageId}, ${accepted.taskId}, ${accepted.version}, ${at})
      ON CONFLICT (tenant, owner, message_id) DO UPDATE SET task_id = excluded.task_id, version = excluded.version,
        accepted_at = excluded.accepted_at WHERE k.accepted_at < ${expiresBefore}
      RETURNING task_id`.pipe(Effect.map((rows) => rows.length === 1))

  const find = (key: MessageKey, since = 0) =>
    reader<{ task_id: string; version: number | string }>`SELECT task_id, version FROM a2a_message_ids
      WHERE tenant = ${key.tenant} AND owner = ${key.owner} AND message_id = ${key.messageId} AND accepted_at >= ${since}`.pipe(
      Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), (r): AcceptedMessage => ({ taskId: r.task_id, version: Number(r.version) })))
    )

  const heldBetween = (afterTaskId: string, lastTaskId: string) =>
    reader<{ tenant: string; owner: string; message_id: string; task_id: string; version: number | string }>`SELECT tenant, owner,
      message_id, task_id, version FROM a2a_message_ids WHERE task_id > ${afterTaskId} AND task_id <= ${lastTaskId}`.pipe(
      Effect.map(
        (rows) =>
          new Map(
            rows.map((r) => [
              keyText({ tenant: r.tenant, owner: r.owner, messageId: r.message_id }),
              { taskId: r.task_id, version: Number(r.version) }
            ])
          )
      )
    )
  const claimAll = (claims: ReadonlyArray<KeyClaim>) =>
    claims.length === 0
      ? Effect.void
      : sql`INSERT INTO a2a_message_ids ${sql.insert(
          claims.map(({ key, accepted, at }) => ({
            tenant: key.tenant,
            owner: key.owner,
            message_id: key.messageId,
            task_id: accepted.taskId,
            version: accepted.version,
            accepted_at: at
          }))
        )} ON CONFLICT DO NOTHING`.pipe(Effect.asVoid)
  const forgetAll = (taskIds: ReadonlyArray<string>) =>
    taskIds.length === 0 ? Effect.void : sql`DELETE FROM a2a_message_ids WHERE ${sql.in("task_id", taskIds)}`.pipe(Effect.asVoid)
  const forget = (taskId: string) => sql`DELETE FROM a2a_message_ids WHERE task_id = ${taskId}`.pipe(Effect.asVoid)

  const expire = (before: number, limit: number) =>
    sql<{ task_id: string }>`DELETE FROM a2a_message_ids WHERE (tenant, owner, message_id) IN (
      SELECT tenant, owner, message_id FROM a2a_message_ids WHERE accepted_at < ${before} ORDER BY accepted_at LIMIT ${limit}
    ) RETURNING task_id`.pipe(Effect.map((rows) => rows.length))

  return MessageIndex.of(storeService({ claim, find, forget, heldBetween, claimAll, forgetAll, expire }))
})

export const layer = Layer.effect(MessageIndex, make)
