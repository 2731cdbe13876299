import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { describe, it } from "vitest"
import * as Store from "../../src/eventlog/Store"

/**
 * PostgreSQL for tests: the server at A2A_TEST_PG_URL (on these machines and
 * in CI, postgres://postgres@127.0.0.1:5432/test). Every store a test makes
 * lives in a schema of its own, dropped afterwards, so runs never collide and
 * leave nothing behind. With CI=true an unreachable server fails the run;
 * elsewhere the PostgreSQL suites skip, saying why in one line.
 */
export const pgBaseUrl = process.env.A2A_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const admin = PgClient.layer({ url: Redacted.make(pgBaseUrl), maxConnections: 2, connectTimeout: "3 seconds" })

const probe: Promise<true | string> = Effect.runPromise(
  Effect.scoped(Layer.build(admin)).pipe(
    Effect.as(true as const),
    Effect.catchAllCause((cause) => Effect.succeed(String(cause).split("\n")[0] ?? "unreachable"))
  )
)

/** The URL of `schema` on the test server: every connection's search_path is that schema. */
export const schemaUrl = (schema: string) =>
  `${pgBaseUrl}${pgBaseUrl.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`

/** Run `f` on an admin connection to the test server (not inside any test schema). */
export const adminRun = <A>(f: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(PgClient.PgClient, f).pipe(Effect.provide(admin))))

/** A new, empty schema; `drop` removes it with everything in it. */
export const freshSchema = async () => {
  const schema = `a2a_test_${randomBytes(6).toString("hex")}`
  await adminRun((sql) => sql.unsafe(`CREATE SCHEMA ${schema}`))
  return {
    schema,
    url: schemaUrl(schema),
    drop: () => adminRun((sql) => Effect.asVoid(sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)))
  }
}

/** A store layer on a schema of its own, dropped when the layer is released. */
export const pgStoreLayer = () =>
  Layer.unwrapScoped(
    Effect.acquireRelease(Effect.promise(freshSchema), (s) => Effect.promise(s.drop).pipe(Effect.ignore)).pipe(
      Effect.map((s) => Store.layerPg(s.url, { maxConnections: 4 }))
    )
  )

/** `describe` for suites that need PostgreSQL (see the module comment for when they fail or skip). */
export const describePg = async (title: string, body: () => void) => {
  const reachable = await probe
  if (reachable === true) return describe(title, body)
  if (process.env.CI === "true") {
    return describe(title, () =>
      it("reaches PostgreSQL (CI=true requires it)", () => {
        throw new Error(`cannot reach PostgreSQL at A2A_TEST_PG_URL (${pgBaseUrl.replace(/\/\/[^@]*@/, "//…@")}): ${reachable}`)
      })
    )
  }
  console.log(`skipping "${title}": PostgreSQL is not reachable at ${pgBaseUrl.replace(/\/\/[^@]*@/, "//…@")} (${reachable}); set A2A_TEST_PG_URL`)
  return describe.skip(title, body)
}
