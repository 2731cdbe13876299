import { describe, expect, it } from "vitest"
import { extend } from "../../src/domain/extend"

/**
 * `extend(base, extra)` stands in for `{ ...base, ...extra }` on the hot path (step 36): the same object,
 * keys in the same order (so the same JSON, which stored rows and streams depend on), base untouched.
 */
describe("extend", () => {
  const message = { messageId: "m-1", role: "ROLE_AGENT", parts: [{ text: "hi" }] }

  it("adds properties after the base's, in order, as a spread would", () => {
    const stamped = extend(message, { taskId: "t", contextId: "c" })
    expect(stamped).toEqual({ ...message, taskId: "t", contextId: "c" })
    expect(JSON.stringify(stamped)).toBe(JSON.stringify({ ...message, taskId: "t", contextId: "c" }))
  })

  it("replaces a property where the base has it, keeping its place", () => {
    const snapshot = { version: 1, state: "WORKING", task: { id: "t" }, tenant: "" }
    const next = extend(snapshot, { version: 2, task: { id: "t2" } })
    expect(Object.keys(next)).toEqual(["version", "state", "task", "tenant"])
    expect(JSON.stringify(next)).toBe(JSON.stringify({ ...snapshot, version: 2, task: { id: "t2" } }))
  })

  it("leaves the base as it was and shares its values (a shallow copy)", () => {
    const stamped = extend(message, { taskId: "t" })
    expect(message).toEqual({ messageId: "m-1", role: "ROLE_AGENT", parts: [{ text: "hi" }] })
    expect(stamped).not.toBe(message)
    expect(stamped.parts).toBe(message.parts)
  })

  it("keeps an undefined value the extra sets, as a spread does", () => {
    const next = extend({ a: 1, b: 2 }, { b: undefined })
    expect(Object.keys(next)).toEqual(["a", "b"])
    expect(next.b).toBeUndefined()
  })
})
