/**
 * Ambient mode and delegated VirtualServices (issue 22), against the Kubernetes API emulator through
 * the real client: preflight accepts ambient pods served by a programmed, ready waypoint; refuses
 * ambient without a waypoint with the reason and the fix (never "inject sidecars"); names what is
 * wrong with a waypoint; `reporter: auto` picks the waypoint's metrics. A root VirtualService that
 * delegates is refused naming the delegate and the inputs; the delegate is managed as any other.
 * Every refusal happens before any write.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { podDataplane, waypointOf } from "../../src/mesh/ambient.ts";
import { PreflightError, type PreflightResult, preflight } from "../../src/mesh/preflight.ts";
import { findManagedRoutes, targetOf } from "../../src/mesh/routes.ts";
import { effectiveReporter, versionMatcher } from "../../src/metrics/istio-queries.ts";
import type { Split } from "../../src/rollout/model/split.ts";
import type { VirtualService } from "../../src/rollout/model/virtual-service.ts";
import { podVerdict } from "../../src/workloads/rollout-status.ts";
import { type AmbientRunbookOptions, seedAmbientRunbook, WAYPOINT } from "../mesh/ambient.ts";
import { NAMESPACE, seedRunbook } from "../mesh/fixtures.ts";
import type { KubeApiEmulator, KubeObject } from "../mesh/kube-api.ts";
import { useKubeEmulator, writes } from "../support/kube-emulator.ts";
import { meshApi, meshRouter, SUBSETS, stateTransition } from "../support/mesh-router.ts";

const emulator = useKubeEmulator();
let kube: KubeApiEmulator;
beforeEach(() => {
  kube = emulator();
});

function run(name = "backend", routes: string[] = []) {
  kube.audit.length = 0;
  return preflight(meshApi(kube), NAMESPACE, name, SUBSETS, targetOf(SUBSETS), routes);
}

async function passes(): Promise<PreflightResult> {
  const result = await run();
  expect(writes(kube.audit)).toEqual([]);
  return result;
}

async function refusal(name = "backend", routes: string[] = []): Promise<string> {
  const error = await run(name, routes).catch((e: unknown) => e);
  expect(writes(kube.audit)).toEqual([]);
  if (error instanceof PreflightError) return error.problems.join("\n");
  if (error instanceof Error) return error.message;
  throw new Error("preflight passed");
}

const ambient = (options: AmbientRunbookOptions = {}) => seedAmbientRunbook(kube, options);

describe("ambient mode", () => {
  it("passes ambient pods without a sidecar when a programmed, ready waypoint serves the Service", async () => {
    ambient();
    const result = await passes();
    expect(result.dataplane).toBe("ambient");
    expect(result.waypoints).toEqual([`${NAMESPACE}/${WAYPOINT}`]);
    expect(result.warnings.join("\n")).not.toMatch(/injection|sidecar/);
  });

  it("passes a waypoint enrolled on the Service rather than the namespace", async () => {
    ambient({ enrol: "service" });
    expect((await passes()).waypoints).toEqual([`${NAMESPACE}/${WAYPOINT}`]);
  });

  it("host split: the waypoint that counts is the one of the Service the VirtualService's hosts name", async () => {
    ambient({ enrol: "service" });
    for (const version of ["v1", "v2"])
      kube.seed("services", {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: `backend-${version}`, namespace: NAMESPACE },
        spec: { selector: { app: "backend", version } },
      });
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      (o.spec as { http: Array<{ route: unknown[] }> }).http[0]!.route = [
        { destination: { host: "backend-v1" } },
      ];
    });
    const split: Split = { mode: "host", stableHost: "backend-v1", canaryHost: "backend-v2" };
    const result = await preflight(meshApi(kube), NAMESPACE, "backend", split, targetOf(split), []);
    expect(result.dataplane).toBe("ambient");
    expect(result.waypoints).toEqual([`${NAMESPACE}/${WAYPOINT}`]);
  });

  it("sidecar pods stay in sidecar mode", async () => {
    seedRunbook(kube);
    const result = await passes();
    expect(result.dataplane).toBe("sidecar");
    expect(result.waypoints).toEqual([]);
  });

  it("refuses ambient without a waypoint with the reason and the fix, never advising sidecars", async () => {
    ambient({ enrol: "none" });
    const message = await refusal();
    expect(message).toContain("ambient mode");
    expect(message).toContain("no waypoint serves Service shop/backend");
    expect(message).toMatch(/weights are not applied/);
    expect(message).toMatch(/no L7 metrics/);
    expect(message).toContain("istioctl waypoint apply -n shop --enroll-namespace");
    expect(message).toContain("istio.io/use-waypoint=waypoint");
    expect(message).not.toMatch(/istio-injection|no istio-proxy/);
  });

  it("refuses a Service that opts out of its namespace's waypoint", async () => {
    ambient();
    kube.editOutOfBand("services", NAMESPACE, "backend", (o) => {
      o.metadata.labels = { ...o.metadata.labels, "istio.io/use-waypoint": "none" };
    });
    expect(await refusal()).toContain("Service shop/backend opts out of waypoints");
  });

  it("names a waypoint that is not programmed, without ready pods, or missing", async () => {
    ambient({ programmed: false, waypointReady: false });
    const message = await refusal();
    expect(message).toContain("waypoint shop/waypoint is not programmed (Programmed=False (Invalid");
    expect(message).toContain("no pod of waypoint shop/waypoint is ready");

    kube.remove("gateways", NAMESPACE, WAYPOINT);
    expect(await refusal()).toContain(
      "there is no Gateway shop/waypoint: create it with `istioctl waypoint apply",
    );
  });

  it("without a grant on Gateways, warns that the waypoint is not checked and goes on", async () => {
    ambient();
    kube.grant("no-gateways", {
      user: "system:serviceaccount:shop:canary-action",
      namespaces: [NAMESPACE],
      rules: [
        {
          apiGroups: ["networking.istio.io"],
          resources: ["virtualservices", "destinationrules"],
          verbs: ["get", "list"],
        },
        { apiGroups: [""], resources: ["pods", "services", "namespaces"], verbs: ["get", "list"] },
      ],
    });
    const result = await preflight(
      meshApi(kube, { token: "no-gateways" }),
      NAMESPACE,
      "backend",
      SUBSETS,
      targetOf(SUBSETS),
      [],
    );
    expect(result.dataplane).toBe("ambient");
    expect(result.warnings).toEqual([
      "could not read Gateway shop/waypoint (grant get on gateways.gateway.networking.k8s.io) (forbidden): the ambient waypoint is not checked",
    ]);
    expect(writes(kube.audit)).toEqual([]);
  });

  it("warns that a gateway-only VirtualService bypasses the waypoint unless the Service opts ingress in", async () => {
    ambient();
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      (o.spec as { gateways?: string[] }).gateways = ["istio-system/public"];
    });
    const warned = (await passes()).warnings.join("\n");
    expect(warned).toContain("applies only to ingress gateways (istio-system/public)");
    expect(warned).toContain("istio.io/ingress-use-waypoint=true");
    kube.editOutOfBand("services", NAMESPACE, "backend", (o) => {
      o.metadata.labels = { ...o.metadata.labels, "istio.io/ingress-use-waypoint": "true" };
    });
    expect((await passes()).warnings.join("\n")).not.toContain("ingress-use-waypoint");
  });

  it("refuses a waypoint that takes only workload-addressed traffic", async () => {
    ambient({ waypointFor: "workload" });
    expect(await refusal()).toContain("istio.io/waypoint-for=workload");
  });

  it("refuses a canary whose ambient pods are not ready", async () => {
    ambient();
    const canary = kube.list("pods", NAMESPACE).find((p) => p.metadata.labels?.version === "v2");
    kube.editOutOfBand("pods", NAMESPACE, canary?.metadata.name ?? "", (o) => {
      o.status = { phase: "Running", conditions: [{ type: "Ready", status: "False" }] };
    });
    expect(await refusal()).toContain(
      "no canary pod matching {app=backend,version=v2} is ready (ambient mode",
    );
  });

  it("a pod's dataplane: sidecar wins, then its own label, then istio-cni's mark, then the namespace", () => {
    const pod = { name: "p", ready: true, hasSidecar: false, containers: ["app"] };
    const ns = { "istio.io/dataplane-mode": "ambient" };
    expect(podDataplane(pod, ns)).toBe("ambient");
    expect(podDataplane({ ...pod, dataplaneLabel: "none" }, ns)).toBe("none");
    expect(podDataplane({ ...pod, hasSidecar: true }, ns)).toBe("sidecar");
    expect(podDataplane({ ...pod, ambientRedirected: true }, {})).toBe("ambient");
    expect(podDataplane(pod, {})).toBe("none");
  });

  it("a Service's own waypoint label wins over its namespace's, in the namespace use-waypoint-namespace names", () => {
    const svc = { name: "backend", namespace: "shop" };
    const nsLabels = { "istio.io/use-waypoint": "ns-wp" };
    expect(
      waypointOf(
        svc,
        { "istio.io/use-waypoint": "wp", "istio.io/use-waypoint-namespace": "infra" },
        nsLabels,
      ),
    ).toEqual({ name: "wp", namespace: "infra", from: "Service shop/backend" });
    expect(waypointOf(svc, {}, nsLabels)).toEqual({
      name: "ns-wp",
      namespace: "shop",
      from: "namespace shop",
    });
    expect(waypointOf(svc, { "istio.io/use-waypoint": "none" }, nsLabels)).toEqual({
      optedOut: "Service shop/backend",
    });
    expect(waypointOf(svc, {}, {})).toBeUndefined();
  });

  it("a ready ambient pod is ready for the mesh without an istio-proxy; a sidecar-less other pod is not", () => {
    const pod = (annotations: Record<string, string>) => ({
      metadata: { name: "backend-v2-x", annotations },
      status: {
        phase: "Running",
        conditions: [{ type: "Ready", status: "True" }],
        containerStatuses: [{ name: "backend", ready: true }],
      },
    });
    expect(podVerdict(pod({ "ambient.istio.io/redirection": "enabled" }))).toMatchObject({
      ready: true,
      problems: [],
    });
    expect(podVerdict(pod({}))).toMatchObject({ ready: false });
  });
});

describe("reporter auto", () => {
  it("reads the waypoint's metrics in ambient mode and the destination sidecar's otherwise, warning on a mismatch", () => {
    expect(effectiveReporter("auto", "ambient")).toEqual({ reporter: "waypoint" });
    expect(effectiveReporter("auto", "sidecar")).toEqual({ reporter: "destination" });
    expect(effectiveReporter("destination", "ambient").warning).toMatch(/reporter="waypoint"/);
    expect(effectiveReporter("waypoint", "sidecar").warning).toMatch(/sidecars/);
    expect(effectiveReporter("source", "sidecar")).toEqual({ reporter: "source" });
  });

  it("a waypoint's series know the version by canonical revision (its destination_version is unknown)", () => {
    expect(versionMatcher({ version: "v2" }, "waypoint")).toBe('destination_canonical_revision="v2"');
    expect(versionMatcher({ version: "v2", "app.kubernetes.io/version": "2.0" }, "waypoint")).toBe(
      'destination_canonical_revision="2.0"',
    );
    expect(versionMatcher({ version: "v2" }, "destination")).toBe('destination_version="v2"');
  });
});

/** Istio's delegation shape: a gateway's root VirtualService whose route delegates to the backend's. */
function seedDelegation(delegateNamespace?: string): void {
  seedRunbook(kube);
  kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
    delete (o.spec as { hosts?: string[] }).hosts;
  });
  kube.seed("virtualservices", {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: "root", namespace: NAMESPACE },
    spec: {
      hosts: ["shop.example.com"],
      gateways: ["istio-system/public"],
      http: [
        {
          name: "api",
          match: [{ uri: { prefix: "/api" } }],
          delegate: { name: "backend", ...(delegateNamespace ? { namespace: delegateNamespace } : {}) },
        },
      ],
    },
  } as KubeObject);
}

