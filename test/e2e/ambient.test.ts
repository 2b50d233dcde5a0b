/**
 * Ambient mode end to end (issue 22): `node dist/index.js` as the runner runs it, every action.yml
 * default as an INPUT_ variable (so `reporter` arrives as `auto`), on the local mesh in ambient mode:
 * pods without sidecars, a waypoint (Gateway of class istio-waypoint, programmed, its pod ready)
 * enrolled on the namespace, a VirtualService the waypoint applies, and a real Prometheus scraping
 * the waypoint's series (`reporter="waypoint"`, none from sidecars).
 */
import { describe, expect, it } from "vitest";
import { type AmbientRunbookOptions, seedAmbientRunbook } from "../mesh/ambient.ts";
import { type Mesh, startMesh } from "../mesh/index.ts";
import { canaryWeight, errorLines, fastInputs, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();

const ambientMesh = (options: AmbientRunbookOptions = {}, canary = {}) =>
  meshWith({ seedWith: (kube) => seedAmbientRunbook(kube, options), canary });

/** How many series Prometheus holds for the query. */
async function seriesCount(mesh: Mesh, query: string): Promise<number> {
  const res = await fetch(`${mesh.prometheus?.url}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { data?: { result?: unknown[] } };
  return body.data?.result?.length ?? 0;
}

describe("ambient mode with a waypoint, end to end", () => {
  it("promotes a healthy canary, reading the waypoint's metrics", async () => {
    const m = await ambientMesh();
    const run = await runOnMesh(m, { inputs: fastInputs(m) });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.result).toBe("promoted");
    expect(canaryWeight(m)).toEqual([0, 100]);
    expect(run.stdout).toContain("canary pods ready in ambient mode, served by waypoint shop/waypoint");
    expect(run.stdout).toContain("reporter auto: reading waypoint's metrics (ambient mode)");
    expect(run.stdout).not.toMatch(/::warning::.*(sidecar|injection)/);
    // The judged traffic is the waypoint's: its series exist, and no sidecar reported any.
    expect(await seriesCount(m, 'istio_requests_total{reporter="waypoint"}')).toBeGreaterThan(0);
    expect(await seriesCount(m, 'istio_requests_total{reporter="destination"}')).toBe(0);
    const report = JSON.parse(run.outputs.report as string);
    expect(report.stages.map((s: { decision: string }) => s.decision)).toEqual(["pass", "pass", "pass"]);
  });

  it("with Deployments: promoted and finalized, the stable's pods ready without an istio-proxy", async () => {
    const m = await meshWith({
      seedWith: (kube) => seedAmbientRunbook(kube),
      deployments: { readyDelayMs: 300 },
    });
    const run = await runOnMesh(m, { inputs: fastInputs(m) });
    expect(errorLines(run)).toEqual([]);
    expect(run.outputs).toMatchObject({ result: "promoted", finalized: "true", "canary-weight": "0" });
    expect(canaryWeight(m)).toEqual([100]);
    const stablePods = m.kube.list("pods", "shop").filter((p) => p.metadata.name.startsWith("backend-v1-"));
    expect(stablePods.length).toBeGreaterThan(0);
    for (const pod of stablePods) {
      const containers = (pod.spec as { containers: Array<{ name: string }> }).containers.map((c) => c.name);
      expect(containers).not.toContain("istio-proxy");
      expect(pod.metadata.annotations?.["ambient.istio.io/redirection"]).toBe("enabled");
    }
  });

  it("waypoint series labelled reporter destination (early ambient): reporter destination promotes, matched by revision", async () => {
    const m = await meshWith({
      seedWith: (kube) => seedAmbientRunbook(kube),
      waypointReporter: "destination",
    });
    const run = await runOnMesh(m, { inputs: fastInputs(m, { reporter: "destination" }) });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.result).toBe("promoted");
    expect(run.stdout).toMatch(/::warning::the canary runs in ambient mode.*but reporter is destination/);
    expect(run.stdout).toMatch(
      /has series for the stable version: \{reporter="destination",.*destination_canonical_revision="v1"\}/,
    );
  });

  it("rolls back a canary at 20 % errors, back to 100 % stable", async () => {
    const m = await ambientMesh({}, { errorRate: 0.2 });
    const run = await runOnMesh(m, { inputs: fastInputs(m) });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.result).toBe("rolled-back");
    expect(errorLines(run)[0]).toMatch(
      /^::error::Rolled back at 10 %: [\d,]+ of [\d,]+ canary requests failed/,
    );
    expect(canaryWeight(m)).toEqual([100]);
  });

  it("ambient without a waypoint is refused before any write, with the reason and the fix", async () => {
    // Without a waypoint nothing reports L7 metrics: start the mesh without waiting for stable's series.
    const mesh = await startMesh({
      seedWith: (kube) => seedAmbientRunbook(kube, { enrol: "none" }),
      requestsPerSecond: 300,
    });
    try {
      const run = await runOnMesh(mesh, { inputs: fastInputs(mesh) });
      expect(run.exitCode).toBe(1);
      expect(mesh.kube.audit.filter((e) => ["patch", "update", "create"].includes(e.verb))).toEqual([]);
      const error = errorLines(run).join("\n");
      expect(error).toContain("ambient mode and no waypoint serves Service shop/backend");
      expect(error).toContain("no L7 metrics");
      expect(error).toContain("istioctl waypoint apply -n shop --enroll-namespace");
      expect(error).not.toMatch(/istio-injection|inject/);
      expect(canaryWeight(mesh)).toEqual([100]);
    } finally {
      await mesh.stop();
    }
  });
});
