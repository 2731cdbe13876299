import { Layer } from "effect"
import type { Agent } from "../agent/Agent"
import * as EngineConfig from "../engine/EngineConfig"
import * as EventHub from "../engine/EventHub"
import * as InstanceId from "../engine/InstanceId"
import * as Supervisor from "../engine/Supervisor"
import * as TaskEngine from "../engine/TaskEngine"
import * as TaskWriter from "../engine/TaskWriter"

export interface EngineLayerOptions {
  readonly agent: Agent
  readonly maxWorkers?: number
  readonly recovery?: EngineConfig.RecoveryPolicy
  readonly instanceId?: string
  /** Unread events kept per live stream before the oldest are dropped (and re-read from the log). */
  readonly hubCapacity?: number
}

/**
 * The task engine (writer, supervisor, hub, façade) for one agent. Needs a
 * store (see `Store`). Building it recovers unfinished tasks.
 */
export const layer = (options: EngineLayerOptions) =>
  TaskEngine.layer.pipe(
    Layer.provideMerge(Supervisor.layer),
    Layer.provideMerge(TaskWriter.layer),
    Layer.provideMerge(
      Layer.mergeAll(
        EventHub.layer(options.hubCapacity),
        InstanceId.layer(options.instanceId),
        EngineConfig.layerAgent(options.agent),
        EngineConfig.layerConfig({
          ...(options.maxWorkers !== undefined ? { maxWorkers: options.maxWorkers } : {}),
          ...(options.recovery !== undefined ? { recovery: options.recovery } : {})
        })
      )
    )
  )
