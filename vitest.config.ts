import { defineConfig } from "vitest/config";

/** The tiers that run in-process: they never spawn dist/index.js, so they need no fresh bundle. */
const IN_PROCESS = ["test/unit/**/*.test.ts", "test/emulators/**/*.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The end-to-end files mostly wait (rollouts in real seconds against real Prometheus): measured on
    // two cores, a full run used ~0.75 core at 2 workers (14.4 min wall). Four keep both cores busy;
    // the timing-bound fault cases run inside one file, one at a time.
    maxWorkers: 4,
    // Each project names its own files (a root `include` would be added to both).
    projects: [
      { extends: true, test: { name: "in-process", include: IN_PROCESS } },
      {
        extends: true,
        test: {
          name: "bundle",
          include: ["test/**/*.test.ts"],
          exclude: IN_PROCESS,
          // Rebuilds dist/ when it is not what src/ builds, before any test spawns dist/index.js;
          // vitest runs it only when a test of this project is selected.
          globalSetup: ["test/support/fresh-bundle.ts"],
        },
      },
    ],
  },
});
