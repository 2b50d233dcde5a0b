/**
 * End to end: `node dist/index.js` as the runner runs it, on the local mesh (Kubernetes API
 * emulator, traffic simulator, real Prometheus, GitHub API emulator).
 */
import { describe, expect, it } from "vitest";
import { NAMESPACE } from "../mesh/fixtures.ts";
import {
  canaryWeight,
  errorLines,
  fastInputs,
  onceInStage,
  runOnMesh,
  useMesh,
  writesKeptWeightsAt100,
} from "../support/e2e.ts";

const meshWith = useMesh();

describe("rollout end to end", () => {
  it("promotes a healthy canary, every write keeping weights at 100", async () => {
    const m = await meshWith({});
    const run = await runOnMesh(m, { inputs: fastInputs(m) });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.result).toBe("promoted");
    expect(run.outputs["canary-weight"]).toBe("100");
    expect(canaryWeight(m)).toEqual([0, 100]);
    const { writes, sums } = writesKeptWeightsAt100(m);
    expect(writes).toBe(4);
    expect(sums).toEqual([100, 100, 100, 100]);
    const report = JSON.parse(run.outputs.report as string);
    expect(report.stages.map((s: { weight: number; decision: string }) => [s.weight, s.decision])).toEqual([
      [10, "pass"],
      [50, "pass"],
      [100, "pass"],
    ]);
    expect(run.summary).toContain("Promoted");
  });

  it("rolls back a canary at 20 % errors during the first stage", async () => {
    const m = await meshWith({ canary: { errorRate: 0.2 } });
    const run = await runOnMesh(m, { inputs: fastInputs(m) });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.result).toBe("rolled-back");
    expect(run.outputs["canary-weight"]).toBe("0");
    // The error line leads with the outcome, the counts and rates, and the limit (issue 25).
    expect(errorLines(run)[0]).toMatch(
      /^::error::Rolled back at 10 %: [\d,]+ of [\d,]+ canary requests failed \([\d.]+ %\); stable [\d,]+ of [\d,]+ \([\d.]+ %\); limit 5 %\. /,
    );
    // The routes are back to exactly what they were: one destination, stable.
    expect(canaryWeight(m)).toEqual([100]);
    const report = JSON.parse(run.outputs.report as string);
    expect(report.stages).toHaveLength(1);
    const seen = m.traffic.totals("v2");
    console.log(
      `20 % errors: users sent ${seen.requests} requests to the canary and saw ${seen.errors} errors before the rollback`,
    );
    expect(seen.errors).toBeGreaterThan(0);
  });

  it("rolls back a latency regression past latency-threshold", async () => {
    const m = await meshWith({ canary: { errorRate: 0.002, latencyMedianMs: 700 } });
    const run = await runOnMesh(m, { inputs: fastInputs(m, { "latency-threshold": "500ms" }) });
    expect(run.outputs.result).toBe("rolled-back");
    expect(errorLines(run)[0]).toContain("slower than 500 ms");
    // Its figures are the slow requests', against the latency limit (issue 25).
    expect(errorLines(run)[0]).toMatch(
      /^::error::Rolled back at \d+ %: [\d,]+ of [\d,]+ canary requests were slower than 500 ms \([\d.]+ %\); stable [\d,]+ of [\d,]+ \([\d.]+ %\); limit [\d.]+ %\. /,
    );
    expect(canaryWeight(m)).toEqual([100]);
  });

  it("too little traffic never rolls back: the last stage follows on-inconclusive, saying how long a proof takes", async () => {
    const m = await meshWith({ requestsPerSecond: 3 });
    const run = await runOnMesh(m, {
      inputs: fastInputs(m, { "max-stage-duration": "6s", "on-inconclusive": "pause" }),
    });
    expect(run.outputs.result).toBe("paused");
    expect(run.exitCode).toBe(0);
    const report = JSON.parse(run.outputs.report as string);
    expect(report.reason).toMatch(
      /Inconclusive at 100 %.*No harm shown.*(min at the observed|fewer than min-requests)/,
    );
    expect(canaryWeight(m)).toEqual([0, 100]);
    const vs = m.kube.get("virtualservices", NAMESPACE, "backend");
    expect(JSON.parse(vs?.metadata.annotations?.["canary.istio-action.dev/state"] as string)).toMatchObject({
      status: "paused",
      weight: 100,
    });
  });

  it("rolls back with that reason when Prometheus is killed mid-stage", async () => {
    const m = await meshWith({});
    const run = await runOnMesh(m, {
      inputs: fastInputs(m, { "min-stage-duration": "20s", "max-stage-duration": "40s" }),
      onStdout: onceInStage("1/3 · 10 %", 2, () => m.prometheus?.kill()),
    });
    expect(run.outputs.result).toBe("rolled-back");
    expect(errorLines(run)[0]).toMatch(
      /metrics could not be read: Prometheus could not be read \(unreachable\)/,
    );
    expect(canaryWeight(m)).toEqual([100]);
  });

  it("dry-run prints the JSON Patch of each stage and writes nothing", async () => {
    const m = await meshWith({});
    const run = await runOnMesh(m, { inputs: fastInputs(m, { "dry-run": "true" }) });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.result).toBe("unchanged");
    expect(m.kube.audit.filter((e) => e.verb === "patch")).toEqual([]);
    const patches = [
      ...run.stdout.matchAll(/dry run: the JSON Patch for (\d+) % \(VirtualService shop\/backend\):/g),
    ].map((x) => Number(x[1]));
    expect(patches).toEqual([10, 50, 100]);
    // Each stage is planned on the object the previous stage would leave: the canary is added once.
    expect(run.stdout.match(/"path": "\/spec\/http\/0\/route\/-"/g)).toHaveLength(1);
    expect(canaryWeight(m)).toEqual([100]);
  });
});
