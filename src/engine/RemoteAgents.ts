import { Context, Duration, Effect, Either, FiberSet, Layer, Option, ParseResult, Schedule, Schema, Stream } from "effect"
import { DelegationFailed, type DelegationResult } from "../agent/Agent.js"
import * as A2AClient from "../client/A2AClient.js"
import { type Message, textOf } from "../domain/Message.js"
import { isInterrupted, isTerminal, type TaskState } from "../domain/TaskState.js"
import { ArtifactSchema, MessageSchema, State } from "../eventlog/StoredSchema.js"

/**
 * The A2A agents this engine's agents delegate to (`ctx.delegate`): send a message, watch a remote task
 * until it is finished or asks for input, cancel one. Over the JSON-RPC binding of A2A v1.0 (the remote's
 * card names its endpoint), with the credentials the configuration gives for the remote's host.
 *
 * Watching subscribes (SubscribeToTask) and, when the stream ends or breaks before the task is done, or the
 * remote does not stream, looks the task up (GetTask) and subscribes again, or polls. What the remote sends
 * is checked against the same schemas as stored events before anything of it is recorded.
 */
export interface DelegationCredential {
  /** The remote's host, as in its URL (`agents.example.com`, or `host:port`). */
  readonly host: string
  /** Sent as `Authorization: Bearer …`. */
  readonly bearer?: string
  /** Sent as `X-API-Key`. */
  readonly apiKey?: string
}

export interface DelegationOptions {
  readonly credentials?: ReadonlyArray<DelegationCredential>
  /** How often a remote task is looked up when it cannot be watched by a stream (default 1 s). */
  readonly pollMs?: number
}

/** What a remote agent answered a message with: its task, or a message and no task. */
export type RemoteReply =
  | { readonly _tag: "Task"; readonly taskId: string; readonly contextId: string; readonly state: TaskState }
  | { readonly _tag: "Message"; readonly result: DelegationResult }

export class RemoteAgents extends Context.Tag("a2a-ledger/RemoteAgents")<
  RemoteAgents,
  {
    readonly send: (url: string, message: Message) => Effect.Effect<RemoteReply, DelegationFailed>
    /**
     * Until the remote task is finished or asks for input: its end. `forward`, when given, is told the text
     * of each of the remote agent's messages, once, but its final one (the result's): those the task holds
     * already too, unless the watch `resumes` (after a restart: what was said before is not said again).
     */
    readonly watch: (
      url: string,
      taskId: string,
      options?: { readonly forward?: (text: string) => Effect.Effect<void>; readonly resumes?: boolean }
    ) => Effect.Effect<DelegationResult, DelegationFailed>
    /** Cancel a remote task, in the background, tried a few times (a cascade from a canceled task). */
    readonly cancelLater: (url: string, taskId: string) => Effect.Effect<void>
  }
>() {}

/** The parts of a remote Task this engine reads (more fields are ignored). */
const RemoteTask = Schema.Struct({
  id: Schema.String,
  contextId: Schema.String,
  status: Schema.Struct({ state: State, message: Schema.optional(MessageSchema) }),
  artifacts: Schema.optional(Schema.Array(ArtifactSchema)),
  history: Schema.optional(Schema.Array(Schema.Unknown))
})
type RemoteTask = typeof RemoteTask.Type

const decodeTask = Schema.decodeUnknownEither(RemoteTask)
const decodeMessage = Schema.decodeUnknownEither(MessageSchema)

const resultOf = (url: string, task: RemoteTask): DelegationResult => ({
  url,
  taskId: task.id,
  contextId: task.contextId,
  state: task.status.state,
  ...(task.status.message !== undefined ? { message: task.status.message } : {}),
  text: task.status.message !== undefined ? textOf(task.status.message) : "",
  artifacts: task.artifacts ?? []
})

/** Whether the watch is over: the task finished or asks for something. */
const settled = (state: TaskState) => isTerminal(state) || isInterrupted(state)

