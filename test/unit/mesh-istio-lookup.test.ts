/**
 * Preflight finds what Istio would use (issue 13, findings 2 and 5), against the Kubernetes API
 * emulator through the real client: the DestinationRule in the VirtualService's namespace, then the
 * service's, then the root namespace, honouring exportTo and the most specific host; ServiceEntry
 * hosts and their workloads; hosts in another namespace; mirrors to either version. Every refusal
 * happens before any write.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { InputError, parseConfig } from "../../src/inputs/config.ts";
import {
  PreflightError,
  type PreflightOptions,
  type PreflightResult,
  preflight,
} from "../../src/mesh/preflight.ts";
import { targetOf } from "../../src/mesh/routes.ts";
import type { Split } from "../../src/rollout/model/split.ts";
import { NAMESPACE, seedRunbook } from "../mesh/fixtures.ts";
import type { KubeApiEmulator, KubeObject } from "../mesh/kube-api.ts";
import { useKubeEmulator, writes } from "../support/kube-emulator.ts";
import { meshApi, SUBSETS } from "../support/mesh-router.ts";

const emulator = useKubeEmulator();
let kube: KubeApiEmulator;
beforeEach(() => {
  kube = emulator();
});
const VERSIONS = { v1: { version: "v1" }, v2: { version: "v2" } };

function rule(
  namespace: string,
  name: string,
  host: string,
  subsets: Record<string, Record<string, string>> = VERSIONS,
  extra: Record<string, unknown> = {},
): KubeObject {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "DestinationRule",
    metadata: { name, namespace },
    spec: { host, subsets: Object.entries(subsets).map(([n, labels]) => ({ name: n, labels })), ...extra },
  };
}

function routeTo(
  namespace: string,
  name: string,
  host: string,
  http: Record<string, unknown> = {},
): KubeObject {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name, namespace },
    spec: {
      hosts: [host],
      http: [{ name: "primary", route: [{ destination: { host, subset: "v1" } }], ...http }],
    },
  };
}

function entry(name: string, host: string, spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "ServiceEntry",
    metadata: { name, namespace: NAMESPACE },
    spec: { hosts: [host], ports: [{ number: 80, name: "http", protocol: "HTTP" }], ...spec },
  };
}

/** The runbook (shop: Service backend, pods v1 and v2) with shop's DestinationRule for another host. */
function seedWithoutRule(): void {
  seedRunbook(kube);
  kube.editOutOfBand("destinationrules", NAMESPACE, "backend", (o) => {
    (o.spec as { host: string }).host = "unrelated";
  });
}

/** The VirtualService frontend/backend, routing to the runbook's backend in shop. */
function seedFrontend(host = "backend.shop"): void {
  kube.seed("virtualservices", routeTo("frontend", "backend", host));
}

interface Run {
  namespace?: string;
  name?: string;
  split?: Split;
  options?: PreflightOptions;
  token?: string;
}

function run({ namespace = NAMESPACE, name = "backend", split = SUBSETS, options, token }: Run = {}) {
  kube.audit.length = 0;
  return preflight(meshApi(kube, { token }), namespace, name, split, targetOf(split), [], options);
}

async function passes(args: Run = {}): Promise<PreflightResult> {
  const result = await run(args);
  expect(writes(kube.audit)).toEqual([]);
  return result;
}

async function refusal(args: Run = {}): Promise<string[]> {
  const error = await run(args).catch((e: unknown) => e);
  expect(writes(kube.audit)).toEqual([]);
  if (error instanceof PreflightError) return error.problems;
  throw error instanceof Error ? error : new Error("preflight passed");
}

