#!/usr/bin/env node
// The a2a-ledger command: the built server and tools (dist/main.js). In a checkout (the sources beside it),
// dist/ is built first when the sources changed since the last build, as `npm start` does; an installed
// package ships dist/ built and no sources.
import * as fs from "node:fs"

if (fs.existsSync(new URL("../src/main.ts", import.meta.url))) {
  const { build, stale } = await import("../scripts/build.mjs")
  if (stale()) await build()
}
await import("../dist/main.js")
