import { describe, expect, it } from "vitest"
import { defaultPushOptions, retryDelay } from "../../src/push/PushConfig"

describe("webhook retry delay", () => {
  const options = { ...defaultPushOptions, retryBaseMs: 1_000, retryMaxMs: 10_000 }

  it("doubles per failure, with half of it random (equal jitter)", () => {
    expect([retryDelay(options, 1, 0), retryDelay(options, 1, 1)]).toEqual([500, 1_000])
    expect([retryDelay(options, 3, 0), retryDelay(options, 3, 1)]).toEqual([2_000, 4_000])
    expect(retryDelay(options, 2, 0.5)).toBe(1_500)
  })

  it("never exceeds the ceiling, however many failures", () => {
    expect(retryDelay(options, 5, 1)).toBe(10_000)
    expect(retryDelay(options, 60, 0)).toBe(5_000)
  })
})
