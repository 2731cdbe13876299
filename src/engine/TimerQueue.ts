import { Effect, Runtime, type Scope } from "effect"

/**
 * The tasks parked on durable timers in this process (`ctx.sleep`), each woken when due: one Node timer
 * for all of them, armed for the earliest (a parked task holds no fiber). `onDue` is run on the
 * supervisor's runtime for each task whose time has come. A task added twice is woken twice: waking is
 * idempotent (the task is looked at again first).
 */
export interface TimerQueue {
  /** Wake `taskId` at `dueAt` (ms since the epoch; at once when it has passed). */
  readonly add: (taskId: string, dueAt: number) => void
}

// The longest a Node timer waits (2^31 - 1 ms, about 24.8 days); a later due time is looked at again then.
const longestWait = 2_147_483_647

export const make = (onDue: (taskId: string) => Effect.Effect<void>): Effect.Effect<TimerQueue, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runFork(runtime)
    // A binary min-heap by due time.
    const heap: Array<{ readonly dueAt: number; readonly taskId: string }> = []
    let timer: ReturnType<typeof setTimeout> | undefined
    let armedFor = Infinity
    let closed = false

    const swap = (i: number, j: number) => {
      const t = heap[i]!
      heap[i] = heap[j]!
      heap[j] = t
    }
    const push = (entry: { readonly dueAt: number; readonly taskId: string }) => {
      heap.push(entry)
      for (let i = heap.length - 1; i > 0; ) {
        const parent = (i - 1) >> 1
        if (heap[parent]!.dueAt <= heap[i]!.dueAt) break
        swap(i, parent)
        i = parent
      }
    }
    const pop = () => {
      const top = heap[0]!
      const last = heap.pop()!
      if (heap.length > 0) {
        heap[0] = last
        for (let i = 0; ; ) {
          const l = 2 * i + 1
          const r = l + 1
          let least = i
          if (l < heap.length && heap[l]!.dueAt < heap[least]!.dueAt) least = l
          if (r < heap.length && heap[r]!.dueAt < heap[least]!.dueAt) least = r
          if (least === i) break
          swap(i, least)
          i = least
        }
      }
      return top
    }

    const arm = () => {
      const next = heap[0]
      if (closed || next === undefined || next.dueAt >= armedFor) return
      if (timer !== undefined) clearTimeout(timer)
      armedFor = next.dueAt
      timer = setTimeout(fire, Math.min(longestWait, Math.max(0, next.dueAt - Date.now())))
    }
    const fire = () => {
      timer = undefined
      armedFor = Infinity
      const now = Date.now()
      while (heap.length > 0 && heap[0]!.dueAt <= now) run(onDue(pop().taskId))
      arm()
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        if (timer !== undefined) clearTimeout(timer)
      })
    )
    return {
      add: (taskId, dueAt) => {
        push({ dueAt, taskId })
        arm()
      }
    }
  })