describe("DestinationRule lookup", () => {
  it("finds a rule in the root namespace, but not one exported only to itself there", async () => {
    seedWithoutRule();
    kube.seed("destinationrules", rule("istio-system", "mesh-backend", "backend.shop.svc.cluster.local"));
    const found = await passes();
    expect(found.destinationRule).toBe("istio-system/mesh-backend");
    expect(found.canaryLabels).toEqual({ app: "backend", version: "v2" });

    kube.editOutOfBand("destinationrules", "istio-system", "mesh-backend", (o) => {
      (o.spec as { exportTo: string[] }).exportTo = ["."];
    });
    expect(await refusal()).toEqual([
      "no DestinationRule for host backend in namespace shop: none in shop, istio-system applies to it (Istio looks in the VirtualService's namespace, the service's, then the root namespace istio-system, honouring exportTo); without one the subsets v1 and v2 do not exist and Istio answers 503 Service Unavailable",
    ]);
  });

  it("looks in the root namespace the input names instead of istio-system", async () => {
    seedWithoutRule();
    kube.seed("destinationrules", rule("istio-system", "mesh-backend", "backend.shop.svc.cluster.local"));
    kube.seed("destinationrules", rule("mesh-root", "mesh-backend", "backend.shop.svc.cluster.local"));
    const found = await passes({ options: { rootNamespace: "mesh-root" } });
    expect(found.destinationRule).toBe("mesh-root/mesh-backend");
  });

  it("a rule in the VirtualService's namespace wins over the service's, for a host in another namespace", async () => {
    seedRunbook(kube);
    seedFrontend();
    // shop's own rule lacks the canary subset: using it would refuse the rollout.
    kube.editOutOfBand("destinationrules", NAMESPACE, "backend", (o) => {
      (o.spec as { subsets: unknown[] }).subsets = [{ name: "v1", labels: { version: "v1" } }];
    });
    kube.seed(
      "destinationrules",
      rule("frontend", "backend-from-frontend", "backend.shop.svc.cluster.local"),
    );
    const found = await passes({ namespace: "frontend" });
    expect(found.destinationRule).toBe("frontend/backend-from-frontend");
    // The host's pods and metrics are the Service's, in shop.
    expect(found.canaryService).toEqual({ name: "backend", namespace: "shop" });
    expect(kube.audit.filter((e) => e.resource === "pods").map((e) => e.namespace)).toEqual(["shop", "shop"]);
  });

  it("takes the service's namespace's rule only when it is exported to the VirtualService's", async () => {
    seedRunbook(kube);
    seedFrontend("backend.shop.svc");
    const exportTo = (namespaces: string[]) =>
      kube.editOutOfBand("destinationrules", NAMESPACE, "backend", (o) => {
        (o.spec as { exportTo: string[] }).exportTo = namespaces;
      });
    exportTo(["payments"]);
    expect((await refusal({ namespace: "frontend" }))[0]).toMatch(
      /^no DestinationRule for host backend\.shop\.svc in namespace frontend: none in frontend, shop, istio-system/,
    );
    exportTo(["."]);
    expect(await refusal({ namespace: "frontend" })).toHaveLength(1);
    exportTo(["payments", "frontend"]);
    expect((await passes({ namespace: "frontend" })).destinationRule).toBe("shop/backend");
  });

  it("matches a fully qualified route host to a rule's short host", async () => {
    seedRunbook(kube);
    kube.seed("virtualservices", routeTo(NAMESPACE, "fqdn", "backend.shop.svc.cluster.local"));
    const found = await passes({ name: "fqdn" });
    expect(found.destinationRule).toBe("shop/backend");
    expect(found.stableService).toEqual({ name: "backend", namespace: "shop" });
  });

  it("takes the most specific wildcard host", async () => {
    seedWithoutRule();
    kube.seed("destinationrules", rule("istio-system", "everything", "*.local", { v1: { version: "v1" } }));
    kube.seed("destinationrules", rule("istio-system", "all", "*", { v1: { version: "v1" } }));
    kube.seed("destinationrules", rule("istio-system", "shop-wide", "*.shop.svc.cluster.local"));
    expect((await passes()).destinationRule).toBe("istio-system/shop-wide");
  });
});

