// `npm start`: build dist/ if the sources changed since the last build (scripts/build.mjs), then run the
// server in this same process: one Node start-up, not two.
import { build, stale } from "./build.mjs"

if (stale()) await build()
await import("../dist/main.js")
