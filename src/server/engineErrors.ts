import type { EngineError } from "../engine/errors.js"
import { A2AError, Errors, invalidParams } from "../protocol/errors.js"

/** Engine errors as the A2A errors a client sees. A store failure names the store and the kind of fault, nothing more. */
export const toA2AError = (error: EngineError): A2AError => {
  switch (error._tag) {
    case "TaskNotFound":
      return new A2AError(Errors.TaskNotFound, `Task ${error.taskId} was not found`, { taskId: error.taskId })
    case "TaskNotCancelable":
      return new A2AError(Errors.TaskNotCancelable, `Task ${error.taskId} is ${error.state} and cannot be canceled`, {
        taskId: error.taskId,
        state: error.state
      })
    case "UnsupportedOperation":
      return new A2AError(Errors.UnsupportedOperation, error.message, error.taskId !== undefined ? { taskId: error.taskId } : {})
    case "PushConfigNotFound":
      // Spec §3.1.8: a missing push config is a TaskNotFoundError.
      return new A2AError(Errors.TaskNotFound, `Push notification config ${error.id} of task ${error.taskId} was not found`, {
        taskId: error.taskId,
        configId: error.id
      })
    case "InvalidParams":
      return invalidParams(error.field, error.message)
    case "RateLimited":
      return new A2AError(Errors.RateLimited, error.message, {
        limit: error.limit,
        retryAfterSeconds: String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)))
      })
    case "StoreFailure":
      return new A2AError(
        Errors.StoreUnavailable,
        `The task store is unavailable (${error.description}); the request was not carried out. Try again later: a SendMessage sent again with the same messageId never makes a second task`,
        { store: error.description }
      )
  }
}
