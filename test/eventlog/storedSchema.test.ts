import { describe, expect, it } from "vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { compiledGuard } from "../../src/eventlog/compiledGuard"
import { decodeEvent, decodeMetadata } from "../../src/eventlog/codec"
import { checkSnapshot, EventMetadataSchema, StoredSnapshot, TaskEventSchema } from "../../src/eventlog/StoredSchema"
import { parseStored } from "../../src/projections/TaskReadModel"
import { foldTask } from "../../src/domain/Task"
import { agentMessage, at, userMessage } from "../support/fixtures"

/** `value` with the node at `index` (in walk order) replaced by `junk`, or deleted when `junk` is undefined. */
const mutate = (value: unknown, index: number, junk: unknown): unknown => {
  let seen = 0
  const walk = (node: unknown): unknown => {
    if (seen++ === index) return junk
    if (Array.isArray(node)) return node.map(walk)
    if (typeof node === "object" && node !== null) {
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(node)) {
        const w = walk(v)
        if (w !== undefined) out[k] = w
      }
      return out
    }
    return node
  }
  return walk(value)
}

const junk = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.array(fc.string()),
  fc.object()
)

const sameAsEffect = <A, I>(name: string, schema: Schema.Schema<A, I, never>, runs: number) =>
  describe(`compiledGuard agrees with Schema.is: ${name}`, () => {
    const guard = compiledGuard(schema)
    const is = Schema.is(schema)
    const valid = Arbitrary.make(schema)

    it("accepts every value the schema generates", () => {
      fc.assert(
        fc.property(valid, (v) => guard(v) && is(v)),
        { numRuns: runs }
      )
    })

    it("judges values with one node changed or removed as Effect does", () => {
      fc.assert(
        fc.property(valid, fc.nat(200), junk, (v, index, replacement) => {
          const changed = mutate(v, index, replacement)
          expect(guard(changed)).toBe(is(changed))
        }),
        { numRuns: runs * 3 }
      )
    })

    it("judges arbitrary values as Effect does", () => {
      fc.assert(
        fc.property(fc.anything(), (v) => {
          expect(guard(v)).toBe(is(v))
        }),
        { numRuns: 300 }
      )
    })
  })

// Generated snapshots are big (a history of messages with parts): fewer of them.
sameAsEffect("a stored snapshot", StoredSnapshot, 100)
sameAsEffect("an event", TaskEventSchema, 300)
sameAsEffect("event metadata", EventMetadataSchema, 300)

describe("compiledGuard", () => {
  it("refuses a schema it cannot compile, when the guard is made", () => {
    expect(() => compiledGuard(Schema.NumberFromString)).not.toThrow() // its type side is a plain number
    interface Tree {
      readonly children: ReadonlyArray<Tree>
    }
    const Tree: Schema.Schema<Tree> = Schema.Struct({ children: Schema.Array(Schema.suspend(() => Tree)) })
    expect(() => compiledGuard(Tree)).toThrow(/Suspend is not supported/)
  })
})

describe("rows read back are decoded with their schemas, not cast", () => {
  const row = (payload: unknown, type = "StatusMessageAdded") => ({
    task_id: "t-1",
    version: 3,
    type,
    schema_version: 1,
    payload: JSON.stringify(payload)
  })

  it("an event payload of the wrong shape is an UnreadableEvent naming the field", () => {
    const good = decodeEvent(row({ at: at(1), message: agentMessage("hi") }))
    expect(Either.isRight(good)).toBe(true)
    const bad = decodeEvent(row({ at: at(1), message: { messageId: "m", role: "ROLE_ROBOT", parts: [] } }))
    expect(Either.isLeft(bad) && bad.left.reason).toBe('payload does not match its schema: message.role: Expected "ROLE_USER", actual "ROLE_ROBOT"')
    const missing = decodeEvent(row({ message: agentMessage("hi") }))
    expect(Either.isLeft(missing) && missing.left.reason).toBe("payload does not match its schema: at: is missing")
    expect(Either.isLeft(decodeEvent({ ...row({}), payload: "[1, 2]" }))).toBe(true)
    expect(Either.isLeft(decodeEvent({ ...row({}), payload: "{oops" }))).toBe(true)
  })

  it("an event's metadata of the wrong shape, or not JSON, makes the event unreadable, saying why", () => {
    const key = { task_id: "t-1", version: 3, type: "TaskStarted", schema_version: 1 }
    expect(Either.getOrThrow(decodeMetadata({ ...key, metadata: '{"instanceId":"i-1"}' }))).toEqual({ instanceId: "i-1" })
    const wrong = decodeMetadata({ ...key, metadata: '{"instance":"i-1"}' })
    expect(Either.isLeft(wrong) && wrong.left.reason).toBe("metadata does not match its schema: instanceId: is missing")
    const broken = decodeMetadata({ ...key, metadata: "{" })
    expect(Either.isLeft(broken) && [broken.left.reason, broken.left.taskId, broken.left.version]).toEqual(["metadata is not valid JSON", "t-1", 3])
  })

  it("a schema-1 TaskSubmitted is upcast, then checked as the current shape", () => {
    const v1 = { at: at(0), taskId: "t-1", contextId: "c", tenant: "", message: userMessage("hi") }
    const read = decodeEvent({ task_id: "t-1", version: 1, type: "TaskSubmitted", schema_version: 1, payload: JSON.stringify(v1) })
    expect(Either.isRight(read) && read.right).toMatchObject({ type: "TaskSubmitted", owner: "" })
  })

  it('a read-model snapshot is checked; one from before owners gets the owner ""; anything else is a StoreFailure', () => {
    const snapshot = foldTask([
      { type: "TaskSubmitted", at: at(0), taskId: "t-1", contextId: "c", tenant: "", owner: "alice", message: userMessage("hi") }
    ])
    const json = JSON.stringify(snapshot)
    expect(Either.getOrThrow(parseStored(json))).toEqual(JSON.parse(json))
    const { owner: _owner, ...ownerless } = JSON.parse(json)
    expect(Either.getOrThrow(parseStored(JSON.stringify(ownerless))).owner).toBe("")
    expect(Either.isRight(checkSnapshot(JSON.parse(json)))).toBe(true)
    const broken = parseStored(JSON.stringify({ ...JSON.parse(json), state: "TASK_STATE_ASLEEP" }))
    expect(Either.isLeft(broken) && broken.left._tag).toBe("StoreFailure")
    expect(Either.isLeft(broken) && broken.left.description).toBe("a stored task cannot be read")
    expect(Either.isLeft(broken) && broken.left.message).toMatch(
      /^a read-model row cannot be read: task t-1: state: Expected "TASK_STATE_SUBMITTED", actual "TASK_STATE_ASLEEP"/
    )
    expect(Either.isLeft(parseStored("not json"))).toBe(true)
  })
})
