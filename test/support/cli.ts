import { NodeContext } from "@effect/platform-node"
import { Effect, Exit, Fiber } from "effect"
import { format } from "node:util"
import { runToExitCode } from "../../src/cli/main"

export interface CliRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/**
 * `a2a-ledger <args>` run in this process, exactly as `src/main.ts` runs it
 * (same commands, same exit codes), with its console captured. Much faster
 * than a child process; `runCli` (process.ts) remains for what needs one.
 */
const capture = (args: ReadonlyArray<string>) => {
  const out = { stdout: "", stderr: "" }
  const program = Effect.flatMap(Effect.console, (base) => {
    const write =
      (stream: "stdout" | "stderr") =>
      (...a: ReadonlyArray<unknown>) => {
        out[stream] += `${format(...a)}\n`
      }
    const console = {
      ...base,
      log: (...a: ReadonlyArray<unknown>) => Effect.sync(() => write("stdout")(...a)),
      error: (...a: ReadonlyArray<unknown>) => Effect.sync(() => write("stderr")(...a)),
      unsafe: { ...base.unsafe, log: write("stdout"), error: write("stderr") }
    }
    return Effect.withConsole(runToExitCode(["node", "a2a-ledger", ...args]), console)
  }).pipe(Effect.provide(NodeContext.layer))
  return { out, program }
}

export const cli = async (args: ReadonlyArray<string>): Promise<CliRun> => {
  const { out, program } = capture(args)
  const code = await Effect.runPromise(program)
  return { code, ...out }
}

/** A command that runs until it stops by itself or is stopped (`tail --follow`), with its output so far. */
export const cliRunning = (args: ReadonlyArray<string>) => {
  const { out, program } = capture(args)
  const fiber = Effect.runFork(program)
  const waitFor = async (pattern: RegExp, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs
    while (!pattern.test(out.stdout)) {
      if (Date.now() > deadline) throw new Error(`not seen in ${timeoutMs} ms: ${pattern}; output:\n${out.stdout}${out.stderr}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  return {
    output: () => out.stdout,
    waitFor,
    /** The exit code once it stopped by itself (undefined when stopped from outside). */
    exited: Effect.runPromise(Fiber.await(fiber)).then((exit) => (Exit.isSuccess(exit) ? exit.value : undefined)),
    stop: () => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined)
  }
}
