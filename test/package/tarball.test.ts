import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { tempDir } from "../support/server"

/**
 * The package as a user gets it (issue 12): `npm pack` of a copy of this checkout (so the build it runs
 * does not race other suites over dist/), installed into an empty project, offline. Installing is what
 * npm does with a tarball, minus the download: the tarball unpacked into node_modules/a2a-ledger, its
 * bin linked, and exactly the dependencies and peer dependencies its package.json declares linked from
 * this workspace's node_modules, so an import of anything undeclared fails as it would for a user.
 * Then a consumer is type-checked under NodeNext and under Bundler resolution, and run.
 */
const root = path.resolve(__dirname, "../..")
const tsc = path.join(root, "node_modules/typescript/bin/tsc")
const work = tempDir("a2a-ledger-pack-")
const consumer = path.join(work, "consumer")
const installed = path.join(consumer, "node_modules/a2a-ledger")

let files: ReadonlyArray<string> = []
let manifest: {
  readonly bin: Record<string, string>
  readonly dependencies: Record<string, string>
  readonly peerDependencies: Record<string, string>
  readonly exports: Record<string, unknown>
}

/**
 * A command's output. Asynchronous on purpose: `npm pack` builds for half a minute or more, and a test
 * worker whose event loop is blocked that long misses vitest's own 60 s RPC deadline ("Timeout calling
 * onTaskUpdate"), which fails the run although every test passed.
 */
