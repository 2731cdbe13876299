// Example 1: an Effect program that embeds the engine on SQLite, with an agent that uses one of the
// application's own services (a Translator here; an LLM client or a database in a real app).
//
//   npm run build, then: npx tsx examples/effect-embed.ts [./data/example.db]
import { Context, Effect, Layer, Stream } from "effect"
import { type Agent, anonymous, layer, Outcome, TaskEngine } from "a2a-ledger"

// The application's own service, with its own layer.
class Translator extends Context.Tag("example/Translator")<Translator, { readonly toFrench: (text: string) => Effect.Effect<string> }>() {}
const TranslatorLive = Layer.succeed(Translator, {
  toFrench: (text) => Effect.succeed(text === "hello" ? "bonjour" : `${text} (en français)`)
})

// An agent that requires it: Agent<Translator>.
const translator: Agent<Translator> = {
  name: "Translator",
  description: "Translates English into French.",
  version: "1.0.0",
  skills: [{ id: "translate", name: "Translate", description: "English to French", tags: ["text"] }],
  run: (ctx) =>
    Effect.gen(function* () {
      const translate = yield* Translator
      yield* ctx.progress("Translating…")
      const text = yield* translate.toFrench(ctx.input.parts[0]?.text ?? "")
      return Outcome.complete(undefined, { artifacts: [{ artifactId: "translation", parts: [{ text }] }] })
    })
}

const program = Effect.gen(function* () {
  const engine = yield* TaskEngine
  const outcome = yield* engine.sendAndSettle({
    caller: anonymous,
    message: { messageId: crypto.randomUUID(), role: "ROLE_USER", parts: [{ text: "hello" }] }
  })
  if (outcome._tag !== "Task") return yield* Effect.dieMessage("expected a task")
  const task = outcome.snapshot.task!
  // The task's whole history, as a stream replays it from the log.
  const updates = yield* engine.watch(task.id, { stopAt: () => true, afterVersion: 0 }).pipe(Stream.runCount)
  yield* Effect.log(`task ${task.id}: ${task.status.state}, ${task.artifacts[0]?.parts[0]?.text}, ${updates} updates`)
  return { state: task.status.state, translation: task.artifacts[0]?.parts[0]?.text }
})

// The engine's layer requires Translator (the agent does); the app provides it like any layer.
const EngineLive = layer({ agent: translator, db: process.argv[2] ?? "./data/example-effect.db" }).pipe(Layer.provide(TranslatorLive))

const result = await Effect.runPromise(Effect.scoped(program.pipe(Effect.provide(EngineLive))))
console.log(JSON.stringify(result))
