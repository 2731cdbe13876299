import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { run } from "./cli/main"

run(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
