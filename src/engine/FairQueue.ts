/**
 * The tasks waiting for a worker on one process, taken fairly: tenants take turns (round robin), and
 * within a tenant its principals take turns; a principal's own tasks go by priority (higher first), then
 * in the order they came. So one tenant with ten thousand waiting tasks delays another's next task by at
 * most one task per other tenant, not by its whole backlog. A tenant or principal at its running limit is
 * passed over until a turn of its ends.
 */
export interface Waiting {
  readonly taskId: string
  readonly tenant: string
  readonly principal: string
  readonly priority: number
}

interface Entry extends Waiting {
  readonly seq: number
}

/** A round robin over keys, each with its own value; a key leaves when its value is empty. */
class Rotation<V> {
  readonly values = new Map<string, V>()
  private readonly keys: Array<string> = []
  private next = 0

  get(key: string, make: () => V): V {
    let value = this.values.get(key)
    if (value === undefined) {
      value = make()
      this.values.set(key, value)
      this.keys.push(key)
    }
    return value
  }

  /** The first key, from the one whose turn it is, that `pick` finds something in; its turn passes. */
  find<A>(pick: (key: string, value: V) => A | undefined): A | undefined {
    const n = this.keys.length
    for (let i = 0; i < n; i++) {
      const at = (this.next + i) % n
      const key = this.keys[at]!
      const found = pick(key, this.values.get(key)!)
      if (found !== undefined) {
        this.next = at + 1
        return found
      }
    }
    return undefined
  }

  remove(key: string) {
    const at = this.keys.indexOf(key)
    if (at < 0) return
    this.keys.splice(at, 1)
    this.values.delete(key)
    if (this.next > at) this.next--
  }
}

export class FairQueue {
  private readonly tenants = new Rotation<Rotation<Array<Entry>>>()
  private seq = 0
  private count = 0

  get size(): number {
    return this.count
  }

  offer(waiting: Waiting): void {
    const entry: Entry = { ...waiting, seq: this.seq++ }
    const list = this.tenants.get(waiting.tenant, () => new Rotation()).get(waiting.principal, () => [])
    // By priority, then arrival: after every entry of the same or a higher priority.
    let at = list.length
    while (at > 0 && list[at - 1]!.priority < entry.priority) at--
    list.splice(at, 0, entry)
    this.count++
  }

  /** The next task whose tenant and principal may start one now, taken out of the queue. */
  take(tenantMay: (tenant: string) => boolean, principalMay: (tenant: string, principal: string) => boolean): Waiting | undefined {
    const taken = this.tenants.find((tenant, principals) => {
      if (!tenantMay(tenant)) return undefined
      const entry = principals.find((principal, list) => (principalMay(tenant, principal) ? list.shift() : undefined))
      if (entry === undefined) return undefined
      if (principals.values.get(entry.principal)!.length === 0) principals.remove(entry.principal)
      if (principals.values.size === 0) this.tenants.remove(tenant)
      return entry
    })
    if (taken !== undefined) this.count--
    return taken
  }
}
