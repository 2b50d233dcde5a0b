/**
 * The corpus: published VirtualServices (test/corpus/fixtures, each citing its source) run through
 * the bundled action on the local mesh with real Prometheus, each checked against what a user
 * expects (test/corpus/expectations.ts): the outcome, every write keeping route weights at 100, and
 * nothing outside the managed weights changed. The cases run concurrently (vitest's maxConcurrency).
 */
import { describe, expect, it } from "vitest";
import { CORPUS } from "../corpus/expectations.ts";
import { caseInputs, loadFixture, runProblems, snapshot, startCorpusMesh } from "../corpus/harness.ts";
import { runOnMesh } from "../support/e2e.ts";
import { slots } from "../support/slots.ts";

/**
 * At most this many meshes (each a Prometheus, a simulator and the action's process) at once: on
 * two cores more make Prometheus answer slower than the action's query timeout.
 */
const MESHES_AT_ONCE = 5;
const slot = slots(MESHES_AT_ONCE);

describe.concurrent("published VirtualServices", () => {
  for (const c of CORPUS) {
    it(`${c.fixture}: ${c.shape}`, { timeout: 240_000 }, () =>
      slot(async () => {
        const { mesh, skipped } = await startCorpusMesh(c);
        try {
          const outcomes = Array.isArray(c.outcome) ? c.outcome : [c.outcome];
          const onlyRefusals = outcomes.every((o) => o.kind === "refused");
          // Stable must have series before the action looks (unless it is unroutable, or only a refusal is expected).
          await mesh.scraped(onlyRefusals ? 4_000 : 15_000).catch(() => undefined);
          const before = snapshot(mesh, loadFixture(c.fixture));
          const run = await runOnMesh(mesh, { inputs: caseInputs(c, mesh), timeoutMs: 100_000 });
          const problems = runProblems(c, run, mesh, before);
          const note = skipped.length > 0 ? `the emulator does not serve ${skipped.join(", ")}` : undefined;
          expect(problems, note).toEqual([]);
        } finally {
          await mesh.stop();
        }
      }),
    );
  }
});
