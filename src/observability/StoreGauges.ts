import { Effect, Layer } from "effect"
import { TaskReadModel } from "../projections/TaskReadModel.js"
import { PushStore } from "../push/PushStore.js"
import { EngineMetrics, stateLabel } from "./Metrics.js"

const activeStates = ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"]

/**
 * The gauges read from an agent's store when Prometheus scrapes: its tasks by non-terminal state (every
 * state, 0 when none), its webhook outbox and its dead letters. On a shared PostgreSQL store every
 * instance reports the same figures (aggregate them with `max`, not `sum`).
 */
export const layer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const metrics = yield* EngineMetrics
    if (!metrics.enabled) return
    const readModel = yield* TaskReadModel
    const push = yield* PushStore
    yield* metrics.read(
      "tasksActive",
      Effect.map(readModel.activeCounts, (rows) =>
        activeStates.map((state) => [{ state: stateLabel(state) }, rows.find((r) => r.state === state)?.n ?? 0] as const)
      )
    )
    yield* metrics.read(
      "pushOutboxPending",
      Effect.map(push.depth, (d) => [[{}, d.pending]] as const)
    )
    yield* metrics.read(
      "pushDeadLetters",
      Effect.map(push.depth, (d) => [[{}, d.dead]] as const)
    )
  })
)
