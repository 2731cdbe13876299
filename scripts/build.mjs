// Compile the server to one JavaScript file (dist/main.js) with esbuild, so `npm start` runs compiled code:
// no TypeScript compiled at run time (tsx's loader thread and its cache cost start-up time and memory), and
// one file to load instead of the thousands of small modules the Effect packages are made of (loading
// those took more than a second). Native addons stay in node_modules. A build takes a fraction of a
// second; `npm start` runs it every time, so dist/ never lags the sources.
import { build } from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")

await build({
  entryPoints: [path.join(root, "src/main.ts")],
  outfile: path.join(root, "dist/main.js"),
  bundle: true,
  // Native addons (and the optional ones some drivers try to load) cannot be bundled.
  external: ["better-sqlite3", "pg-native", "msgpackr-extract", "cpu-features", "bufferutil", "utf-8-validate"],
  // Bundled CommonJS dependencies call require(); an ES module has none of its own.
  banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "warning"
})

// The writer's SQLite thread runs a file of its own (src/eventlog/SqliteCommits.ts finds it beside the code
// that starts it): plain JavaScript, copied as it is.
fs.copyFileSync(path.join(root, "src/eventlog/sqliteWriter.worker.mjs"), path.join(root, "dist/sqliteWriter.worker.mjs"))

// esbuild escapes non-ASCII characters in strings, templates and regular expressions, but keeps them in
// the comments of bundled packages (a typographic apostrophe, say). One such character makes V8 hold the
// whole source as a two-byte string: 8 MiB of heap instead of 4, for as long as the process lives. In a
// comment a placeholder does as well; one per UTF-16 unit keeps the source map's columns.
const out = path.join(root, "dist/main.js")
const source = fs.readFileSync(out, "utf8")
// eslint-disable-next-line no-control-regex
if (/[^\x00-\x7f]/.test(source)) fs.writeFileSync(out, source.replace(/[^\x00-\x7f]/g, (c) => "?".repeat(c.length)))
