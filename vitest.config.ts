import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Prometheus-backed suites start their own servers; two cores, so keep the pool small.
    maxWorkers: 2,
    // Rebuilds dist/ when it is not what src/ builds, before any test spawns dist/index.js.
    globalSetup: ["test/support/fresh-bundle.ts"],
  },
});
