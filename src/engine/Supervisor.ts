import { Cause, Context, Effect, Exit, Fiber, FiberMap, Layer, Option, Queue } from "effect"
import { AgentEmitError, agentMessage, type AgentContext, type TurnOutcome } from "../agent/Agent"
import type { Command } from "../domain/Task"
import { TaskReadModel } from "../projections/TaskReadModel"
import { CurrentAgent, EngineConfig } from "./EngineConfig"
import { InstanceId } from "./InstanceId"
import { CommandRefused, TaskWriter } from "./TaskWriter"

/**
 * Owns the worker fibers. Tasks that need a turn are queued FIFO; one
 * dispatcher fiber starts them while fewer than `maxWorkers` run. Workers
 * live in a FiberMap keyed by task id inside the supervisor's own scope, so
 * no HTTP request owns them and a client disconnect stops nothing.
 */
export class Supervisor extends Context.Tag("a2a-ledger/Supervisor")<
  Supervisor,
  {
    /** Queue a SUBMITTED task for a worker turn. */
    readonly enqueue: (taskId: string) => Effect.Effect<void>
    /** Interrupt the task's worker, if any, and wait until it has stopped. Call under the task's lock. */
    readonly stop: (taskId: string) => Effect.Effect<void>
  }
>() {}

export const describeCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  const error = Option.isSome(failure) ? failure.value : Option.getOrUndefined(Cause.dieOption(cause))
  if (error instanceof Error) return error.message || error.name
  if (typeof error === "string") return error
  if (error !== undefined) {
    try {
      return JSON.stringify(error)
    } catch {
      return String(error)
    }
  }
  return Cause.pretty(cause).split("\n")[0] ?? "unknown failure"
}

export const outcomeCommand = (outcome: TurnOutcome): Command => {
  switch (outcome._tag) {
    case "Completed":
      return outcome.message === undefined ? { type: "Complete" } : { type: "Complete", message: agentMessage(outcome.message) }
    case "Failed":
      return { type: "Fail", reason: outcome.reason, message: agentMessage(outcome.reason) }
    case "InputRequired":
      return { type: "RequestInput", message: agentMessage(outcome.message) }
    case "AuthRequired":
      return { type: "RequestAuth", message: agentMessage(outcome.message) }
    case "Rejected":
      return { type: "Reject", reason: outcome.reason, message: agentMessage(outcome.reason) }
  }
}

export const make = Effect.gen(function* () {
  const config = yield* EngineConfig
  const agent = yield* CurrentAgent
  const writer = yield* TaskWriter
  const readModel = yield* TaskReadModel
  const instanceId = yield* InstanceId

  const workers = yield* FiberMap.make<string>()
  const pending = yield* Queue.unbounded<string>()
  const permits = yield* Effect.makeSemaphore(config.maxWorkers)

  /** An emission from the agent; a refusal is the agent's mistake and fails the turn. */
  const emit = (taskId: string, command: Command) =>
    writer.commit(taskId, command).pipe(
      Effect.asVoid,
      Effect.catchAll((e) => Effect.fail(new AgentEmitError(e instanceof CommandRefused ? `agent emitted an illegal update: ${e.message}` : String(e))))
    )

  const turn = (taskId: string) =>
    Effect.gen(function* () {
      const { snapshot } = yield* writer.commit(taskId, { type: "Start", instanceId })
      const task = snapshot.task!
      const ctx: AgentContext = {
        taskId,
        contextId: task.contextId,
        input: snapshot.turnInput!,
        task,
        progress: (message) => emit(taskId, { type: "Progress", message: agentMessage(message) }),
        artifact: (artifact, options) =>
          emit(taskId, { type: "EmitArtifact", artifact, append: options?.append ?? false, lastChunk: options?.lastChunk ?? false })
      }
      // Under Effect.exit, an interruption raised by the agent itself comes back as a value (a
      // cancel or shutdown interrupts this whole fiber instead and never gets here): it fails the
      // task rather than leaving it WORKING.
      const exit = yield* Effect.exit(agent.run(ctx))
      if (Exit.isFailure(exit)) {
        return yield* Effect.failCause(
          Cause.isInterruptedOnly(exit.cause) ? Cause.die(new Error("the agent interrupted its own turn")) : exit.cause
        )
      }
      yield* writer.commit(taskId, outcomeCommand(exit.value))
    }).pipe(
      // Any failure of the turn, typed or defect, becomes FAILED; interruption
      // means cancel or shutdown, which record their own facts.
      Effect.catchAllCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.void
        const reason = describeCause(cause)
        return Effect.logWarning(`task ${taskId} failed: ${reason}`).pipe(
          Effect.zipRight(writer.commit(taskId, { type: "Fail", reason, message: agentMessage(reason) })),
          Effect.catchAll((e) => Effect.logWarning(`task ${taskId}: could not record failure`, e))
        )
      }),
      Effect.ensuring(permits.release(1)),
      Effect.annotateLogs({ taskId })
    )

  /** Start the task's turn if it still wants one; false when it does not (canceled meanwhile, say). */
  const startTurn = (taskId: string) =>
    Effect.gen(function* () {
      // A previous turn of this task may still be unwinding after its last commit.
      const previous = yield* FiberMap.get(workers, taskId).pipe(Effect.option)
      if (Option.isSome(previous)) yield* Fiber.await(previous.value)
      return yield* writer.withTaskLock(taskId)(
        Effect.gen(function* () {
          const current = yield* readModel.get(taskId)
          if (Option.isNone(current) || current.value.state !== "TASK_STATE_SUBMITTED") return false
          if (yield* FiberMap.has(workers, taskId)) return false
          yield* FiberMap.run(workers, taskId, turn(taskId))
          return true
        })
      )
    }).pipe(Effect.catchAllCause((cause) => Effect.logError(`task ${taskId}: could not start a turn`, cause).pipe(Effect.as(false))))

  yield* Effect.gen(function* () {
    const taskId = yield* Queue.take(pending)
    yield* permits.take(1)
    const started = yield* startTurn(taskId)
    if (!started) yield* permits.release(1)
  }).pipe(Effect.forever, Effect.forkScoped)

  return Supervisor.of({
    enqueue: (taskId) => Queue.offer(pending, taskId).pipe(Effect.asVoid),
    stop: (taskId) => FiberMap.remove(workers, taskId)
  })
})

export const layer = Layer.scoped(Supervisor, make)
