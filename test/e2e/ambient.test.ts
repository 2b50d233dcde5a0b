/**
 * Ambient mode end to end (issue 22): `node dist/index.js` as the runner runs it, every action.yml
 * default as an INPUT_ variable (so `reporter` arrives as `auto`), on the local mesh in ambient mode:
 * pods without sidecars, a waypoint (Gateway of class istio-waypoint, programmed, its pod ready)
 * enrolled on the namespace, a VirtualService the waypoint applies, and a real Prometheus scraping
 * the waypoint's series (`reporter="waypoint"`, none from sidecars).
 */
import { describe, expect, it } from "vitest";
import { type AmbientRunbookOptions, seedAmbientRunbook } from "../mesh/ambient.ts";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import { backendWeights, CANARY_SERVICE, STABLE_SERVICE } from "../mesh/gateway-fixtures.ts";
import { type Mesh, startMesh } from "../mesh/index.ts";
import { canaryWeight, errorLines, fastInputs, fastRouteInputs, runOnMesh, useMesh } from "../support/e2e.ts";

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

const writes = (m: Mesh) => m.kube.audit.filter((e) => ["patch", "update", "create"].includes(e.verb));

describe("ambient mode with a waypoint and an HTTPRoute on the Service (GAMMA), end to end", () => {
  // Callers in the mesh call Service backend; its waypoint applies the route (Istio's ambient traffic shifting).
  const callers = [{ source: "mesh", host: SERVICE, clientNamespace: NAMESPACE, share: 1 }];
  const routeMesh = (options: AmbientRunbookOptions = {}, canary = {}) =>
    meshWith({
      seedWith: (kube) => seedAmbientRunbook(kube, { route: "httproute", ...options }),
      traffic: callers,
      canary,
    });

  for (const enrol of ["namespace", "service"] as const) {
    it(`promotes a healthy canary, the waypoint enrolled on the ${enrol}, reading reporter="waypoint"`, async () => {
      const m = await routeMesh({ enrol });
      const run = await runOnMesh(m, { inputs: fastRouteInputs(m) });
      expect(run.exitCode, run.stdout).toBe(0);
      expect(run.outputs.result).toBe("promoted");
      expect(run.stdout).toContain("canary pods ready in ambient mode, served by waypoint shop/waypoint");
      expect(run.stdout).toContain("reporter auto: reading waypoint's metrics (ambient mode)");
      expect(run.stdout).toMatch(
        /HTTPRoute shop\/backend on Service shop\/backend \(port 8080\): Accepted True/,
      );
      expect(run.stdout).not.toMatch(/::warning::.*(sidecar|injection|ingress-use-waypoint)/);
      expect(backendWeights(m.kube)).toEqual([
        { name: STABLE_SERVICE, weight: 0 },
        { name: CANARY_SERVICE, weight: 100 },
      ]);
      expect(
        await seriesCount(
          m,
          `istio_requests_total{reporter="waypoint",destination_service_name="${CANARY_SERVICE}"}`,
        ),
      ).toBeGreaterThan(0);
      expect(await seriesCount(m, 'istio_requests_total{reporter="destination"}')).toBe(0);
      const report = JSON.parse(run.outputs.report as string);
      expect(report.stages.map((s: { decision: string }) => s.decision)).toEqual(["pass", "pass", "pass"]);
      expect(m.traffic.totals("v2").requests).toBeGreaterThan(100);
    });
  }

  it("rolls back a canary at 20 % errors: the rule back as it was, 100 % stable", async () => {
    const m = await routeMesh({}, { errorRate: 0.2 });
    const run = await runOnMesh(m, { inputs: fastRouteInputs(m) });
    expect(run.exitCode).toBe(1);
    expect(run.outputs.result).toBe("rolled-back");
    expect(errorLines(run)[0]).toMatch(
      /^::error::Rolled back at 10 %: [\d,]+ of [\d,]+ canary requests failed/,
    );
    expect(backendWeights(m.kube)).toEqual([{ name: STABLE_SERVICE, weight: 1 }]);
    expect(m.traffic.probe(callers[0]!, 500).served).toEqual({ v1: 500 });
  });

  it("an HTTPRoute in ambient without a waypoint is refused before any write, with the reason and the fix", async () => {
    const mesh = await startMesh({
      seedWith: (kube) => seedAmbientRunbook(kube, { route: "httproute", enrol: "none" }),
      traffic: callers,
      requestsPerSecond: 300,
    });
    try {
      const run = await runOnMesh(mesh, { inputs: fastRouteInputs(mesh) });
      expect(run.exitCode).toBe(1);
      expect(writes(mesh)).toEqual([]);
      const error = errorLines(run).join("\n");
      // The route's parent, Service backend, is the one whose waypoint would apply it.
      expect(error).toContain("ambient mode and no waypoint serves Service shop/backend");
      expect(error).toContain("no L7 metrics");
      expect(error).toContain("istioctl waypoint apply -n shop --enroll-namespace");
      expect(error).not.toMatch(/istio-injection|inject/);
      expect(backendWeights(mesh.kube)).toEqual([{ name: STABLE_SERVICE, weight: 1 }]);
    } finally {
      await mesh.stop();
    }
  });
});