const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  new Promise<string>((resolve, reject) => {
    execFile(command, args, { cwd, encoding: "utf8", timeout: 240_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error === null
        ? resolve(stdout)
        : reject(new Error(`${path.basename(command)} ${args.join(" ")} failed: ${error.message}\n${stdout ?? ""}\n${stderr ?? ""}`))
    )
  })

/** The checkout's files a pack reads (what git tracks, not dist/ or data), with the workspace's node_modules. */
const copyCheckout = (to: string) => {
  for (const entry of ["package.json", "README.md", "tsconfig.json", "tsconfig.build.json", "bin", "scripts", "src", "docs"]) {
    fs.cpSync(path.join(root, entry), path.join(to, entry), { recursive: true })
  }
  fs.symlinkSync(path.join(root, "node_modules"), path.join(to, "node_modules"))
}

const link = (name: string, into: string) => {
  const target = path.join(into, name)
  fs.mkdirSync(path.dirname(target), { recursive: true })
  fs.symlinkSync(path.join(root, "node_modules", name), target)
}

beforeAll(async () => {
  const checkout = path.join(work, "checkout")
  fs.mkdirSync(checkout)
  copyCheckout(checkout)
  const tarball = (await run("npm", ["pack", "--silent", "--pack-destination", work], checkout)).trim().split("\n").pop()!
  files = (await run("tar", ["tzf", path.join(work, tarball)], work))
    .trim()
    .split("\n")
    .map((f) => f.replace(/^package\//, ""))

  fs.mkdirSync(installed, { recursive: true })
  await run("tar", ["xzf", path.join(work, tarball), "-C", installed, "--strip-components=1"], work)
  manifest = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8"))
  const modules = path.join(consumer, "node_modules")
  for (const name of [...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies), "@types/node"]) link(name, modules)
  for (const [name, file] of Object.entries(manifest.bin)) {
    fs.mkdirSync(path.join(modules, ".bin"), { recursive: true })
    fs.symlinkSync(path.join("..", "a2a-ledger", file), path.join(modules, ".bin", name))
  }
  fs.writeFileSync(path.join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  fs.cpSync(path.join(__dirname, "consumer.ts"), path.join(consumer, "consumer.ts"))
  fs.cpSync(path.join(root, "examples"), path.join(consumer, "examples"), { recursive: true })
}, 300_000)

const examples = fs.readdirSync(path.join(root, "examples")).filter((f) => f.endsWith(".ts"))

const tsconfig = (moduleResolution: "NodeNext" | "Bundler", emit: boolean) => ({
  compilerOptions: {
    target: "ES2022",
    module: moduleResolution === "NodeNext" ? "NodeNext" : "ESNext",
    moduleResolution,
    strict: true,
    types: ["node"],
    // As \`tsc --init\` sets it: @effect/sql-pg's declarations name \`pg\`'s, which ship apart (@types/pg).
    skipLibCheck: true,
    ...(emit ? { outDir: "out" } : { noEmit: true })
  },
  files: ["consumer.ts", ...examples.map((f) => `examples/${f}`)]
})

describe("the npm package", () => {
  it("holds the built library, its types, the command and the docs, and no tests, benches or sources", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "dist/lib/index.js",
        "dist/lib/index.d.ts",
        "dist/lib/testing.js",
        "dist/lib/testing.d.ts",
        "dist/main.js",
        "bin/a2a-ledger.mjs",
        "README.md"
      ])
    )
    expect(files.filter((f) => /^(test|bench|src|scripts)\/|Dockerfile|docker-compose|\.ci\/|tsconfig/.test(f))).toEqual([])
    expect(Object.keys(manifest.exports).sort()).toEqual([".", "./testing"])
    expect(Object.keys(manifest.peerDependencies)).toContain("effect")
    expect(Object.keys(manifest.dependencies).filter((d) => d === "effect" || d.startsWith("@effect/"))).toEqual([])
  })

  it("a consumer type-checks against it under NodeNext and under Bundler resolution", async () => {
    for (const resolution of ["NodeNext", "Bundler"] as const) {
      fs.writeFileSync(path.join(consumer, `tsconfig.${resolution}.json`), JSON.stringify(tsconfig(resolution, false)))
      await run(process.execPath, [tsc, "-p", `tsconfig.${resolution}.json`], consumer)
    }
  }, 120_000)

  it("a consumer runs: the Promise API, the testing helpers and an Effect program with the app's own effect", async () => {
    fs.writeFileSync(path.join(consumer, "tsconfig.json"), JSON.stringify(tsconfig("NodeNext", true)))
    await run(process.execPath, [tsc, "-p", "tsconfig.json"], consumer)
    const out = JSON.parse(await run(process.execPath, ["out/consumer.js", path.join(consumer, "tasks.db")], consumer)) as Record<string, unknown>
    expect(out).toEqual({
      promise: { state: "TASK_STATE_COMPLETED", artifact: "echo: from a consumer", history: ["from a consumer", "thinking"] },
      testing: "TASK_STATE_COMPLETED",
      effect: "TASK_STATE_COMPLETED",
      notFound: { name: "TaskNotFoundError", code: -32001 },
      deepImport: "ERR_PACKAGE_PATH_NOT_EXPORTED"
    })
  }, 120_000)

  it("the examples run against it (each type-checked above): the Effect program, the mounted routes, the Promise script", async () => {
    // Each prints its result as JSON on its last line (the Effect ones log before it).
    const output = async (name: string) =>
      JSON.parse(
        (await run(process.execPath, [`out/examples/${name.replace(/\.ts$/, ".js")}`, path.join(consumer, `${name}.db`)], consumer))
          .trim()
          .split("\n")
          .pop()!
      )
    expect(examples.sort()).toEqual(["effect-embed.ts", "mount-routes.ts", "promise.ts"])
    expect(await output("effect-embed.ts")).toEqual({ state: "TASK_STATE_COMPLETED", translation: "bonjour" })
    expect(await output("mount-routes.ts")).toEqual({ status: { app: "ok" }, jsonrpc: "/agents/echo/a2a", reply: "echo: hi" })
    expect(await output("promise.ts")).toEqual({
      streamed: ["1…", "2…", "3…", "artifact count", "Counted."],
      canceled: "TASK_STATE_CANCELED",
      cancelFinished: -32002
    })
  }, 120_000)

  it("its a2a-ledger command runs from the install: help, and verify over the store the consumer wrote", async () => {
    const bin = path.join(consumer, "node_modules/.bin/a2a-ledger")
    expect(await run(bin, ["--help"], consumer)).toMatch(/USAGE/)
    const report = JSON.parse(await run(bin, ["verify", "--db", path.join(consumer, "tasks.db"), "--json"], consumer)) as {
      tasks: number
      problems: Array<unknown>
    }
    expect(report).toMatchObject({ tasks: 1, problems: [] })
  }, 120_000)
})
