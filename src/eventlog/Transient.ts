import { Duration, Effect, Schedule } from "effect"

/**
 * Nothing was written and trying again may succeed: PostgreSQL gave up on the
 * transaction to break a deadlock or a serialization conflict, or another
 * connection holds SQLite's write lock for a moment (the writer's thread, or
 * one of our CLI tools).
 */
export const isTransient = (error: { readonly cause?: unknown }) => {
  // A StoreFailure's or a SqlError's cause is the driver's error.
  const code = (error.cause as { code?: unknown } | undefined)?.code
  if (typeof code !== "string") return false
  return code === "40P01" || code === "40001" || code === "SQLITE_BUSY" || code.startsWith("SQLITE_BUSY_")
}

/**
 * How a transient failure is tried again: after 10 ms, doubling, for about
 * 1.3 s in all. Waiting here, rather than in SQLite's busy handler, keeps the
 * event loop free: better-sqlite3 sleeps on the calling thread while it waits.
 */
const laterRetries = Schedule.exponential(Duration.millis(20)).pipe(Schedule.intersect(Schedule.recurs(6)))

/** `write` (a statement or a whole transaction), tried again while it fails transiently. */
export const retryTransient = <A, E extends { readonly cause?: unknown }, R>(write: Effect.Effect<A, E, R>) =>
  // The first try pays for no schedule (nearly every write succeeds at once); a transient failure is
  // tried again after 10 ms, then 20, 40, … (seven more tries in all).
  Effect.catchIf(write, isTransient, () => Effect.retry(Effect.delay(write, Duration.millis(10)), { while: isTransient, schedule: laterRetries }))
