import * as net from "node:net"
import { defineConfig } from "vitest/config"

/**
 * Three projects: everything on SQLite, and the end-to-end suites again on
 * PostgreSQL (A2A_TEST_PG_URL, by default the local server). Where PostgreSQL
 * cannot be reached, the second project is left out with one line saying
 * why, except with CI=true, where its suites run and fail. Then, alone (so it
 * neither slows nor is slowed by the rest), the crash-safety test, which
 * kills servers under load on both stores.
 */
const pgUrl = new URL(process.env.A2A_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test")

const reachable = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port, timeout: 2_000 })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.once("connect", () => done(true))
    socket.once("timeout", () => done(false))
    socket.once("error", () => done(false))
  })

export default defineConfig(async () => {
  const pg = process.env.CI === "true" || (await reachable(pgUrl.hostname, Number(pgUrl.port || 5432)))
  if (!pg) console.log(`skipping the end-to-end suites on PostgreSQL: nothing listens at ${pgUrl.host}; set A2A_TEST_PG_URL`)
  return {
    test: {
      reporters: ["default", "./test/support/summary-reporter.ts"],
      testTimeout: 30_000,
      hookTimeout: 30_000,
      // End-to-end suites each start a server and write SQLite files: keep files
      // in separate forks, but few at once on a 2-core machine.
      pool: "forks",
      poolOptions: { forks: { maxForks: 2, minForks: 1 } },
      projects: [
        { extends: true, test: { name: "main", include: ["test/**/*.test.ts"], exclude: ["test/chaos/**"] } },
        ...(pg ? [{ extends: true, test: { name: "e2e-postgres", include: ["test/e2e/**/*.test.ts"], env: { A2A_TEST_STORE: "postgres" } } }] : []),
        { extends: true, test: { name: "chaos", include: ["test/chaos/**/*.test.ts"], sequence: { groupOrder: 1 } } }
      ]
    }
  }
})
