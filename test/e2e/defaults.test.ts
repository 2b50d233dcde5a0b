/**
 * End to end on the bundled action with the DEFAULT analysis inputs (max-error-rate 1 %,
 * max-ratio-to-stable, min-requests, false-rollback-budget and on-inconclusive left unset): only
 * the durations are shortened, so a rollout takes seconds instead of minutes. The local mesh sends
 * 300 req/s and real Prometheus scrapes it every second (issue 11, "Done when").
 */
import { describe, expect, it } from "vitest";
import type { Mesh } from "../mesh/index.ts";
import { canaryWeight, errorLines, requiredInputs, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();

/** Every input a workflow must give, the default stages, and durations shortened; nothing else. */
function defaultInputs(mesh: Mesh): Record<string, string> {
  return {
    ...requiredInputs(mesh),
    stages: "1,10,50,100",
    "min-stage-duration": "3s",
    "max-stage-duration": "20s",
    interval: "1s",
    "settle-time": "1s",
  };
}

interface StageRow {
  weight: number;
  decision: string;
  reason?: string;
}

function stagesOf(report: string | undefined): StageRow[] {
  return (JSON.parse(report ?? "{}") as { stages?: StageRow[] }).stages ?? [];
}

/** The stage lines and the result line, for the measurements printed with each test. */
function summary(stdout: string): string {
  return stdout
    .split("\n")
    .filter((l) => l.startsWith("■") || l.startsWith("◆"))
    .join("\n");
}

describe("end to end at the default analysis inputs", () => {
  it("promotes a healthy canary at 0.5 % errors (stable 0.5 %) against the 1 % limit", async () => {
    const m = await meshWith({ stable: { errorRate: 0.005 }, canary: { errorRate: 0.005 } });
    const began = Date.now();
    const run = await runOnMesh(m, { inputs: defaultInputs(m) });
    const seconds = (Date.now() - began) / 1000;
    const served = m.traffic.totals("v2");
    console.log(
      `healthy 0.5 %: ${run.outputs.result} in ${seconds.toFixed(1)} s; canary served ${served.requests} req / ${served.errors} err\n${summary(run.stdout)}`,
    );
    expect(run.outputs.result, run.stdout).toBe("promoted");
    expect(run.exitCode).toBe(0);
    expect(canaryWeight(m)).toEqual([0, 100]);
    expect(stagesOf(run.outputs.report).map((s) => s.weight)).toEqual([1, 10, 50, 100]);
  }, 90_000);

  it("does not blame the canary for an incident that hits both versions mid-rollout", async () => {
    const m = await meshWith({ stable: { errorRate: 0.005 }, canary: { errorRate: 0.005 } });
    let incidentAt: number | undefined;
    const run = await runOnMesh(m, {
      inputs: defaultInputs(m),
      onStdout: (chunk) => {
        // A shared dependency fails for 4 s, one second into the 10 % stage: both versions at 20 %.
        if (incidentAt === undefined && chunk.includes("canary weight set to 10 %")) {
          incidentAt = Date.now();
          setTimeout(() => {
            m.traffic.setBehaviour("v1", { errorRate: 0.2 });
            m.traffic.setBehaviour("v2", { errorRate: 0.2 });
          }, 1000);
          setTimeout(() => {
            m.traffic.setBehaviour("v1", { errorRate: 0.005 });
            m.traffic.setBehaviour("v2", { errorRate: 0.005 });
          }, 5000);
        }
      },
    });
    const stable = m.traffic.totals("v1");
    const canary = m.traffic.totals("v2");
    console.log(
      `shared incident: ${run.outputs.result}; errors served: stable ${stable.errors} of ${stable.requests}, canary ${canary.errors} of ${canary.requests}\n${summary(run.stdout)}`,
    );
    expect(incidentAt, "the 10 % stage never started").toBeDefined();
    expect(canary.errors, "the incident reached the canary").toBeGreaterThan(20);
    expect(run.outputs.result, run.stdout).toBe("promoted");
    expect(run.exitCode).toBe(0);
    expect(canaryWeight(m)).toEqual([0, 100]);
  }, 90_000);

  it("rolls back a canary at 5 % errors", async () => {
    const m = await meshWith({ stable: { errorRate: 0.005 }, canary: { errorRate: 0.05 } });
    const began = Date.now();
    const run = await runOnMesh(m, { inputs: defaultInputs(m) });
    const seconds = (Date.now() - began) / 1000;
    const served = m.traffic.totals("v2");
    console.log(
      `bad canary 5 %: ${run.outputs.result} in ${seconds.toFixed(1)} s; canary served ${served.requests} req / ${served.errors} err before the rollback\n${summary(run.stdout)}`,
    );
    expect(run.outputs.result, run.stdout).toBe("rolled-back");
    expect(run.exitCode).toBe(1);
    expect(errorLines(run)[0]).toMatch(
      /^::error::Rolled back at \d+ %: [\d,]+ of [\d,]+ canary requests failed/,
    );
    expect(canaryWeight(m)).toEqual([100]);
  }, 90_000);

  // With a latency-threshold set, a canary whose histogram lacks the threshold's bucket (custom
  // statsHistogramBuckets on the new pods) makes only the latency data partial: its error counts,
  // which are complete, are still judged, so a canary at 20 % errors is rolled back for its errors
  // (before the fix every read was partial and it was held to max-stage-duration).
  it("a canary at 20 % errors is rolled back for its errors when its latency data is partial", async () => {
    const m = await meshWith({ stable: { errorRate: 0.005 }, canary: { errorRate: 0.2 } });
    m.traffic.rewriteLine = (line) =>
      line.includes('destination_version="v2"') && line.includes('le="50"') ? null : line;
    const run = await runOnMesh(m, { inputs: { ...defaultInputs(m), "latency-threshold": "50ms" } });
    console.log(`20 % errors, partial latency data: ${errorLines(run)[0]}`);
    expect(canaryWeight(m)).toEqual([100]);
    expect(errorLines(run)[0]).toMatch(
      /^::error::Rolled back at 1 %: [\d,]+ of [\d,]+ canary requests failed/,
    );
  }, 90_000);
});
