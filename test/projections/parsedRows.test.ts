import { describe, expect, it } from "vitest"
import { foldTask } from "../../src/domain/Task"
import { ParsedRows } from "../../src/projections/ParsedRows"
import { at, userMessage } from "../support/fixtures"

const snapshotOf = (taskId: string) =>
  foldTask([{ type: "TaskSubmitted", at: at(0), taskId, contextId: "c", tenant: "", owner: "", message: userMessage("hi") }])

describe("ParsedRows (big rows parsed once per version)", () => {
  it("keeps rows of at least the minimum size, and gives one back only at its version", () => {
    const rows = new ParsedRows(100, 1_000)
    const a = snapshotOf("a")
    rows.keep(a, 99)
    expect(rows.has("a")).toBe(false)
    rows.keep(a, 100)
    expect(rows.find("a", 1)).toBe(a)
    // Another version: not the kept one, and it is dropped.
    expect(rows.find("a", 2)).toBeUndefined()
    expect(rows.has("a")).toBe(false)
    expect(rows.find("a", 1)).toBeUndefined()
  })

  it("holds at most the maximum size in all, dropping the oldest first; a row bigger than all of it is not kept", () => {
    const rows = new ParsedRows(1, 1_000)
    for (const id of ["a", "b", "c"]) rows.keep(snapshotOf(id), 400)
    expect([rows.has("a"), rows.has("b"), rows.has("c")]).toEqual([false, true, true])
    // Keeping a task again replaces it (its size counted once), and makes it the newest.
    rows.keep(snapshotOf("b"), 400)
    rows.keep(snapshotOf("d"), 400)
    expect([rows.has("b"), rows.has("c"), rows.has("d")]).toEqual([true, false, true])
    rows.keep(snapshotOf("e"), 1_001)
    expect(rows.has("e")).toBe(false)
    expect([rows.has("b"), rows.has("d")]).toEqual([true, true])
  })
})
