import type { Reporter, TestModule } from "vitest/node"

/**
 * Ends the run with one plain line, "N passed, N failed, N skipped", which CI
 * tooling reads whatever the test runner.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
      // A file that failed to load counts as a failure even though it ran no test.
      if (module.state() === "failed" && [...module.children.allTests()].length === 0) failed++
    }
    // Vitest prints its own summary after every reporter's end hook; this line must come last.
    process.once("exit", () => process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`))
  }
}