describe("ServiceEntry hosts", () => {
  const HOST = "payments.internal.example";

  it("finds the workloads a ServiceEntry selects, and adds the subsets' labels", async () => {
    seedRunbook(kube);
    kube.seed("virtualservices", routeTo(NAMESPACE, "payments", HOST));
    kube.seed(
      "serviceentries",
      entry("payments", HOST, { workloadSelector: { labels: { app: "backend" } } }),
    );
    kube.seed("destinationrules", rule(NAMESPACE, "payments", HOST));
    const found = await passes({ name: "payments" });
    expect(found.destinationRule).toBe("shop/payments");
    expect(found.canaryLabels).toEqual({ app: "backend", version: "v2" });
    // Istio's metrics name a ServiceEntry's service by its host.
    expect(found.stableService).toEqual({ name: HOST, namespace: "shop" });
    const podLists = kube.audit.filter((e) => e.resource === "pods").map((e) => decodeURIComponent(e.path));
    expect(podLists[0]).toMatch(/labelSelector=app=backend,version=v2/);
  });

  it("refuses a ServiceEntry without workloadSelector and says why", async () => {
    seedRunbook(kube);
    kube.seed("virtualservices", routeTo(NAMESPACE, "payments", HOST));
    kube.seed("serviceentries", entry("payments", HOST, { location: "MESH_EXTERNAL", resolution: "DNS" }));
    expect(await refusal({ name: "payments" })).toEqual([
      `host ${HOST} is defined by ServiceEntry shop/payments, which has no workloadSelector (location MESH_EXTERNAL: its endpoints are outside the mesh): there are no pods to check the readiness of, and Istio's metrics carry no version label the action can select each version by; if both versions' requests can still be told apart in Prometheus, set canary-selector and stable-selector (for example destination_workload="payments-v2")`,
    ]);
    kube.editOutOfBand("serviceentries", NAMESPACE, "payments", (o) => {
      (o.spec as { endpoints: unknown[] }).endpoints = [{ address: "10.0.0.7" }];
    });
    expect((await refusal({ name: "payments" }))[0]).toMatch(
      /which lists its endpoints instead of selecting workloads/,
    );
  });

  it("refuses a host that is neither a Service nor a ServiceEntry, naming where it looked", async () => {
    seedRunbook(kube);
    kube.seed("virtualservices", routeTo(NAMESPACE, "payments", HOST));
    expect(await refusal({ name: "payments" })).toEqual([
      `host ${HOST}: no ServiceEntry for it in namespaces shop, istio-system exported to shop`,
    ]);
  });

  it("resolves each host of a host split: a Service for stable, a ServiceEntry for the canary", async () => {
    seedRunbook(kube);
    kube.editOutOfBand("services", NAMESPACE, "backend", (o) => {
      (o.spec as { selector: Record<string, string> }).selector = { app: "backend", version: "v1" };
    });
    kube.seed("virtualservices", {
      ...routeTo(NAMESPACE, "split", "backend"),
      spec: { hosts: ["backend"], http: [{ route: [{ destination: { host: "backend" } }] }] },
    });
    kube.seed(
      "serviceentries",
      entry("canary", "backend-canary.internal", { workloadSelector: { labels: { version: "v2" } } }),
    );
    const split: Split = { mode: "host", stableHost: "backend", canaryHost: "backend-canary.internal" };
    const found = await passes({ name: "split", split });
    expect(found.canaryLabels).toEqual({ version: "v2" });
    expect(found.canaryService).toEqual({ name: "backend-canary.internal", namespace: "shop" });
    expect(found.stableService).toEqual({ name: "backend", namespace: "shop" });
  });
  it("refuses a ServiceEntry canary whose workloads include stable's pods", async () => {
    seedRunbook(kube);
    kube.seed("virtualservices", {
      ...routeTo(NAMESPACE, "split", "backend"),
      spec: { hosts: ["backend"], http: [{ route: [{ destination: { host: "backend" } }] }] },
    });
    kube.seed(
      "serviceentries",
      entry("canary", "backend-canary.internal", { workloadSelector: { labels: { app: "backend" } } }),
    );
    const split: Split = { mode: "host", stableHost: "backend", canaryHost: "backend-canary.internal" };
    expect((await refusal({ name: "split", split }))[0]).toMatch(
      /^the canary and stable share pods backend-v1-\S+, backend-v2-\S+: selected by both the canary's labels \{app=backend\}/,
    );
  });
});

