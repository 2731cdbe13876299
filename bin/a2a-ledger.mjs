#!/usr/bin/env node
// The a2a-ledger command. It runs the TypeScript sources through tsx: there is
// no build step yet, so it works from a clone (npm install, then npm link).
import { register } from "tsx/esm/api"

register()
await import("../src/main.ts")
