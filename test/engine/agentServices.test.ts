import { describe, expect, expectTypeOf, it } from "vitest"
import { Context, Effect, Layer, Logger, LogLevel, Ref } from "effect"
import { type Agent, Outcome } from "../../src/agent/Agent"
import { textOf } from "../../src/domain/Message"
import { anonymous, TaskEngine } from "../../src/engine/TaskEngine"
import * as Embedded from "../../src/layers/Embedded"
import { userMessage } from "../support/fixtures"

/**
 * Agents may require the application's services (issue 12): `Agent<R>`, and the engine layer built with
 * it requires `R`, provided with an ordinary layer that is built once for every turn of every task.
 */
class Greeter extends Context.Tag("test/Greeter")<Greeter, { readonly greet: (name: string) => Effect.Effect<string> }>() {}
class Calls extends Context.Tag("test/Calls")<Calls, Ref.Ref<number>>() {}

const greeting: Agent<Greeter | Calls> = {
  name: "Greeting agent",
  description: "greets through the application's Greeter",
  version: "1.0.0",
  skills: [],
  reply: (message) => (textOf(message) === "direct" ? Effect.map(Greeter, () => [{ text: "a direct answer" }]) : Effect.succeed(undefined)),
  run: (ctx) =>
    Effect.gen(function* () {
      const greeter = yield* Greeter
      yield* Ref.update(yield* Calls, (n) => n + 1)
      return Outcome.complete(yield* greeter.greet(textOf(ctx.input)))
    })
}

describe("Agent<R>: agents that require the application's services", () => {
  it("the engine layer requires what its agent requires, and nothing once that is provided", () => {
    const engine = Embedded.layer({ agent: greeting, db: ":memory:" })
    expectTypeOf<Layer.Layer.Context<typeof engine>>().toEqualTypeOf<Greeter | Calls>()
    const provided = engine.pipe(
      Layer.provide(Layer.succeed(Greeter, { greet: (n) => Effect.succeed(n) })),
      Layer.provide(Layer.effect(Calls, Ref.make(0)))
    )
    expectTypeOf<Layer.Layer.Context<typeof provided>>().toEqualTypeOf<never>()
    // An agent that requires nothing makes a layer that requires nothing.
    const plain: Agent = { ...greeting, reply: undefined, run: () => Effect.succeed(Outcome.complete()) }
    const plainEngine = Embedded.layer({ agent: plain, db: ":memory:" })
    expectTypeOf<Layer.Layer.Context<typeof plainEngine>>().toEqualTypeOf<never>()
  })

  it("every turn and direct reply runs with the services, whose layer is built once", async () => {
    let builds = 0
    const greeter = Layer.sync(Greeter, () => {
      builds++
      return { greet: (name: string) => Effect.succeed(`Hello, ${name}!`) }
    })
    const calls = Layer.effect(Calls, Ref.make(0))
    const program = Effect.gen(function* () {
      const engine = yield* TaskEngine
      const states: Array<string | undefined> = []
      for (const name of ["Ada", "Grace", "Edsger"]) {
        const outcome = yield* engine.sendAndSettle({ caller: anonymous, message: userMessage(name) })
        states.push(outcome._tag === "Task" ? outcome.snapshot.task?.status.message?.parts[0]?.text : "message")
      }
      const direct = yield* engine.send({ caller: anonymous, message: userMessage("direct") })
      return { states, direct: direct._tag === "Message" ? direct.message.parts : undefined, calls: yield* Ref.get(yield* Calls) }
    })
    const result = await Effect.runPromise(
      Effect.scoped(
        program.pipe(
          Effect.provide(
            Embedded.layer({ agent: greeting, db: ":memory:" }).pipe(
              Layer.provideMerge(Layer.merge(greeter, calls)),
              Layer.provide(Logger.minimumLogLevel(LogLevel.None))
            )
          )
        )
      )
    )
    expect(result).toEqual({ states: ["Hello, Ada!", "Hello, Grace!", "Hello, Edsger!"], direct: [{ text: "a direct answer" }], calls: 3 })
    expect(builds).toBe(1)
  })
})
