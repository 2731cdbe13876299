import { describe, expect, it } from "vitest"
import { TaskStateNumbers, TaskStates, TerminalStates } from "../../src/domain/TaskState"
import { A2AError, errorDetails, Errors } from "../../src/protocol/errors"

/**
 * The error and state tables of A2A v1.0.1 (spec §5.4, A2A#1627 and A2A#1801; ../shared/A2A-v1.md §4.1),
 * written out here from the spec: the mapping every binding uses must be exactly this one. (v1.0.0 had 409,
 * 415 and 502 for three of these, and UNIMPLEMENTED for three gRPC statuses; v1.0.1 changed them.)
 */
const v101 = [
  ["TaskNotFound", -32001, "NOT_FOUND", 404, "TASK_NOT_FOUND"],
  ["TaskNotCancelable", -32002, "FAILED_PRECONDITION", 400, "TASK_NOT_CANCELABLE"],
  ["PushNotificationNotSupported", -32003, "FAILED_PRECONDITION", 400, "PUSH_NOTIFICATION_NOT_SUPPORTED"],
  ["UnsupportedOperation", -32004, "FAILED_PRECONDITION", 400, "UNSUPPORTED_OPERATION"],
  ["ContentTypeNotSupported", -32005, "INVALID_ARGUMENT", 400, "CONTENT_TYPE_NOT_SUPPORTED"],
  ["InvalidAgentResponse", -32006, "INTERNAL", 500, "INVALID_AGENT_RESPONSE"],
  ["ExtendedAgentCardNotConfigured", -32007, "FAILED_PRECONDITION", 400, "EXTENDED_AGENT_CARD_NOT_CONFIGURED"],
  ["ExtensionSupportRequired", -32008, "FAILED_PRECONDITION", 400, "EXTENSION_SUPPORT_REQUIRED"],
  ["VersionNotSupported", -32009, "FAILED_PRECONDITION", 400, "VERSION_NOT_SUPPORTED"],
  // The standard JSON-RPC codes, and the generic categories of §3.3.2.
  ["ParseError", -32700, "INVALID_ARGUMENT", 400, "PARSE_ERROR"],
  ["InvalidRequest", -32600, "INVALID_ARGUMENT", 400, "INVALID_REQUEST"],
  ["MethodNotFound", -32601, "UNIMPLEMENTED", 404, "METHOD_NOT_FOUND"],
  ["InvalidParams", -32602, "INVALID_ARGUMENT", 400, "INVALID_PARAMS"],
  ["Internal", -32603, "INTERNAL", 500, "INTERNAL"],
  ["Unauthenticated", -32000, "UNAUTHENTICATED", 401, "UNAUTHENTICATED"],
  ["PermissionDenied", -32000, "PERMISSION_DENIED", 403, "PERMISSION_DENIED"]
] as const

describe("the v1.0.1 error table", () => {
  it.each(v101)("%s is JSON-RPC %i, gRPC %s, HTTP %i, reason %s", (name, code, grpc, http, reason) => {
    const spec = Errors[name]
    expect({ code: spec.code, grpc: spec.grpcStatus, http: spec.httpStatus, reason: spec.reason }).toEqual({ code, grpc, http, reason })
  })

  it("every error's details carry a google.rpc.ErrorInfo in the a2a-protocol.org domain; a field error adds a BadRequest", () => {
    const details = errorDetails(
      new A2AError(Errors.InvalidParams, "bad", { field: "message.parts" }, [{ field: "message.parts", description: "is required" }])
    )
    expect(details).toEqual([
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "INVALID_PARAMS",
        domain: "a2a-protocol.org",
        metadata: { field: "message.parts" }
      },
      { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "message.parts", description: "is required" }] }
    ])
  })
})

describe("the v1.0.1 task states", () => {
  it("are the eight TASK_STATE_* names with their proto numbers; four are terminal", () => {
    expect(TaskStateNumbers).toEqual({
      1: "TASK_STATE_SUBMITTED",
      2: "TASK_STATE_WORKING",
      3: "TASK_STATE_COMPLETED",
      4: "TASK_STATE_FAILED",
      5: "TASK_STATE_CANCELED",
      6: "TASK_STATE_INPUT_REQUIRED",
      7: "TASK_STATE_REJECTED",
      8: "TASK_STATE_AUTH_REQUIRED"
    })
    expect([...TaskStates].sort()).toEqual(Object.values(TaskStateNumbers).sort())
    expect([...TerminalStates].sort()).toEqual(["TASK_STATE_CANCELED", "TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_REJECTED"])
  })
})
