import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Exit } from "effect"
import { run } from "./cli/main"

// `a2a-ledger tail | head`: a reader that went away is the end of the output, not a crash.
process.stdout.on("error", (e: NodeJS.ErrnoException) => (e.code === "EPIPE" ? process.exit(0) : undefined))

/** Usage errors are already printed by the CLI; they only set the exit code. */
const usageError = Symbol("usage error")

run(process.argv).pipe(
  Effect.catchIf(ValidationError.isValidationError, () => Effect.succeed(usageError)),
  Effect.catchTag("StartupFailure", (e) => Console.error(`a2a-ledger: ${e.message}`).pipe(Effect.as(usageError))),
  Effect.provide(NodeContext.layer),
  (program) =>
    NodeRuntime.runMain(program, {
      // A signal (SIGINT, SIGTERM) interrupts the program: that is a clean stop, exit 0.
      teardown: (exit, onExit) =>
        onExit(
          Exit.isFailure(exit) ? (Cause.isInterruptedOnly(exit.cause) ? 0 : 1) : exit.value === usageError ? 1 : 0
        )
    })
)
