/**
 * The emulator's Gateway API (HTTPRoute, Gateway) as the real kubectl sees it: discovery, get with
 * the status istiod would write, JSON Patch and merge patch, 409 for a stale replace, 422 Invalid
 * with details.causes for a weight the CRD's schema refuses; and the traffic simulator routing by
 * an HTTPRoute's weights for a route attached to a Gateway and one attached to a Service (GAMMA).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import {
  type Attachment,
  backendWeights,
  httpRoute,
  httpRouteTraffic,
  seedHttpRouteRunbook,
} from "../mesh/gateway-fixtures.ts";
import { KubeApiEmulator } from "../mesh/kube-api.ts";
import { TrafficSimulator } from "../mesh/traffic.ts";
import { kubectlInstalled, runKubectl } from "../support/kube-emulator.ts";

const installed = kubectlInstalled("the check of the emulator's Gateway API against kubectl");

let kube: KubeApiEmulator;
let dir: string;

beforeEach(async () => {
  kube = await new KubeApiEmulator().start();
  dir = mkdtempSync(join(tmpdir(), "kubectl-gw-"));
  writeFileSync(join(dir, "config"), kube.kubeconfig());
});
afterEach(async () => {
  await kube.stop();
  rmSync(dir, { recursive: true, force: true });
});

const kubectl = (...args: string[]) =>
  runKubectl(["--kubeconfig", join(dir, "config"), "-n", NAMESPACE, ...args], 30_000);

type RouteStatus = {
  parents: Array<{
    parentRef: { name: string };
    conditions: Array<{ type: string; status: string; reason: string }>;
  }>;
};

describe.skipIf(!installed)("the emulator's Gateway API as kubectl sees it", () => {
  it("kubectl get httproute shows the CRD's defaults and the parents' status as istiod writes it", async () => {
    seedHttpRouteRunbook(kube, "gateway");
    const got = await kubectl("get", "httproute", SERVICE, "-o", "json");
    expect(got.code, got.stderr).toBe(0);
    const route = JSON.parse(got.stdout) as {
      spec: { rules: Array<{ matches: unknown; backendRefs: unknown }> };
      status: RouteStatus;
    };
    expect(route.spec.rules[0]?.matches).toEqual([{ path: { type: "PathPrefix", value: "/" } }]);
    expect(route.spec.rules[0]?.backendRefs).toEqual([
      { group: "", kind: "Service", name: "backend-v1", port: 8080, weight: 1 },
    ]);
    const conditions = route.status.parents[0]?.conditions.map((c) => [c.type, c.status]);
    expect(conditions).toEqual([
      ["Accepted", "True"],
      ["ResolvedRefs", "True"],
    ]);
    const gw = await kubectl(
      "get",
      "gateway",
      "-n",
      "istio-ingress",
      "gateway",
      "-o",
      "jsonpath={.status.conditions[*].type}",
    );
    expect(gw.stdout).toBe("Accepted Programmed");
  });

  it("a parent that is not istiod's, or a backend that does not exist, shows in status.parents", async () => {
    seedHttpRouteRunbook(kube, "gateway");
    kube.editOutOfBand("gateways", "istio-ingress", "gateway", (o) => {
      (o.spec as { gatewayClassName: string }).gatewayClassName = "other";
    });
    kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (o) => {
      (o.spec as { rules: Array<{ backendRefs: Array<{ name: string }> }> }).rules[0]!.backendRefs[0]!.name =
        "nope";
    });
    const got = await kubectl("get", "httproute", SERVICE, "-o", "json");
    const status = (JSON.parse(got.stdout) as { status: RouteStatus }).status;
    expect(status.parents[0]?.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["Accepted", "False", "NoMatchingParent"],
      ["ResolvedRefs", "False", "BackendNotFound"],
    ]);
  });

  it("kubectl patch: JSON Patch with a test, merge patch, and the schema's 422 with its cause", async () => {
    seedHttpRouteRunbook(kube, "service");
    const canary = JSON.stringify([
      { op: "test", path: "/spec/rules/0/backendRefs/0/weight", value: 1 },
      { op: "add", path: "/spec/rules/0/backendRefs/0/weight", value: 999 },
      {
        op: "add",
        path: "/spec/rules/0/backendRefs/-",
        value: { name: "backend-v2", port: 8080, weight: 1 },
      },
    ]);
    const patched = await kubectl("patch", "httproute", SERVICE, "--type=json", "-p", canary);
    expect(patched.code, patched.stderr).toBe(0);
    expect(backendWeights(kube)).toEqual([
      { name: "backend-v1", weight: 999 },
      { name: "backend-v2", weight: 1 },
    ]);
    // The same patch again: its `test` fails (the weight is 999 now), 422 as kube-apiserver answers.
    const again = await kubectl("patch", "httproute", SERVICE, "--type=json", "-p", canary);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("The request is invalid");
    const fractional = JSON.stringify([
      { op: "replace", path: "/spec/rules/0/backendRefs/1/weight", value: 0.5 },
    ]);
    const refused = await kubectl("patch", "httproute", SERVICE, "--type=json", "-p", fractional);
    expect(refused.stderr).toContain("spec.rules[0].backendRefs[1].weight");
    expect(kube.audit.at(-1)?.code).toBe(422);
    const merge = await kubectl(
      "patch",
      "httproute",
      SERVICE,
      "--type=merge",
      "-p",
      '{"metadata":{"labels":{"team":"shop"}}}',
    );
    expect(merge.code, merge.stderr).toBe(0);
    expect(kube.get("httproutes", NAMESPACE, SERVICE)?.metadata.labels).toEqual({ team: "shop" });
  });

  it("a replace with a stale resourceVersion is 409 Conflict", async () => {
    seedHttpRouteRunbook(kube, "gateway");
    const got = await kubectl("get", "httproute", SERVICE, "-o", "json");
    kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (o) => {
      o.metadata.labels = { edited: "yes" };
    });
    writeFileSync(join(dir, "route.json"), got.stdout);
    const replaced = await kubectl("replace", "--validate=false", "-f", join(dir, "route.json"));
    expect(replaced.code).not.toBe(0);
    expect(replaced.stderr).toContain("Conflict");
  });
});

describe("the traffic simulator routes by an HTTPRoute's backendRef weights", () => {
  for (const attach of ["gateway", "service"] as Attachment[]) {
    it(`attached to a ${attach === "gateway" ? "Gateway" : "Service (GAMMA)"}: 1 of 1000 to the canary, then 50/50`, () => {
      seedHttpRouteRunbook(kube, attach);
      const traffic = new TrafficSimulator({
        kube,
        namespace: NAMESPACE,
        virtualService: SERVICE,
        seed: 3,
        requestsPerSecond: 0,
        versions: {},
      });
      const flow = httpRouteTraffic(attach)[0]!;
      expect(traffic.probe(flow, 2000).served).toEqual({ v1: 2000 });
      const setWeights = (stable: number, canary: number) =>
        kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (o) => {
          (o.spec as { rules: Array<{ backendRefs: unknown[] }> }).rules[0]!.backendRefs = [
            { name: "backend-v1", port: 8080, weight: stable },
            { name: "backend-v2", port: 8080, weight: canary },
          ];
        });
      setWeights(999, 1);
      const rare = traffic.probe(flow, 20_000).served;
      // 0.1 % of 20,000 is 20; 4 standard deviations either side.
      expect(rare.v2).toBeGreaterThan(2);
      expect(rare.v2).toBeLessThan(38);
      setWeights(1, 1);
      const half = traffic.probe(flow, 4000).served;
      expect(Math.abs((half.v2 ?? 0) - 2000)).toBeLessThan(130);
      setWeights(0, 0);
      expect(traffic.probe(flow, 10).served).toEqual({ "no route": 10 });
    });
  }

  it("a route attached to another Gateway, or for another host, routes nothing of this flow", () => {
    seedHttpRouteRunbook(kube, "gateway", httpRoute("gateway", { hostnames: ["other.example.com"] }));
    const traffic = new TrafficSimulator({
      kube,
      namespace: NAMESPACE,
      virtualService: SERVICE,
      seed: 3,
      requestsPerSecond: 0,
      versions: {},
    });
    const flow = httpRouteTraffic("gateway")[0]!;
    // No HTTPRoute and no VirtualService claims shop.example.com: Istio's default, no Service of that name.
    expect(Object.keys(traffic.probe(flow, 10).served)).not.toContain("v2");
    expect(traffic.probe(flow, 10).served.v1).toBeUndefined();
  });
});
