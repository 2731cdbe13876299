import { type A2AError, Errors } from "../protocol/errors.js"

/**
 * The errors `createLedger`'s methods reject with: `Error` subclasses carrying the A2A error code a client
 * of the server would get for the same fault (`code`), its reason (`reason`, as in google.rpc.ErrorInfo)
 * and details such as the task id (`details`). Effect users get the engine's tagged errors instead.
 */
export class LedgerError extends Error {
  override readonly name: string = "LedgerError"
  constructor(
    message: string,
    /** The A2A / JSON-RPC error code, e.g. -32001 for TaskNotFoundError. */
    readonly code: number,
    /** The A2A error reason, e.g. "TASK_NOT_FOUND". */
    readonly reason: string,
    readonly details: Readonly<Record<string, string>> = {}
  ) {
    super(message)
  }
}

/** No task with this id (-32001). */
export class TaskNotFoundError extends LedgerError {
  override readonly name = "TaskNotFoundError"
}

/** The task is in a state that cannot be canceled (-32002). */
export class TaskNotCancelableError extends LedgerError {
  override readonly name = "TaskNotCancelableError"
}

/** The operation does not apply (-32004): a message to a finished task, for example. */
export class UnsupportedOperationError extends LedgerError {
  override readonly name = "UnsupportedOperationError"
}

/** An argument is not valid (-32602); `fieldViolations` names each field and what is wrong with it. */
export class InvalidParamsError extends LedgerError {
  override readonly name = "InvalidParamsError"
  constructor(
    message: string,
    code: number,
    reason: string,
    details: Readonly<Record<string, string>>,
    readonly fieldViolations: ReadonlyArray<{ readonly field: string; readonly description: string }>
  ) {
    super(message, code, reason, details)
  }
}

/** The store failed or did not answer in time (-32603): nothing was carried out; try again later. */
export class StoreUnavailableError extends LedgerError {
  override readonly name = "StoreUnavailableError"
}

/** A flow-control limit refused the call for now (-32603, RATE_LIMITED): `metadata.retryAfterSeconds` says when to try again. */
export class RateLimitedError extends LedgerError {
  override readonly name = "RateLimitedError"
}

/** The ledger is closed, or closing (-32603). */
export class LedgerClosedError extends LedgerError {
  override readonly name = "LedgerClosedError"
}

/** The Promise API's error for an A2A error of the protocol layer. */
export const fromA2AError = (error: A2AError): LedgerError => {
  const { code, reason } = error.spec
  switch (error.spec) {
    case Errors.TaskNotFound:
      return new TaskNotFoundError(error.message, code, reason, error.metadata)
    case Errors.TaskNotCancelable:
      return new TaskNotCancelableError(error.message, code, reason, error.metadata)
    case Errors.UnsupportedOperation:
      return new UnsupportedOperationError(error.message, code, reason, error.metadata)
    case Errors.InvalidParams:
      return new InvalidParamsError(error.message, code, reason, error.metadata, error.fieldViolations)
    case Errors.StoreUnavailable:
      return new StoreUnavailableError(error.message, code, reason, error.metadata)
    case Errors.RateLimited:
      return new RateLimitedError(error.message, code, reason, error.metadata)
    case Errors.ShuttingDown:
      return new LedgerClosedError(error.message, code, reason, error.metadata)
    default:
      return new LedgerError(error.message, code, reason, error.metadata)
  }
}
