import { Command } from "@effect/cli"
import { deadLetters } from "./deadLetters"
import { serve } from "./serve"
import { transfer } from "./transfer"

export const root = Command.make("a2a-ledger").pipe(
  Command.withDescription("A durable task engine for the A2A protocol"),
  Command.withSubcommands([serve, deadLetters, ...transfer])
)

export const run = Command.run(root, { name: "a2a-ledger", version: "0.1.0" })
