import { describe, expect, it } from "vitest"
import type { TaskEvent, VersionedEvent } from "../../src/domain/TaskEvent"
import type { Committed } from "../../src/engine/EventHub"
import { catchUpPage, Follower } from "../../src/engine/Follower"
import type { WatchItem } from "../../src/engine/TaskEngine"
import { isTerminal } from "../../src/domain/TaskState"

/**
 * The follower behind every SSE stream: it hands a task's events to its
 * sink in version order, holds nothing while the sink is full, and reads
 * what it missed from the log. The log here is an array; the "hub" is a
 * direct call of `hear`.
 */
const progress = (n: number): TaskEvent =>
  ({ type: "StatusMessageAdded", message: { messageId: `p${n}`, role: "ROLE_AGENT", parts: [{ text: `step ${n}` }] } }) as unknown as TaskEvent
const completed: TaskEvent = { type: "TaskCompleted" } as unknown as TaskEvent

const setup = (options: { room?: number } = {}) => {
  const log: Array<VersionedEvent> = []
  const reads: Array<[number, number]> = []
  const got: Array<number> = []
  let room = options.room ?? Infinity
  let ended = false
  let failed: unknown
  let pendingRead: (() => void) | undefined
  let holdReads = false
  const follower = new Follower(
    {
      item: (item: WatchItem) => {
        got.push(item._tag === "Snapshot" ? -item.version : item.committed.version)
        room--
        return room > 0
      },
      end: () => (ended = true),
      fail: (e) => (failed = e)
    },
    isTerminal,
    (from, to) => {
      reads.push([from, to])
      const answer = () => log.filter((e) => e.version >= from && e.version <= to)
      if (!holdReads) return Promise.resolve(answer())
      return new Promise((resolve) => (pendingRead = () => resolve(answer())))
    }
  )
  const commit = (event: TaskEvent, hear = true) => {
    const version = log.length + 1
    log.push({ taskId: "t", version, event } as VersionedEvent)
    const c: Committed = { taskId: "t", contextId: "c", version, event }
    if (hear) follower.hear(c)
    return c
  }
  return {
    follower,
    log,
    reads,
    got,
    commit,
    setRoom: (n: number) => (room = n),
    holdReads: (on: boolean) => (holdReads = on),
    releaseRead: () => pendingRead?.(),
    ended: () => ended,
    failed: () => failed
  }
}

const settle = () => new Promise((r) => setTimeout(r, 0))

describe("Follower", () => {
  it("delivers the head, then each commit heard, in version order", () => {
    const t = setup()
    t.commit(progress(1), false)
    t.follower.start("c", [{ _tag: "Snapshot", version: 1, task: { id: "t", status: { state: "TASK_STATE_WORKING" } } as never }], 1)
    t.commit(progress(2))
    t.commit(progress(3))
    expect(t.got).toEqual([-1, 2, 3])
    expect(t.reads).toEqual([])
  })

  it("ends after the item that reaches a stopping state, and stops listening", () => {
    const t = setup()
    t.follower.start("c", [], 0)
    t.commit(progress(1))
    t.commit(completed)
    t.commit(progress(3))
    expect(t.got).toEqual([1, 2])
    expect(t.ended()).toBe(true)
  })

  it("keeps commits heard before it starts, and delivers those after the head's version", () => {
    const t = setup()
    t.commit(progress(1))
    t.commit(progress(2))
    t.follower.start("c", [], 1)
    expect(t.got).toEqual([2])
  })

  it("a full sink holds nothing: what it missed is read from the log when it resumes, without gap or repeat", async () => {
    const t = setup({ room: 2 })
    t.follower.start("c", [], 0)
    for (let i = 1; i <= 5; i++) t.commit(progress(i))
    // Full after two: versions 3-5 were heard and dropped.
    expect(t.got).toEqual([1, 2])
    t.setRoom(Infinity)
    t.follower.resume()
    await settle()
    expect(t.got).toEqual([1, 2, 3, 4, 5])
    expect(t.reads).toEqual([[3, 2 + catchUpPage]])
    t.commit(progress(6))
    expect(t.got).toEqual([1, 2, 3, 4, 5, 6])
  })

  it("a version gap in what it hears is filled from the log", async () => {
    const t = setup()
    t.follower.start("c", [], 0)
    t.commit(progress(1))
    t.commit(progress(2), false)
    t.commit(progress(3))
    await settle()
    expect(t.got).toEqual([1, 2, 3])
  })

  it("commits heard while it reads the log are delivered after the read, in order", async () => {
    const t = setup()
    t.follower.start("c", [], 0)
    t.holdReads(true)
    t.commit(progress(1), false)
    t.commit(progress(2)) // gap: a read starts
    t.commit(progress(3)) // heard during the read
    t.holdReads(false)
    t.releaseRead()
    await settle()
    await settle()
    expect(t.got).toEqual([1, 2, 3])
  })

  it("a replay from a resume point is read a page at a time", async () => {
    const t = setup()
    for (let i = 1; i <= catchUpPage + 10; i++) t.commit(progress(i), false)
    t.follower.start("c", [], 5, true)
    for (let i = 0; i < 4; i++) await settle()
    expect(t.got).toEqual(Array.from({ length: catchUpPage + 5 }, (_, i) => i + 6))
    expect(t.reads).toEqual([
      [6, 5 + catchUpPage],
      [6 + catchUpPage, 5 + 2 * catchUpPage]
    ])
  })

  it("a failed log read fails the stream", async () => {
    const failing = new Follower({ item: () => true, end: () => undefined, fail: (e) => (seen = e) }, isTerminal, () =>
      Promise.reject(new Error("disk gone"))
    )
    let seen: unknown
    failing.start("c", [], 0, true)
    await settle()
    expect((seen as Error).message).toBe("disk gone")
  })

  it("after close it delivers nothing and unlistens once", () => {
    const t = setup()
    let unlistened = 0
    t.follower.listening(() => unlistened++)
    t.follower.start("c", [], 0)
    t.follower.close()
    t.follower.close()
    t.commit(progress(1))
    expect(t.got).toEqual([])
    expect(unlistened).toBe(1)
  })
})
