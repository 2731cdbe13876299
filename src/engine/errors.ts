import { Data } from "effect"
import type { TaskState } from "../domain/TaskState.js"
import { StoreFailure } from "../eventlog/StoreFailure.js"

export { StoreFailure }

/** Errors the engine reports to its callers; the server maps them to A2A codes. */
export class TaskNotFound extends Data.TaggedError("TaskNotFound")<{ readonly taskId: string }> {}

export class TaskNotCancelable extends Data.TaggedError("TaskNotCancelable")<{
  readonly taskId: string
  readonly state: TaskState
}> {}

export class UnsupportedOperation extends Data.TaggedError("UnsupportedOperation")<{
  readonly message: string
  readonly taskId?: string
}> {}

export class InvalidParams extends Data.TaggedError("InvalidParams")<{
  readonly field: string
  readonly message: string
}> {}

/** No push config with this id on this (visible) task. */
export class PushConfigNotFound extends Data.TaggedError("PushConfigNotFound")<{ readonly taskId: string; readonly id: string }> {}

/** The worker's lease on a shared store was taken over: it must stop, and nothing it sends lands. */
export class LeaseLost extends Data.TaggedError("LeaseLost")<{ readonly taskId: string; readonly epoch: number }> {}

/** The message (by tenant, owner and messageId) was already accepted, by this task at this version. */
export class DuplicateMessage extends Data.TaggedError("DuplicateMessage")<{ readonly taskId: string; readonly version: number }> {}

/** A flow-control limit refused the request for now (FlowControl.ts): which, and when to try again. */
export class RateLimited extends Data.TaggedError("RateLimited")<{
  readonly limit: string
  readonly retryAfterMs: number
  readonly message: string
}> {}

export type EngineError = TaskNotFound | TaskNotCancelable | UnsupportedOperation | InvalidParams | PushConfigNotFound | StoreFailure | RateLimited
