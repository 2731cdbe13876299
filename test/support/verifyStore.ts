import { Effect } from "effect"
import * as Store from "../../src/eventlog/Store"
import { inThisThread, verifyWith } from "../../src/projections/Refold"

/**
 * Invariant 4, checked from the outside as `a2a-ledger verify` does: refold
 * every task's events (each legal under the machine) and compare with the
 * stored read-model row and message index. Opens the store as a reader, so it
 * can run beside a live server. Throws on any problem; returns the number of tasks checked.
 * `windowMs`: the server's idempotency window, if not the default.
 */
export const verifyStore = (db: string, windowMs?: number) =>
  Effect.runPromise(
    Effect.scoped(verifyWith(inThisThread, windowMs).pipe(Effect.provide(Store.layer(db, { exclusive: false })))).pipe(
      Effect.map((report) => {
        if (report.problems.length > 0) {
          throw new Error(
            `verify found ${report.problems.length} problem(s): ${report.problems
              .slice(0, 5)
              .map((p) => `${p.taskId}: ${p.problem}`)
              .join("; ")}`
          )
        }
        return report.tasks
      })
    )
  )
