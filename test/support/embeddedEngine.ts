import { Effect, Exit, Layer, Logger, LogLevel, Scope, Stream, type Tracer } from "effect"
import * as path from "node:path"
import type { Agent } from "../../src/agent/Agent"
import type { Message } from "../../src/domain/Message"
import type { TaskState } from "../../src/domain/TaskState"
import { EventLog } from "../../src/eventlog/EventLog"
import { anonymous, type Caller, type SendOutcome, TaskEngine } from "../../src/engine/TaskEngine"
import * as Embedded from "../../src/layers/Embedded"
import { tempDir } from "./server"

/**
 * The embedded engine in this process, on `db` (a SQLite file in a fresh directory by default, or a
 * PostgreSQL URL), nothing logged; `close` stops it as a shutdown does (a working task stays WORKING).
 */
export const startEngine = async (
  agent: Agent,
  { tracer, ...options }: Partial<Omit<Embedded.EmbeddedOptions, "agent">> & { readonly tracer?: Tracer.Tracer } = {}
) => {
  const db = options.db ?? path.join(tempDir(), "engine.db")
  const scope = Effect.runSync(Scope.make())
  const layer = Embedded.layer({ ...options, agent, db }).pipe(
    Layer.provide(Logger.minimumLogLevel(LogLevel.None)),
    Layer.provide(tracer !== undefined ? Layer.setTracer(tracer) : Layer.empty)
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const run = <A, E>(effect: Effect.Effect<A, E, TaskEngine | EventLog>) => Effect.runPromise(Effect.provide(effect, context))
  return { db, run, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/** Send a user message with this text (a new task), as `caller`. */
export const send = (text: string, caller: Caller = anonymous, metadata?: Message["metadata"]) =>
  Effect.flatMap(TaskEngine, (e) =>
    e.send({
      caller,
      message: { messageId: `m-${Math.random()}`, role: "ROLE_USER", parts: [{ text }], ...(metadata !== undefined ? { metadata } : {}) }
    })
  )

export const taskIdOf = (o: SendOutcome) => {
  if (o._tag !== "Task") throw new Error("expected a task")
  return o.snapshot.task.id
}

/** The task's events, the journal's included. */
export const events = (taskId: string) => Effect.flatMap(EventLog, (log) => log.read(taskId)).pipe(Effect.map((es) => es.map((e) => e.event)))

export const getTask = (taskId: string, caller: Caller = anonymous) => Effect.flatMap(TaskEngine, (e) => e.get(taskId, caller))

/** Until the task reaches a state `predicate` accepts. */
export const waitFor = (taskId: string, predicate: (state: TaskState) => boolean) =>
  Effect.flatMap(TaskEngine, (e) => e.watch(taskId, { stopAt: predicate }).pipe(Stream.runDrain))
