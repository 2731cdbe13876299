// Two builds. The command (`a2a-ledger`, `npm start`): the server compiled to one JavaScript file
// (dist/main.js) with esbuild, so it runs compiled code:
// no TypeScript compiled at run time (tsx's loader thread and its cache cost start-up time and memory), and
// one file to load instead of the thousands of small modules the Effect packages are made of (loading
// those took more than a second). Native addons stay in node_modules. A build takes about a second;
// `npm start` (scripts/start.mjs) runs it only when the sources changed since the last one, so dist/ never
// lags the sources. The library (`import … from "a2a-ledger"`): src/ compiled module by module by tsc
// (tsconfig.build.json) into dist/lib/, with declarations and source maps, for applications that embed the
// engine; `npm run build` (`node scripts/build.mjs`) builds both, unconditionally; `--cli` the command only.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

const root = path.resolve(import.meta.dirname, "..")
const out = path.join(root, "dist/main.js")
const worker = "src/eventlog/sqliteWriter.worker.mjs"

const scanThread = path.join(root, "dist/scanThread.js")

/**
 * The library: tsc's output in dist/lib/ (what package.json's `exports` name), and beside the writer's
 * module the thread file it starts, as in the command's build.
 */
export const buildLibrary = () => {
  fs.rmSync(path.join(root, "dist/lib"), { recursive: true, force: true })
  execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", path.join(root, "tsconfig.build.json")], {
    stdio: "inherit"
  })
  fs.copyFileSync(path.join(root, worker), path.join(root, "dist/lib/eventlog/sqliteWriter.worker.mjs"))
}

export const build = async ({ readable = false } = {}) => {
  // Loaded only when a build is due: importing esbuild costs start-up time too.
  const { build: esbuild } = await import("esbuild")
  const shared = {
    bundle: true,
    // Native addons (and the optional ones some drivers try to load) cannot be bundled. @grpc/grpc-js (with
    // the proto loader it brings, half a megabyte) is loaded from node_modules, only by a server with gRPC on.
    external: ["better-sqlite3", "pg-native", "msgpackr-extract", "cpu-features", "bufferutil", "utf-8-validate", "@grpc/grpc-js"],
    // Bundled CommonJS dependencies call require(); an ES module has none of its own.
    banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: true,
    // Without comments and whitespace the source V8 keeps (for lazy compiling and toString) is 2.6 MB instead
    // of 3.9, and the heap of an idle server 6 MiB smaller. Names are kept. `--readable` skips this, for a
    // profile read by source module (the `// src/…` comments).
    minifyWhitespace: !readable,
    minifySyntax: !readable,
    logLevel: "warning"
  }
  // The threads of `verify` and `rebuild` (src/projections/ScanThreads.ts finds this file beside the code
  // that starts them): a bundle of their own, so a thread loads only what judging a page takes.
  await esbuild({ ...shared, entryPoints: [path.join(root, "src/projections/scanThread.ts")], outfile: scanThread })
  await esbuild({
    ...shared,
    // The entry imports main.ts dynamically, so esbuild wraps every module in a function of its own that runs
    // at start-up (ES module order kept), instead of hoisting all their top-level code into the file's one
    // top-level function. V8 parses that function whole before it runs it: 22 MiB of parser memory for this
    // bundle, which glibc kept as resident memory for the life of the process. Module by module, the peak is
    // about 9 MiB, and an idle server 9 MiB smaller (docs/performance.md, step 33).
    stdin: { contents: 'await import("./main.ts")', resolveDir: path.join(root, "src"), sourcefile: "entry.ts", loader: "ts" },
    outfile: out
  })

  // The writer's SQLite thread runs a file of its own (src/eventlog/SqliteCommits.ts finds it beside the code
  // that starts it): plain JavaScript, copied as it is.
  fs.copyFileSync(path.join(root, worker), path.join(root, "dist/sqliteWriter.worker.mjs"))

  // esbuild escapes non-ASCII characters in strings, templates and regular expressions, but keeps them in
  // the comments of bundled packages (a typographic apostrophe, say). One such character makes V8 hold the
  // whole source as a two-byte string: 8 MiB of heap instead of 4, for as long as the process lives. In a
  // comment a placeholder does as well; one per UTF-16 unit keeps the source map's columns.
  const source = fs.readFileSync(out, "utf8")
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range of ASCII, NUL included, is the point
  if (/[^\x00-\x7f]/.test(source))
    fs.writeFileSync(
      out,
      // biome-ignore lint/suspicious/noControlCharactersInRegex: as above
      source.replace(/[^\x00-\x7f]/g, (c) => "?".repeat(c.length))
    )
}

/** The newest modification time under `dir` (files only), in ms. */
const newest = (dir) => {
  let latest = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    latest = Math.max(latest, entry.isDirectory() ? newest(full) : fs.statSync(full).mtimeMs)
  }
  return latest
}

/** Whether dist/ is older than what it is built from: the sources, this script, or the installed dependencies. */
export const stale = () => {
  let built
  try {
    built = Math.min(...[out, scanThread, path.join(root, "dist/sqliteWriter.worker.mjs")].map((file) => fs.statSync(file).mtimeMs))
  } catch {
    return true
  }
  const inputs = [newest(path.join(root, "src")), fs.statSync(import.meta.filename).mtimeMs]
  for (const file of ["package-lock.json", "node_modules/.package-lock.json"]) {
    try {
      inputs.push(fs.statSync(path.join(root, file)).mtimeMs)
    } catch {
      // not there: nothing to compare
    }
  }
  return inputs.some((t) => t > built)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await build({ readable: process.argv.includes("--readable") })
  if (!process.argv.includes("--cli")) buildLibrary()
}
