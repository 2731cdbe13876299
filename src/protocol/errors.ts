import { Data } from "effect"
/**
 * A2A and JSON-RPC error codes (A2A-v1.md §4), with the google.rpc.ErrorInfo
 * detail every error carries.
 */
export const ErrorDomain = "a2a-protocol.org"

export interface A2AErrorSpec {
  readonly code: number
  readonly reason: string
  readonly httpStatus: number
  readonly grpcStatus: string
  readonly title: string
}

const spec = (code: number, reason: string, httpStatus: number, grpcStatus: string, title: string): A2AErrorSpec => ({
  code,
  reason,
  httpStatus,
  grpcStatus,
  title
})

export const Errors = {
  ParseError: spec(-32700, "PARSE_ERROR", 400, "INVALID_ARGUMENT", "Invalid JSON payload"),
  InvalidRequest: spec(-32600, "INVALID_REQUEST", 400, "INVALID_ARGUMENT", "Request payload validation error"),
  // An invalid request too (-32600), answered with HTTP 413 on both bindings; RESOURCE_EXHAUSTED is what gRPC says of an oversized message.
  PayloadTooLarge: spec(-32600, "INVALID_REQUEST", 413, "RESOURCE_EXHAUSTED", "Request body too large"),
  MethodNotFound: spec(-32601, "METHOD_NOT_FOUND", 404, "UNIMPLEMENTED", "Method not found"),
  InvalidParams: spec(-32602, "INVALID_PARAMS", 400, "INVALID_ARGUMENT", "Invalid parameters"),
  Internal: spec(-32603, "INTERNAL", 500, "INTERNAL", "Internal error"),
  // An internal error too (-32603), but one a client should retry later: HTTP 503 / UNAVAILABLE on REST.
  StoreUnavailable: spec(-32603, "STORE_UNAVAILABLE", 503, "UNAVAILABLE", "The task store is unavailable"),
  TaskNotFound: spec(-32001, "TASK_NOT_FOUND", 404, "NOT_FOUND", "Task not found"),
  TaskNotCancelable: spec(-32002, "TASK_NOT_CANCELABLE", 400, "FAILED_PRECONDITION", "Task cannot be canceled"),
  PushNotificationNotSupported: spec(-32003, "PUSH_NOTIFICATION_NOT_SUPPORTED", 400, "FAILED_PRECONDITION", "Push notifications are not supported"),
  UnsupportedOperation: spec(-32004, "UNSUPPORTED_OPERATION", 400, "FAILED_PRECONDITION", "This operation is not supported"),
  ContentTypeNotSupported: spec(-32005, "CONTENT_TYPE_NOT_SUPPORTED", 400, "INVALID_ARGUMENT", "Incompatible content types"),
  InvalidAgentResponse: spec(-32006, "INVALID_AGENT_RESPONSE", 500, "INTERNAL", "Invalid agent response"),
  ExtendedAgentCardNotConfigured: spec(
    -32007,
    "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
    400,
    "FAILED_PRECONDITION",
    "Extended agent card is not configured"
  ),
  ExtensionSupportRequired: spec(-32008, "EXTENSION_SUPPORT_REQUIRED", 400, "FAILED_PRECONDITION", "Extension support is required"),
  VersionNotSupported: spec(-32009, "VERSION_NOT_SUPPORTED", 400, "FAILED_PRECONDITION", "This protocol version is not supported"),
  // A limit of this server, not a fault: -32603 as StoreUnavailable is, answered with HTTP 429 / RESOURCE_EXHAUSTED on REST.
  ShuttingDown: spec(-32603, "SHUTTING_DOWN", 503, "UNAVAILABLE", "The server is shutting down"),
  TooManyStreams: spec(-32603, "TOO_MANY_STREAMS", 429, "RESOURCE_EXHAUSTED", "Too many open streams"),
  // As TooManyStreams: a limit of this server (flow control), with when to try again (Retry-After on REST).
  RateLimited: spec(-32603, "RATE_LIMITED", 429, "RESOURCE_EXHAUSTED", "Too many requests"),
  // A2A defines no JSON-RPC code for authentication (spec §3.3.2 gives only HTTP 401 / UNAUTHENTICATED);
  // -32000 is JSON-RPC's first server-error code and outside A2A's own -32001…-32099.
  Unauthenticated: spec(-32000, "UNAUTHENTICATED", 401, "UNAUTHENTICATED", "Authentication required"),
  // The operator's endpoints (metrics, the board) for a caller who is not an admin: HTTP only.
  PermissionDenied: spec(-32000, "PERMISSION_DENIED", 403, "PERMISSION_DENIED", "Permission denied")
} as const

/** An error on its way to a client: which kind, what happened, and which field when known. */
export class A2AError extends Data.TaggedError("A2AError")<{
  readonly spec: A2AErrorSpec
  readonly message: string
  readonly metadata: Readonly<Record<string, string>>
  readonly fieldViolations: ReadonlyArray<{ readonly field: string; readonly description: string }>
}> {
  constructor(
    spec: A2AErrorSpec,
    message: string,
    metadata: Readonly<Record<string, string>> = {},
    fieldViolations: ReadonlyArray<{ readonly field: string; readonly description: string }> = []
  ) {
    super({ spec, message, metadata, fieldViolations })
  }
}

export const invalidParams = (field: string, description: string) =>
  new A2AError(Errors.InvalidParams, `Invalid parameters: ${field}: ${description}`, { field }, [{ field, description }])

/** `error.data` / `details`: the ErrorInfo, plus a BadRequest when fields were wrong. */
export const errorDetails = (error: A2AError): ReadonlyArray<Record<string, unknown>> => {
  const details: Array<Record<string, unknown>> = [
    {
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason: error.spec.reason,
      domain: ErrorDomain,
      ...(Object.keys(error.metadata).length > 0 ? { metadata: error.metadata } : {})
    }
  ]
  if (error.fieldViolations.length > 0) {
    details.push({ "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: error.fieldViolations })
  }
  return details
}
