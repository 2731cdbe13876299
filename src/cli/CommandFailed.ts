import { Data } from "effect"

/** A command could not do its work (port taken, store unreadable, bad input): said in one line, exit code 1. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{ readonly message: string }> {}
