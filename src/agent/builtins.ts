import { Duration, Effect } from "effect"
import type { Message } from "../domain/Message.js"
import { textOf } from "../domain/Message.js"
import { type Agent, Outcome } from "./Agent.js"

/** `slow-worker`: the reference example's four-step analysis with a report artifact. */
export const slowWorker = (options: { readonly stepDelayMs?: number } = {}): Agent => {
  const steps: ReadonlyArray<readonly [string, number]> = [
    ["Step 1/4: Loading data...", 500],
    ["Step 2/4: Running analysis...", 800],
    ["Step 3/4: Generating insights...", 600],
    ["Step 4/4: Compiling report...", 400]
  ]
  return {
    name: "Slow Worker",
    description: "Runs a multi-step analysis in the background, reporting progress, and delivers a report artifact.",
    version: "1.0.0",
    skills: [
      {
        id: "analysis",
        name: "Data analysis",
        description: "Analyses the text it is given in four steps and returns a report.",
        tags: ["analysis", "long-running", "demo"],
        examples: ["Analyze Q3 sales figures"]
      }
    ],
    // Durable steps (docs/agents.md): each stage's announcement and its work are steps of their own, so a
    // turn that runs again after a crash neither repeats a finished stage nor says "Step 2/4" twice; only
    // the stage it was in runs again. The report rides with the completion: delivered once.
    run: (ctx) =>
      Effect.gen(function* () {
        for (const [i, [text, ms]] of steps.entries()) {
          yield* ctx.step(`announce ${i + 1}`, ctx.progress(text))
          yield* ctx.step(`stage ${i + 1}`, Effect.sleep(Duration.millis(options.stepDelayMs ?? ms)))
        }
        const input = textOf(ctx.input)
        const report = {
          artifactId: "analysis-report",
          name: "analysis-report",
          description: "The analysis report",
          parts: [
            {
              text:
                `Analysis Report for: ${input}\n\n` +
                "Findings:\n- Trend is upward over the period.\n- Two outliers were excluded.\n" +
                "- Confidence is moderate; more data would help.\n"
            }
          ]
        }
        return Outcome.complete("Analysis complete. See the attached report.", { artifacts: [report] })
      })
  }
}

/** `echo`: WORKING, one artifact echoing the text, COMPLETED. */
export const echo: Agent = {
  name: "Echo",
  description: "Echoes the text of each message back as an artifact.",
  version: "1.0.0",
  skills: [{ id: "echo", name: "Echo", description: "Returns the message text.", tags: ["demo", "test"] }],
  // The artifact rides with the completion: one commit for the turn's start, its artifact and its end.
  run: (ctx) =>
    Effect.succeed(Outcome.complete(undefined, { artifacts: [{ artifactId: "echo", name: "echo", parts: [{ text: textOf(ctx.input) }] }] }))
}

/**
 * `conformance`: behaves as the official A2A TCK's reference agent, choosing
 * what to do from the prefix of the messageId. A follow-up message is
 * judged by its own prefix.
 */
const prefixOf = (message: Message) => message.messageId

export const conformance: Agent = {
  name: "A2A Conformance Agent",
  description: "Behaves as the A2A TCK expects, chosen by the prefix of each messageId.",
  version: "1.0.0",
  skills: [{ id: "conformance", name: "Conformance", description: "Deterministic behaviours for the A2A TCK.", tags: ["test", "tck"] }],
  reply: (message) => Effect.succeed(prefixOf(message).startsWith("tck-message-response") ? [{ text: "Direct message response" }] : undefined),
  run: (ctx) =>
    Effect.gen(function* () {
      const id = prefixOf(ctx.input)
      if (id.startsWith("tck-complete-task")) return Outcome.complete("Hello from TCK")
      if (id.startsWith("tck-input-required")) return Outcome.requireInput("Please provide more input.")
      if (id.startsWith("tck-artifact-text")) {
        yield* ctx.artifact({ artifactId: "text-artifact", name: "text", parts: [{ text: "Generated text content" }] })
        return Outcome.complete()
      }
      if (id.startsWith("tck-artifact-file-url")) {
        yield* ctx.artifact({
          artifactId: "file-url-artifact",
          name: "file",
          parts: [{ url: "https://example.com/output.txt", filename: "output.txt", mediaType: "text/plain" }]
        })
        return Outcome.complete()
      }
      if (id.startsWith("tck-artifact-file")) {
        yield* ctx.artifact({
          artifactId: "file-artifact",
          name: "file",
          parts: [{ raw: Buffer.from("Generated file content").toString("base64"), filename: "output.txt", mediaType: "text/plain" }]
        })
        return Outcome.complete()
      }
      if (id.startsWith("tck-artifact-data")) {
        yield* ctx.artifact({ artifactId: "data-artifact", name: "data", parts: [{ data: { key: "value", count: 42 } }] })
        return Outcome.complete()
      }
      if (id.startsWith("tck-stream-")) {
        yield* ctx.artifact({ artifactId: "stream-artifact", name: "stream", parts: [{ text: "Streamed content" }] })
        return Outcome.complete()
      }
      return Outcome.complete()
    })
}

