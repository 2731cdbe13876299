import { Command } from "@effect/cli"
import { deadLetters } from "./deadLetters"
import { doctor } from "./doctor"
import { logTools } from "./logTools"
import { serve } from "./serve"
import { tasks } from "./tasks"
import { transfer } from "./transfer"

export const root = Command.make("a2a-ledger").pipe(
  Command.withDescription("A durable task engine for the A2A protocol"),
  Command.withSubcommands([serve, tasks, ...logTools, doctor, ...transfer, deadLetters])
)

export const run = Command.run(root, { name: "a2a-ledger", version: "0.1.0" })
