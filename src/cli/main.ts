import { Command } from "@effect/cli"
import { deadLetters } from "./deadLetters"
import { serve } from "./serve"

export const root = Command.make("a2a-ledger").pipe(
  Command.withDescription("A durable task engine for the A2A protocol"),
  Command.withSubcommands([serve, deadLetters])
)

export const run = Command.run(root, { name: "a2a-ledger", version: "0.1.0" })