/**
 * `mixed`: a different kind of work by the first word of the message, so one
 * server sees them all at once (the crash-safety test drives it):
 * `fast` completes at once; `slow` runs four durable steps, each reporting
 * its start (each `stepDelayMs`, default 200 ms; `slow 60` runs sixty, up to
 * 1,000) and delivers an artifact; `nap` records a step, sleeps on a durable timer (`nap 800` for 800 ms,
 * default 1 s, up to an hour), records another step and completes; `ask` asks for input, and the answer
 * completes it; `fail` fails. Anything else is `fast`.
 */
export const mixed = (options: { readonly stepDelayMs?: number } = {}): Agent => ({
  name: "Mixed Workload",
  description: "Fast, slow, napping, input-asking or failing work, chosen by the first word of the message (fast, slow, nap, ask, fail).",
  version: "1.0.0",
  skills: [{ id: "mixed", name: "Mixed workload", description: "Does the kind of work its message names.", tags: ["test", "demo"] }],
  run: (ctx) =>
    Effect.gen(function* () {
      // A turn that answers a question completes, whatever the first message said.
      if (ctx.input.messageId !== ctx.task.history?.[0]?.messageId) return Outcome.complete(`Thanks for: ${textOf(ctx.input)}`)
      const words = textOf(ctx.input).trim().split(/\s+/)
      const kind = words[0]?.toLowerCase()
      switch (kind) {
        case "slow": {
          const asked = Number(words[1])
          const steps = Number.isInteger(asked) && asked >= 1 ? Math.min(asked, 1000) : 4
          // Durable steps, each saying it started: a stage recorded before a crash is not run again (the
          // crash-safety test checks that no "Step k/n" follows stage k's record).
          for (let step = 1; step <= steps; step++) {
            yield* ctx.step(
              `stage ${step}`,
              Effect.zipRight(ctx.progress(`Step ${step}/${steps}`), Effect.sleep(Duration.millis(options.stepDelayMs ?? 200)))
            )
          }
          yield* ctx.artifact({ artifactId: "result", name: "result", parts: [{ text: `Done: ${textOf(ctx.input)}` }] })
          return Outcome.complete()
        }
        case "nap": {
          const asked = Number(words[1])
          const napMs = Number.isInteger(asked) && asked >= 0 ? Math.min(asked, 3_600_000) : 1_000
          yield* ctx.step("before the nap", ctx.progress("Napping"))
          yield* ctx.sleep(Duration.millis(napMs))
          yield* ctx.step("after the nap", ctx.progress("Awake"))
          return Outcome.complete("Rested.")
        }
        case "ask":
          return Outcome.requireInput("Which one?")
        case "fail":
          return Outcome.fail("asked to fail")
        default:
          return Outcome.complete("Done.")
      }
    })
})

export const builtinNames = ["slow-worker", "echo", "conformance", "mixed"] as const
export type BuiltinName = (typeof builtinNames)[number]

export const builtin = (name: BuiltinName, options: { readonly stepDelayMs?: number } = {}): Agent => {
  switch (name) {
    case "slow-worker":
      return slowWorker(options)
    case "echo":
      return echo
    case "conformance":
      return conformance
    case "mixed":
      return mixed(options)
  }
}