describe("mirrors", () => {
  const mirrorOnPrimary = (mirror: Record<string, unknown>) =>
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      const http = (o.spec as { http: Array<Record<string, unknown>> }).http;
      Object.assign(http[0] as object, mirror);
    });

  it("refuses a mirror to the canary before any write, naming the route and why", async () => {
    seedRunbook(kube);
    mirrorOnPrimary({ mirror: { host: "backend", subset: "v2" } });
    expect(await refusal()).toEqual([
      `http route "primary" mirrors 100 % of its requests to backend (subset v2), the canary: Istio's metrics do not mark mirrored requests, so the canary's counts would include copies the action cannot tell apart, and after promotion every request would reach the new version twice; remove the mirror (or point it elsewhere) before the rollout`,
    ]);
  });

  it("refuses a `mirrors` entry to the canary and a mirror to the host without subset, but not at 0 %", async () => {
    seedRunbook(kube);
    mirrorOnPrimary({
      mirrors: [
        { destination: { host: "backend.shop.svc.cluster.local", subset: "v2" }, percentage: { value: 5 } },
      ],
    });
    expect((await refusal())[0]).toMatch(
      /^http route "primary" mirrors 5 % of its requests to backend\.shop\.svc\.cluster\.local \(subset v2\), the canary:/,
    );
    mirrorOnPrimary({ mirrors: [], mirror: { host: "backend" } });
    expect((await refusal())[0]).toMatch(
      /mirrors 100 % of its requests to backend, which reaches the canary's pods too:/,
    );
    mirrorOnPrimary({ mirror: { host: "backend", subset: "v2" }, mirrorPercentage: { value: 0 } });
    expect((await passes()).warnings).toEqual([]);
  });

  it("warns of a mirror to stable", async () => {
    seedRunbook(kube);
    mirrorOnPrimary({ mirror: { host: "backend", subset: "v1" }, mirrorPercentage: { value: 20 } });
    expect((await passes()).warnings).toEqual([
      `http route "primary" mirrors 20 % of its requests to backend (subset v1), the stable version: Istio's metrics do not mark mirrored requests, so stable's counts include the copies and the comparison with the canary is mildly affected`,
    ]);
  });

  it("notes a mirror elsewhere on a managed route, which it leaves as it is", async () => {
    seedRunbook(kube);
    mirrorOnPrimary({ mirror: { host: "backend-shadow" } });
    const found = await passes();
    expect(found.warnings).toEqual([]);
    expect(found.notes).toEqual([
      `http route "primary" mirrors 100 % of its requests to backend-shadow; the action leaves the mirror as it is, so after promotion it copies the canary's requests there`,
    ]);
  });
});

describe("a root namespace the action may not read", () => {
  const SHOP_ONLY = "shop-role";
  beforeEach(() => {
    kube.grant(SHOP_ONLY, {
      user: "system:serviceaccount:shop:canary-action",
      namespaces: [NAMESPACE],
      rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
    });
  });

  it("is never read when the VirtualService's namespace has the rule", async () => {
    seedRunbook(kube);
    const found = await passes({ token: SHOP_ONLY });
    expect(found.warnings).toEqual([]);
    expect(kube.audit.filter((e) => e.namespace === "istio-system")).toEqual([]);
  });

  it("is a warning, not a failure, when no readable namespace has the rule", async () => {
    seedWithoutRule();
    kube.seed("destinationrules", rule("istio-system", "mesh-backend", "backend.shop.svc.cluster.local"));
    const found = await passes({ token: SHOP_ONLY });
    expect(found.destinationRule).toBeUndefined();
    expect(found.warnings).toEqual([
      "could not list DestinationRules in namespace istio-system (forbidden): a DestinationRule there for host backend.shop.svc.cluster.local would not be seen; grant list on destinationrules.networking.istio.io in istio-system to include it (see manifests/rbac.yaml)",
      "no DestinationRule for host backend in shop, and istio-system could not be read: the subsets v1 and v2 and the canary's pods are not checked (a missing subset is a 503), and the analysis needs canary-selector and stable-selector",
    ]);
    expect(kube.audit.filter((e) => e.code === 403).map((e) => e.namespace)).toEqual(["istio-system"]);
  });
});

describe("input istio-root-namespace", () => {
  const base = {
    "virtual-service": "backend",
    "stable-subset": "v1",
    "canary-subset": "v2",
    "skip-analysis": "true",
  };

  it("defaults to istio-system and takes a namespace name", () => {
    expect(parseConfig(base).istioRootNamespace).toBe("istio-system");
    expect(parseConfig({ ...base, "istio-root-namespace": "mesh-root" }).istioRootNamespace).toBe(
      "mesh-root",
    );
  });

  it("refuses a value that is not a namespace name, naming the input", () => {
    const error = (() => {
      try {
        parseConfig({ ...base, "istio-root-namespace": "Istio_System" });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toBe(
      `Input 'istio-root-namespace': "Istio_System" is not a namespace name (lowercase letters, digits and '-', at most 63 characters, starting and ending alphanumeric)`,
    );
  });
});