describe("delegated VirtualServices", () => {
  it("naming the root is refused, naming the delegate and the inputs to use", async () => {
    seedDelegation();
    const message = await refusal("root");
    expect(message).toContain("VirtualService shop/root is a root VirtualService");
    expect(message).toContain('http route "api" to VirtualService shop/backend');
    expect(message).toContain("virtual-service: backend, namespace: shop");
  });

  it("selecting the delegating route says it delegates, not that it routes to nothing", async () => {
    seedDelegation("shop");
    for (const routes of [["#0"], ["api"]]) {
      const message = await refusal("root", routes);
      expect(message).toContain('http route "api" delegates to VirtualService shop/backend');
      expect(message).toContain("virtual-service: backend, namespace: shop");
      expect(message).not.toContain("routes to nothing");
    }
  });

  it("the delegate's namespace defaults to the root's", () => {
    const vs = {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "root", namespace: "ingress" },
      spec: { http: [{ delegate: { name: "reviews" } }] },
    } as VirtualService;
    expect(() => findManagedRoutes(vs, targetOf(SUBSETS), [])).toThrow(
      "virtual-service: reviews, namespace: ingress",
    );
  });

  it("the delegate is managed as any VirtualService: preflight passes, a stage writes its weights, the root is untouched", async () => {
    seedDelegation();
    await passes();
    const rootBefore = kube.get("virtualservices", NAMESPACE, "root");
    const router = meshRouter(meshApi(kube));
    await router.write(
      10,
      stateTransition(10, {
        holder: "run-1",
        stageIndex: 0,
        leaseBlocksRollback: true,
        holderInHistory: false,
      }),
    );
    const delegate = kube.get("virtualservices", NAMESPACE, "backend");
    const spec = (delegate?.spec ?? { http: [] }) as { http: Array<{ route: Array<{ weight?: number }> }> };
    const routes = spec.http[0]?.route;
    expect(routes?.map((d) => d.weight)).toEqual([90, 10]);
    expect(kube.get("virtualservices", NAMESPACE, "root")).toEqual(rootBefore);
  });
});
