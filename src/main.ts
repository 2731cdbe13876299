import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Exit } from "effect"
import { run } from "./cli/main"

/** Usage errors are already printed by the CLI; they only set the exit code. */
const usageError = Symbol("usage error")

run(process.argv).pipe(
  Effect.catchIf(ValidationError.isValidationError, () => Effect.succeed(usageError)),
  Effect.catchTag("StartupFailure", (e) => Console.error(`a2a-ledger: ${e.message}`).pipe(Effect.as(usageError))),
  Effect.provide(NodeContext.layer),
  (program) =>
    NodeRuntime.runMain(program, {
      teardown: (exit, onExit) => onExit(Exit.isFailure(exit) || (Exit.isSuccess(exit) && exit.value === usageError) ? 1 : 0)
    })
)
