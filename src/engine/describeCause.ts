import { Cause, Option } from "effect"

/** A turn's failure in a few words: its error's message, a string as it is, anything else as JSON. */
export const describeCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  const error = Option.isSome(failure) ? failure.value : Option.getOrUndefined(Cause.dieOption(cause))
  if (error instanceof Error) return error.message || error.name
  if (typeof error === "string") return error
  if (error !== undefined) {
    try {
      return JSON.stringify(error)
    } catch {
      return String(error)
    }
  }
  return Cause.pretty(cause).split("\n")[0] ?? "unknown failure"
}
