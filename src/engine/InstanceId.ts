import { Context, Layer } from "effect"
import { randomUUID } from "node:crypto"

/** Who this process is, recorded on every event it writes (metadata.instanceId). */
export class InstanceId extends Context.Tag("a2a-ledger/InstanceId")<InstanceId, string>() {}

export const layer = (id: string = randomUUID()) => Layer.succeed(InstanceId, id)
