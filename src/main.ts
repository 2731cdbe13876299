import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit } from "effect"
import { runToExitCode } from "./cli/main.js"

// `a2a-ledger tail | head`: a reader that went away is the end of the output, not a crash.
process.stdout.on("error", (e: NodeJS.ErrnoException) => (e.code === "EPIPE" ? process.exit(0) : undefined))

// No spans while nothing records them (no tracer is configured; issue 14 adds one): every SQL statement
// through @effect/sql makes a span with its text as an attribute, and every fiber carries the current one.
runToExitCode(process.argv).pipe(Effect.provide(NodeContext.layer), Effect.withTracerEnabled(false), (program) =>
  NodeRuntime.runMain(program, {
    // A signal (SIGINT, SIGTERM) interrupts the program: that is a clean stop, exit 0.
    teardown: (exit, onExit) =>
      onExit(Exit.isFailure(exit) ? (Cause.isInterruptedOnly(exit.cause) ? 0 : 1) : typeof exit.value === "number" ? exit.value : 0)
  })
)
