import { Cause, Effect, Exit, Layer, ManagedRuntime } from "effect"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { parentPort, workerData } from "node:worker_threads"
import * as SqlEventLog from "../eventlog/SqlEventLog.js"
import * as MessageIndex from "./MessageIndex.js"
import { foldPage, verifyPage } from "./Refold.js"
import * as TaskReadModel from "./TaskReadModel.js"
import type { ScanReply, ScanRequest } from "./ScanThreads.js"

/**
 * A scan thread (ScanThreads): judges pages of a verify or a rebuild on a
 * read-only connection of its own to the SQLite file, with the same code the
 * scan runs in its own thread (`verifyPage`, `foldPage`). It writes nothing.
 */
const port = parentPort!
const { filename } = workerData as { readonly filename: string }

const services = Layer.mergeAll(SqlEventLog.layer, TaskReadModel.layer, MessageIndex.layer).pipe(
  Layer.provide(SqliteClient.layer({ filename, readonly: true, disableWAL: true }))
)
const runtime = ManagedRuntime.make(services)

const reply = (message: ScanReply) => port.postMessage(message)
const failure = (cause: Cause.Cause<unknown>) => {
  const error = Cause.squash(cause) as { message?: string }
  return error?.message ?? String(error)
}

port.on("message", (request: ScanRequest) => {
  const judge =
    request.kind === "verify" ? verifyPage(request.after, request.ids, request.keysSince) : foldPage(request.after, request.ids, request.keysSince)
  void runtime
    .runPromiseExit(judge)
    .then((exit) => reply(Exit.isSuccess(exit) ? { id: request.id, result: exit.value } : { id: request.id, error: failure(exit.cause) }))
})

void runtime.runPromiseExit(Effect.void).then((exit) => reply(Exit.isSuccess(exit) ? { ready: true } : { failed: failure(exit.cause) }))
