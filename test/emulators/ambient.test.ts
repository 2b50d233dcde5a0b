/**
 * The local mesh in ambient mode (issue 22) as the real tools see it: kubectl reads the waypoint
 * Gateway (gateway.networking.k8s.io/v1) and the namespace's dataplane label from the Kubernetes API
 * emulator; the traffic simulator, scraped by a real Prometheus, reports ambient traffic only
 * through a programmed waypoint, with `reporter="waypoint"`, `destination_version="unknown"` and the
 * version in `destination_canonical_revision`, and nothing from sidecars.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { seedAmbientRunbook, WAYPOINT } from "../mesh/ambient.ts";
import { NAMESPACE } from "../mesh/fixtures.ts";
import { type Mesh, startMesh } from "../mesh/index.ts";
import { kubectlInstalled, runKubectl } from "../support/kube-emulator.ts";

const installed = kubectlInstalled("kubectl's reads of the ambient mesh");

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.stop();
  mesh = undefined;
});

async function series(m: Mesh, promql: string): Promise<Array<Record<string, string>>> {
  const res = await fetch(`${m.prometheus?.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { data: { result: Array<{ metric: Record<string, string> }> } };
  return body.data.result.map((r) => r.metric);
}

describe.skipIf(!installed)("the ambient mesh as kubectl sees it", () => {
  it("get gateway and namespace labels through discovery, as with a real API server", async () => {
    mesh = await startMesh({ seedWith: (kube) => seedAmbientRunbook(kube), prometheus: false });
    const dir = mkdtempSync(join(tmpdir(), "kubectl-ambient-"));
    try {
      writeFileSync(join(dir, "config"), mesh.kube.kubeconfig("admin-token", NAMESPACE));
      const kubectl = (...args: string[]) =>
        runKubectl(["--kubeconfig", join(dir, "config"), ...args], 20_000);
      const programmed = await kubectl(
        "get",
        "gateways.gateway.networking.k8s.io",
        WAYPOINT,
        "-o",
        'jsonpath={.spec.gatewayClassName} {.status.conditions[?(@.type=="Programmed")].status}',
      );
      expect(programmed.stderr).toBe("");
      expect(programmed.stdout).toBe("istio-waypoint True");
      const ns = await kubectl("get", "namespace", NAMESPACE, "-o", "jsonpath={.metadata.labels}");
      expect(JSON.parse(ns.stdout)).toMatchObject({
        "istio.io/dataplane-mode": "ambient",
        "istio.io/use-waypoint": WAYPOINT,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the traffic simulator in ambient mode, scraped by Prometheus", () => {
  it("reports through the waypoint only: reporter waypoint, the version as canonical revision", async () => {
    mesh = await startMesh({ seedWith: (kube) => seedAmbientRunbook(kube), requestsPerSecond: 300 });
    await mesh.scraped();
    const waypoint = await series(mesh, 'istio_requests_total{reporter="waypoint"}');
    expect(waypoint.length).toBeGreaterThan(0);
    expect(new Set(waypoint.map((s) => s.destination_version))).toEqual(new Set(["unknown"]));
    expect(new Set(waypoint.map((s) => s.destination_canonical_revision))).toEqual(new Set(["v1"]));
    expect(await series(mesh, 'istio_requests_total{reporter!="waypoint"}')).toEqual([]);
  });

  it("reports nothing without a waypoint (ztunnel is L4 only), though the requests are served", async () => {
    mesh = await startMesh({
      seedWith: (kube) => seedAmbientRunbook(kube, { enrol: "none" }),
      requestsPerSecond: 300,
    });
    const m = mesh;
    await expect.poll(() => m.traffic.scrapes, { timeout: 10_000 }).toBeGreaterThan(2);
    await expect.poll(() => series(m, "up"), { timeout: 10_000 }).not.toEqual([]);
    expect(await series(m, "istio_requests_total")).toEqual([]);
    expect(m.traffic.totals("v1").requests).toBeGreaterThan(0);
    expect(m.traffic.totals("v1").unreported).toBe(m.traffic.totals("v1").requests);
  });
});
