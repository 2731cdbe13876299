import { stateAfter, type TaskState } from "../domain/TaskState.js"
import { isJournalEvent, type VersionedEvent } from "../domain/TaskEvent.js"
import type { Committed } from "./EventHub.js"
import type { WatchItem } from "./TaskEngine.js"

/**
 * One task's live stream for a transport that writes it out itself (the SSE
 * responses): plain callbacks, no fiber, no queue. It hears the task's
 * commits from the hub and hands them to its sink in version order while the
 * sink takes them. When the sink is full (a slow reader), it holds nothing:
 * it remembers only the last version delivered, and when the sink drains it
 * reads what it missed from the log, a page at a time. So an open stream
 * costs the same whether its reader keeps up or not, and nothing is lost.
 */
export interface FollowSink {
  /** One item; false when the reader is full: nothing more comes until `resume`. */
  readonly item: (item: WatchItem) => boolean
  /** The stream reached a stopping state, or the task does not exist. */
  readonly end: () => void
  /** Reading the log failed; the stream is over. */
  readonly fail: (error: unknown) => void
}

export interface Feed {
  /** The reader drained: deliver again (and catch up from the log). */
  readonly resume: () => void
  /** The reader left: stop listening. */
  readonly close: () => void
}

/** Events of `taskId` with versions in [from, to], from the log (after durability: see TaskEngine's `store`). */
export type ReadLog = (from: number, to: number) => Promise<ReadonlyArray<VersionedEvent>>

/** Versions read from the log in one step of a catch-up. */
export const catchUpPage = 256
/** Commits heard before the stream starts that are kept; beyond, they are read from the log. */
const earlyLimit = 64

export class Follower implements Feed {
  private last = 0
  private contextId = ""
  private early: Array<Committed> | undefined = []
  private paused = false
  private behind = false
  private reading = false
  private closed = false
  private unlisten: (() => void) | undefined

  constructor(
    private readonly sink: FollowSink,
    private readonly stopAt: (state: TaskState) => boolean,
    private readonly readLog: ReadLog
  ) {}

  /** Called with the hub's unsubscribe, which `close` calls. */
  listening(unlisten: () => void) {
    if (this.closed) unlisten()
    else this.unlisten = unlisten
  }

  /** The hub's listener: one commit of the task. */
  readonly hear = (c: Committed) => {
    if (this.closed) return
    if (this.early !== undefined) {
      if (this.early.length < earlyLimit) this.early.push(c)
      else this.behind = true
      return
    }
    if (c.version <= this.last) return
    if (this.paused || this.reading || this.behind || c.version !== this.last + 1) {
      this.behind = true
      this.catchUp()
      return
    }
    this.deliver({ _tag: "Event", committed: c })
  }

  /**
   * Start delivering: `head` first (a snapshot, say), then everything after
   * `after`: what was heard meanwhile, and from the log what was not.
   */
  start(contextId: string, head: ReadonlyArray<WatchItem>, after: number, fromLog = false) {
    if (this.closed) return
    this.contextId = contextId
    for (const item of head) {
      this.deliver(item)
      if (this.closed) return
    }
    this.last = after
    const early = this.early ?? []
    this.early = undefined
    if (fromLog) this.behind = true
    for (const c of early) this.hear(c)
    if (this.behind) this.catchUp()
  }

  resume() {
    if (this.closed || !this.paused) return
    this.paused = false
    if (this.behind) this.catchUp()
  }

  close() {
    if (this.closed) return
    this.closed = true
    this.early = undefined
    this.unlisten?.()
  }

  /** Hand one item on; false when the stream stopped or the reader is full. */
  private deliver(item: WatchItem): boolean {
    if (item._tag === "Event") {
      this.last = item.committed.version
      // The step journal is the agent's bookkeeping: no reader is shown it.
      if (isJournalEvent(item.committed.event)) return true
    }
    const state = item._tag === "Snapshot" ? item.task.status.state : stateAfter(item.committed.event)
    const more = this.sink.item(item)
    if (state !== undefined && this.stopAt(state)) {
      this.close()
      this.sink.end()
      return false
    }
    if (!more) this.paused = true
    return more
  }

  private catchUp() {
    if (this.closed || this.paused || this.reading || this.early !== undefined) return
    this.reading = true
    this.behind = false
    const from = this.last + 1
    this.readLog(from, from + catchUpPage - 1).then(
      (events) => {
        this.reading = false
        if (this.closed) return
        for (const e of events) {
          if (e.version <= this.last) continue
          if (!this.deliver({ _tag: "Event", committed: { taskId: e.taskId, contextId: this.contextId, version: e.version, event: e.event } })) {
            // Stopped, or full: what is left is read again after `resume`.
            this.behind = true
            return
          }
        }
        // A full page may have more behind it; commits heard while reading set `behind` too.
        if (events.length >= catchUpPage) this.behind = true
        if (this.behind) this.catchUp()
      },
      (error: unknown) => {
        this.reading = false
        if (this.closed) return
        this.close()
        this.sink.fail(error)
      }
    )
  }
}
