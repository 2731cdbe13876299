import { Effect, Schema } from "effect"
import { DelegationFailed, type DelegateOptions, type DelegationResult, type StepFailed } from "../agent/Agent.js"
import type { Message, Part } from "../domain/Message.js"
import type { Command } from "../domain/Task.js"
import { isTerminal } from "../domain/TaskState.js"
import { ArtifactSchema, MessageSchema, State } from "../eventlog/StoredSchema.js"
import type { RemoteAgents } from "./RemoteAgents.js"
import type { Journal, StepPlace, stepRunner } from "./steps.js"

/**
 * `ctx.delegate`: a step of its own whose attempt sends the message to a remote A2A agent and watches the
 * task it made until it is finished or asks for input. The remote task is recorded (`DelegationStarted`,
 * within the step) as soon as it exists, so a run of the turn that finds it in the journal watches that
 * task again instead of sending the message again. The message's id is made from this task, its turn, the
 * step's place and the attempt, so a remote that deduplicates messageIds (a2a-ledger does) makes no second
 * task even if the process dies between the send and its record.
 */

/** The result as the journal keeps it (JSON), read back as the agent was given it. */
const DelegationResultSchema = Schema.Struct({
  url: Schema.String,
  taskId: Schema.optional(Schema.String),
  contextId: Schema.optional(Schema.String),
  state: State,
  message: Schema.optional(MessageSchema),
  text: Schema.String,
  artifacts: Schema.Array(ArtifactSchema)
})

const failedStates = new Set(["TASK_STATE_FAILED", "TASK_STATE_REJECTED", "TASK_STATE_CANCELED"])

export const delegator =
  (options: {
    readonly taskId: string
    readonly turn: number
    readonly journal: Journal
    readonly remote: typeof RemoteAgents.Service
    readonly record: (command: Command) => Effect.Effect<void>
    readonly progress: (text: string) => Effect.Effect<void>
    readonly stepWith: ReturnType<typeof stepRunner>["stepWith"]
  }) =>
  (url: string, message: string | ReadonlyArray<Part>, delegateOptions?: DelegateOptions): Effect.Effect<DelegationResult, StepFailed> => {
    const { taskId, turn, journal, remote } = options
    const parts: ReadonlyArray<Part> = typeof message === "string" ? [{ text: message }] : message
    const attempt = (place: StepPlace): Effect.Effect<DelegationResult, DelegationFailed> =>
      Effect.gen(function* () {
        const started = journal.delegation
        let remoteTaskId: string
        const resumes = started !== undefined && started.sequence === place.sequence && started.attempt === place.attempt && started.url === url
        if (resumes) {
          // Made before this run of the turn: watched again, not sent again.
          remoteTaskId = started.remoteTaskId
        } else {
          const sent: Message = {
            messageId: `${taskId}-t${turn}-s${place.sequence}-a${place.attempt}`,
            role: "ROLE_USER",
            parts,
            ...(delegateOptions?.contextId !== undefined ? { contextId: delegateOptions.contextId } : {})
          }
          const reply = yield* remote.send(url, sent)
          if (reply._tag === "Message") return reply.result
          yield* place.previous
          yield* options.record({
            type: "RecordDelegation",
            turn,
            sequence: place.sequence,
            attempt: place.attempt,
            url,
            remoteTaskId: reply.taskId,
            remoteContextId: reply.contextId
          })
          remoteTaskId = reply.taskId
        }
        const result = yield* remote.watch(url, remoteTaskId, {
          resumes,
          ...(delegateOptions?.forwardProgress === true ? { forward: options.progress } : {})
        })
        if (isTerminal(result.state) && failedStates.has(result.state)) {
          return yield* new DelegationFailed({
            url,
            taskId: remoteTaskId,
            state: result.state,
            message: `the delegated task ${remoteTaskId} ended ${result.state.replace("TASK_STATE_", "")}${result.text !== "" ? `: ${result.text}` : ""}`
          })
        }
        return result
      })
    return options.stepWith(delegateOptions?.name ?? `delegate to ${url}`, attempt, {
      schema: DelegationResultSchema as Schema.Schema<DelegationResult, unknown>,
      ...(delegateOptions?.retry !== undefined ? { retry: delegateOptions.retry } : {})
    })
  }
