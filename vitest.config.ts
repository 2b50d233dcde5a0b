import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The fault suite first. Vitest runs the files that took longest last time first, but CI starts
 * from a clean clone with no such record, and then orders by file size: the fault suite's small
 * file (it runs 97 cases, about 4.5 minutes, the longest file by far) started among the last and
 * held the run open alone (a clean clone's run took 7.7 min against 5.8 with the record).
 */
class FaultSuiteFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isFaults = (f: TestSpecification) => f.moduleId.endsWith("test/faults/faults.test.ts");
    return [...sorted.filter(isFaults), ...sorted.filter((f) => !isFaults(f))];
  }
}

/** The tiers that run in-process: they never spawn dist/index.js, so they need no fresh bundle. */
const IN_PROCESS = ["test/unit/**/*.test.ts", "test/emulators/**/*.test.ts"];

export default defineConfig({
  test: {
    // Timeouts catch hangs; what a test measures it asserts itself. A loaded CI machine stretched
    // the longest end-to-end tests (seven runs of the action in a row) to 30 s.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The end-to-end files mostly wait (rollouts in real seconds against real Prometheus). Measured
    // on two cores (npm test, wall / CPU used): 4 workers 8.4 min / 1.2 cores, 6 workers with 8
    // concurrent cases a file 5.9 min / 1.5 cores, and 6.3 min with a busy loop holding one core.
    // The fault cases and the corpus run concurrently inside their files (describe.concurrent).
    maxWorkers: 6,
    maxConcurrency: 6,
    sequence: { sequencer: FaultSuiteFirst },
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
