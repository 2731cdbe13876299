import type { TaskSnapshot } from "../domain/Task.js"

/**
 * The biggest rows' snapshots, parsed once and kept while their version holds. Parsing a row costs about
 * 3 ms a megabyte, and a stream's start, a poll and a GetTask each read the whole row: a thousand streams
 * opened on a task with a 0.9 MB message parsed it a thousand times, and the server answered nothing else
 * meanwhile (docs/performance.md, "Streams that cannot hurt the server"). A reader asks for the row's
 * version first (a lookup that does not read the snapshot) and takes the kept snapshot when it is the same:
 * a task's row at one version is always the same, and snapshots are never changed in place.
 *
 * Only rows of at least `minChars` characters are kept, up to `maxChars` in all, the oldest dropped first.
 * Rows that hold only a task's head (detached) are not kept: their whole task is read from its events.
 */
export class ParsedRows {
  private readonly kept = new Map<string, { readonly snapshot: TaskSnapshot; readonly chars: number }>()
  private chars = 0

  constructor(
    private readonly minChars: number,
    private readonly maxChars: number
  ) {}

  /** Whether a snapshot of the task is kept (at some version). */
  has(taskId: string): boolean {
    return this.kept.has(taskId)
  }

  /** The kept snapshot of the task if it is at `version`; a kept one at another version is dropped. */
  find(taskId: string, version: number | undefined): TaskSnapshot | undefined {
    const entry = this.kept.get(taskId)
    if (entry === undefined) return undefined
    if (entry.snapshot.version === version) return entry.snapshot
    this.drop(taskId)
    return undefined
  }

  /** Keep `snapshot`, parsed from a row of `chars` characters, if the row is big enough. */
  keep(snapshot: TaskSnapshot, chars: number): void {
    const taskId = snapshot.task?.id
    if (taskId === undefined || chars < this.minChars || chars > this.maxChars) return
    this.drop(taskId)
    this.kept.set(taskId, { snapshot, chars })
    this.chars += chars
    for (const [oldest] of this.kept) {
      if (this.chars <= this.maxChars) break
      this.drop(oldest)
    }
  }

  private drop(taskId: string) {
    const entry = this.kept.get(taskId)
    if (entry === undefined) return
    this.kept.delete(taskId)
    this.chars -= entry.chars
  }
}
