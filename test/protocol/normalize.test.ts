import { describe, expect, it } from "vitest"
import { camelCaseKeys, jsonDepth } from "../../src/protocol/normalize"

describe("camelCaseKeys (ProtoJSON accepts the original snake_case names)", () => {
  it("renames snake_case keys at every level, except inside free-form values", () => {
    expect(camelCaseKeys({ message: { message_id: "m", context_id: "c", metadata: { keep_me: 1 }, parts: [{ data: { raw_value: 2 } }] } })).toEqual({
      message: { messageId: "m", contextId: "c", metadata: { keep_me: 1 }, parts: [{ data: { raw_value: 2 } }] }
    })
  })

  it("lets the camelCase spelling win when both are sent", () => {
    expect(camelCaseKeys({ task_id: "snake", taskId: "camel" })).toEqual({ taskId: "camel" })
  })

  it('keeps a "__proto__" key an ordinary own key: it never becomes the prototype', () => {
    const out = camelCaseKeys(JSON.parse('{"__proto__": {"message": "injected"}, "id": "t"}')) as Record<string, unknown>
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect((out as { message?: unknown }).message).toBeUndefined()
    expect(Object.hasOwn(out, "__proto__")).toBe(true)
  })
})

describe("jsonDepth", () => {
  it("counts nesting of objects and arrays; scalars have depth 0", () => {
    expect(jsonDepth(1)).toBe(0)
    expect(jsonDepth({})).toBe(1)
    expect(jsonDepth({ a: [1, { b: [] }] })).toBe(4)
  })

  it("measures absurd nesting without recursion (no stack overflow)", () => {
    expect(jsonDepth(JSON.parse("[".repeat(200_000) + "]".repeat(200_000)))).toBe(200_000)
  })
})

describe("camelCaseKeys leaves keys that are not snake_case alone", () => {
  it("keeps leading, trailing and doubled underscores, and camelCase, as sent", () => {
    expect(camelCaseKeys({ _private: 1, trailing_: 2, double__under: 3, alreadyCamel: 4 })).toEqual({
      _private: 1,
      trailing_: 2,
      double__under: 3,
      alreadyCamel: 4
    })
  })
})