export const make = (options: DelegationOptions = {}) =>
  Effect.gen(function* () {
    const background = yield* FiberSet.make()
    const runBackground = yield* FiberSet.runtime(background)<never>()
    const pollMs = options.pollMs ?? 1_000
    const clients = new Map<string, A2AClient.A2AClient>()

    const credentialFor = (url: string) => {
      const parsed = URL.canParse(url) ? new URL(url) : undefined
      return options.credentials?.find((c) => parsed !== undefined && (c.host === parsed.host || c.host === parsed.hostname))
    }
    const unreachable = (url: string, taskId: string | undefined, e: A2AClient.ClientError | A2AClient.RemoteError) =>
      new DelegationFailed({
        url,
        ...(taskId !== undefined ? { taskId } : {}),
        message: e._tag === "RemoteError" ? `the remote agent answered ${e.code}: ${e.message}` : e.message
      })
    /** The remote's client, made once its card was read (a failed discovery is tried again next time). */
    const client = (url: string) =>
      Effect.suspend(() => {
        const known = clients.get(url)
        if (known !== undefined) return Effect.succeed(known)
        const credential = credentialFor(url)
        return A2AClient.make({
          url,
          ...(credential?.bearer !== undefined ? { token: credential.bearer } : {}),
          ...(credential?.apiKey !== undefined ? { apiKey: credential.apiKey } : {})
        }).pipe(
          Effect.tap((c) => Effect.sync(() => clients.set(url, c))),
          Effect.mapError((e) => unreachable(url, undefined, e))
        )
      })
    const unreadable = (url: string, what: string, error: ParseResult.ParseError) =>
      new DelegationFailed({
        url,
        message: `the remote agent answered with ${what} this server cannot read: ${ParseResult.TreeFormatter.formatErrorSync(error)}`
      })

    const send = (url: string, message: Message) =>
      Effect.gen(function* () {
        const c = yield* client(url)
        const answer: { readonly task?: unknown; readonly message?: unknown } | undefined = yield* c
          .call("SendMessage", { message, configuration: { returnImmediately: true } })
          .pipe(Effect.mapError((e) => unreachable(url, undefined, e)))
        if (answer?.task !== undefined) {
          const task = decodeTask(answer.task)
          if (Either.isLeft(task)) return yield* unreadable(url, "a task", task.left)
          return { _tag: "Task", taskId: task.right.id, contextId: task.right.contextId, state: task.right.status.state } satisfies RemoteReply
        }
        const reply = decodeMessage(answer?.message)
        if (Either.isLeft(reply)) return yield* unreadable(url, "something", reply.left)
        return {
          _tag: "Message",
          result: {
            url,
            ...(reply.right.contextId !== undefined ? { contextId: reply.right.contextId } : {}),
            state: "TASK_STATE_COMPLETED",
            message: reply.right,
            text: textOf(reply.right),
            artifacts: []
          }
        } satisfies RemoteReply
      })

    const getTask = (c: A2AClient.A2AClient, url: string, taskId: string, withHistory: boolean) =>
      c.call("GetTask", withHistory ? { id: taskId } : { id: taskId, historyLength: 0 }).pipe(
        Effect.mapError((e) => unreachable(url, taskId, e)),
        Effect.flatMap((answer) => Either.mapLeft(decodeTask(answer), (e) => unreadable(url, "a task", e)))
      )

    /** What a watch has forwarded (message ids), and how it forwards one more. */
    const forwarder = (forward: ((text: string) => Effect.Effect<void>) | undefined, resumes: boolean) => {
      const seen = new Set<string>()
      let primed = !resumes
      const said = (message: Message, final: boolean) => {
        if (message.role !== "ROLE_AGENT" || seen.has(message.messageId)) return Effect.void
        seen.add(message.messageId)
        return forward === undefined || final ? Effect.void : forward(textOf(message))
      }
      /** A snapshot of the task: the messages in its history not forwarded yet (none, the first time a resumed watch looks). */
      const snapshot = (task: RemoteTask) =>
        Effect.suspend(() => {
          const quiet = !primed
          primed = true
          const final = settled(task.status.state) ? task.status.message?.messageId : undefined
          const messages = (task.history ?? []).flatMap((m) => Either.getOrUndefined(Either.map(decodeMessage(m), (d) => [d])) ?? [])
          if (quiet)
            return Effect.sync(() => {
              for (const m of messages) seen.add(m.messageId)
            })
          return Effect.forEach(messages, (m) => said(m, m.messageId === final), { discard: true })
        })
      return { said, snapshot, wanted: forward !== undefined }
    }

    /**
     * One subscription: the task's state once it is settled (None when the stream ended or broke first).
     * A refusal (the task is already finished, or the remote does not stream) is the caller's to look up.
     */
    const subscribeOnce = (c: A2AClient.A2AClient, taskId: string, forwarding: ReturnType<typeof forwarder>) =>
      c.stream("SubscribeToTask", { id: taskId }).pipe(
        // biome-ignore lint/suspicious/noExplicitAny: a remote's stream event, checked field by field below
        Stream.mapEffect((event: any) => {
          if (event?.task !== undefined) {
            const task = Either.getOrUndefined(decodeTask(event.task))
            return task === undefined ? Effect.succeed(undefined) : Effect.as(forwarding.snapshot(task), task.status.state)
          }
          const status = event?.statusUpdate?.status
          if (status === undefined) return Effect.succeed(undefined)
          const message = status.message === undefined ? undefined : Either.getOrUndefined(decodeMessage(status.message))
          const state = Either.getOrUndefined(Schema.decodeUnknownEither(State)(status.state))
          return message === undefined ? Effect.succeed(state) : Effect.as(forwarding.said(message, state !== undefined && settled(state)), state)
        }),
        Stream.takeUntil((state) => state !== undefined && settled(state)),
        Stream.runLast,
        Effect.map((last) => Option.filter(Option.flatMap(last, Option.fromNullable), settled)),
        Effect.catchAll(() => Effect.succeed(Option.none<TaskState>()))
      )

    const watch = (
      url: string,
      taskId: string,
      options: { readonly forward?: (text: string) => Effect.Effect<void>; readonly resumes?: boolean } = {}
    ) =>
      Effect.gen(function* () {
        const c = yield* client(url)
        const forwarding = forwarder(options.forward, options.resumes === true)
        const lookUp = Effect.tap(getTask(c, url, taskId, forwarding.wanted), (task) => (forwarding.wanted ? forwarding.snapshot(task) : Effect.void))
        for (let round = 0; ; round++) {
          // Looked up first: a task finished meanwhile (or while this process was down) is answered at once.
          const now = yield* lookUp
          if (settled(now.status.state)) return resultOf(url, now)
          if (round > 0) yield* Effect.sleep(Duration.millis(pollMs))
          const ended = yield* subscribeOnce(c, taskId, forwarding)
          if (Option.isSome(ended)) {
            const done = yield* lookUp
            if (settled(done.status.state)) return resultOf(url, done)
          }
        }
      })

    const cancelLater = (url: string, taskId: string) =>
      Effect.sync(() => {
        runBackground(
          Effect.gen(function* () {
            const c = yield* client(url)
            yield* c.call("CancelTask", { id: taskId }).pipe(Effect.mapError((e) => unreachable(url, taskId, e)))
          }).pipe(
            // Already finished (TaskNotCancelable, -32002) is as good as canceled.
            Effect.catchIf(
              (e) => e.message.includes("-32002"),
              () => Effect.void
            ),
            Effect.retry({ times: 4, schedule: Schedule.spaced(Duration.seconds(1)) }),
            Effect.catchAll((e) => Effect.logWarning(`could not cancel the delegated task ${taskId} at ${url}: ${e.message}`))
          )
        )
      })

    return RemoteAgents.of({ send, watch, cancelLater })
  })

export const layer = (options?: DelegationOptions) => Layer.scoped(RemoteAgents, make(options))
