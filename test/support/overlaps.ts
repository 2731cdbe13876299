import type { LoggedEvent } from "../../src/eventlog/EventLog"

/**
 * Every worker event comes from the instance whose TaskStarted began the turn
 * (or whose TimerFired woke it after it parked on a durable timer), and (on a
 * shared store, `epochs`) lease epochs only grow.
 */
export const overlaps = (events: ReadonlyArray<LoggedEvent>, options: { readonly epochs: boolean } = { epochs: true }) => {
  const problems: Array<string> = []
  const byTask = new Map<string, Array<LoggedEvent>>()
  for (const e of events) byTask.set(e.taskId, [...(byTask.get(e.taskId) ?? []), e])
  for (const [taskId, stream] of byTask) {
    let turnOwner: string | undefined
    let epoch = 0
    for (const e of [...stream].sort((a, b) => a.version - b.version)) {
      const ev = e.event
      if (ev.type === "TaskStarted" || (ev.type === "TimerFired" && ev.instanceId !== undefined)) {
        if (options.epochs && (ev.leaseEpoch ?? 0) <= epoch) problems.push(`${taskId}: epoch ${ev.leaseEpoch} after ${epoch}`)
        epoch = ev.leaseEpoch ?? 0
        turnOwner = ev.instanceId
      } else if (["StatusMessageAdded", "ArtifactAdded", "TaskCompleted"].includes(ev.type) && e.metadata.instanceId !== turnOwner) {
        problems.push(`${taskId}: ${ev.type} at v${e.version} written by ${e.metadata.instanceId}, but the turn is ${turnOwner}'s`)
      } else if (ev.type === "TaskRequeued") {
        turnOwner = undefined
      }
    }
  }
  return problems
}
