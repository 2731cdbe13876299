import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { echo } from "../../src/agent/builtins"
import * as Store from "../../src/eventlog/Store"
import { post, rpc } from "../support/rpc"
import { type RunningServer, startServer } from "../support/server"

let server: RunningServer
beforeAll(async () => {
  server = await startServer({ agent: echo })
})
afterAll(() => server.close())

describe("-32603 when the store fails", () => {
  it("answers -32603 saying the store is unavailable, with no detail of the cause, and keeps serving", async () => {
    // Break the store underneath the server: its read model table disappears.
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* sql`DROP TABLE a2a_tasks`
        }).pipe(Effect.provide(Store.layer(server.db, { exclusive: false })))
      )
    )
    const r = await rpc(server.url, "GetTask", { id: "anything" })
    expect(r.error!.code).toBe(-32603)
    expect(r.error!.message).toMatch(/^The task store is unavailable \(the store failed\)/)
    expect(JSON.stringify(r)).not.toMatch(/a2a_tasks|no such table|does not exist|relation|SqlError|at .*\.ts/)
    // The process is still up and still parses requests.
    const { text } = await post(server.url, "{")
    expect(JSON.parse(text).error.code).toBe(-32700)
  })
})
