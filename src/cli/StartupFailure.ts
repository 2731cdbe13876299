import { Data } from "effect"

/** A command could not do its work (port taken, store unreadable, bad input): said in one line, exit code 1. */
export class StartupFailure extends Data.TaggedError("StartupFailure")<{ readonly message: string }> {}
