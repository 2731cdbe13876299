import { version } from "../version.js"
import { Command, ValidationError } from "@effect/cli"
import { Console, Effect } from "effect"
import { deadLetters } from "./deadLetters.js"
import { doctor } from "./doctor.js"
import { readableOutput } from "./helpText.js"
import { logTools } from "./logTools.js"
import { serve } from "./serve.js"
import { task } from "./task.js"
import { tasks } from "./tasks.js"
import { transfer } from "./transfer.js"

export const root = Command.make("a2a-ledger").pipe(
  Command.withDescription("A durable task engine for the A2A protocol"),
  Command.withSubcommands([serve, tasks, task, ...logTools, doctor, ...transfer, deadLetters])
)

export const run = Command.run(root, { name: "a2a-ledger", version })

/**
 * Run one command line to its exit code: 0, or 1 for a usage error (the CLI
 * already printed it) or a command that could not do its work (one line on
 * standard error). Any other failure is a defect and stays one.
 */
export const runToExitCode = (argv: ReadonlyArray<string>) =>
  readableOutput(
    argv,
    { isTTY: process.stdout.isTTY === true, columns: process.stdout.columns },
    run(argv).pipe(
      Effect.as(0),
      Effect.catchIf(ValidationError.isValidationError, () => Effect.succeed(1)),
      Effect.catchTag("CommandFailed", (e) => Console.error(`a2a-ledger: ${e.message}`).pipe(Effect.as(1)))
    )
  )
