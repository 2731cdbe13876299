import { Context, Effect, Fiber, FiberMap, Layer, Option, Queue } from "effect"
import type { Command } from "../domain/Task"
import { TaskReadModel } from "../projections/TaskReadModel"
import { CurrentAgent, EngineConfig } from "./EngineConfig"
import { InstanceId } from "./InstanceId"
import { TaskWriter } from "./TaskWriter"
import { failTask, finish, runAgent } from "./turn"

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

export const make = Effect.gen(function* () {
  const config = yield* EngineConfig
  const agent = yield* CurrentAgent
  const writer = yield* TaskWriter
  const readModel = yield* TaskReadModel
  const instanceId = yield* InstanceId

  const workers = yield* FiberMap.make<string>()
  const pending = yield* Queue.unbounded<string>()
  const permits = yield* Effect.makeSemaphore(config.maxWorkers)

  const turn = (taskId: string) =>
    Effect.gen(function* () {
      const commit = (command: Command) => writer.commit(taskId, command)
      const { snapshot } = yield* writer.commit(taskId, { type: "Start", instanceId })
      yield* finish(yield* runAgent(agent, snapshot, commit), commit)
    }).pipe(
      // Interruption means cancel or shutdown, which record their own facts.
      Effect.catchAllCause((cause) => failTask(taskId, cause, (command) => writer.commit(taskId, command))),
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
