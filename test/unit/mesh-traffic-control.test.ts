/**
 * Traffic control against the Kubernetes API emulator, through the real client: only the managed
 * weights and the action's annotation ever change, other writers' edits survive, faults end in a
 * known state, and preflight failures write nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { MeshError } from "../../src/mesh/errors.ts";
import type { KubernetesMeshApi } from "../../src/mesh/kubernetes.ts";
import { PreflightError, preflight } from "../../src/mesh/preflight.ts";
import { targetOf } from "../../src/mesh/routes.ts";
import { isTransient } from "../../src/retry.ts";
import type { Split } from "../../src/rollout/model/split.ts";
import { LeaseHeldError } from "../../src/rollout/model/state.ts";
import { destinationRule, NAMESPACE, pod, seedRunbook } from "../mesh/fixtures.ts";
import { type AuditEntry, KubeApiEmulator, type KubeObject } from "../mesh/kube-api.ts";
import { meshApi, meshRouter, SUBSETS, stateTransition } from "../support/mesh-router.ts";

let kube: KubeApiEmulator;
const subsets = SUBSETS;

beforeEach(async () => {
  kube = await new KubeApiEmulator().start();
});
afterEach(async () => {
  await kube.stop();
});

function api(token = "admin-token") {
  return meshApi(kube, { token });
}

function router(split: Split = subsets, name = "backend", routes: string[] = []) {
  return meshRouter(api(), { split, name, routes });
}

/** A minimal state transition for these tests; the rollout engine builds the real ones. */
function next(weight: number, holder = "run-1") {
  return stateTransition(weight, {
    holder,
    stageIndex: 0,
    leaseBlocksRollback: true,
    holderInHistory: false,
  });
}

const writes = (audit: AuditEntry[]) => audit.filter((e) => ["patch", "update", "create"].includes(e.verb));

/** Every route of every stored object in the audit log: destination weights sum to 100. */
function weightSums(audit: AuditEntry[]): number[] {
  return writes(audit)
    .filter((e) => e.object)
    .flatMap((e) =>
      (((e.object?.spec ?? {}) as { http?: Array<{ route?: Array<{ weight?: number }> }> }).http ?? [])
        .map((r) => r.route ?? [])
        .filter((d) => d.length > 1)
        .map((d) => d.reduce((s, x) => s + (x.weight ?? 0), 0)),
    );
}

function bookinfo(): KubeObject {
  return {
    apiVersion: "networking.istio.io/v1beta1",
    kind: "VirtualService",
    metadata: {
      name: "reviews",
      namespace: NAMESPACE,
      labels: { app: "reviews" },
      annotations: { owner: "team-a" },
    },
    spec: {
      hosts: ["reviews"],
      gateways: ["mesh"],
      http: [
        {
          name: "jason",
          match: [{ headers: { "end-user": { exact: "jason" } } }],
          route: [{ destination: { host: "reviews", subset: "v1" } }],
          timeout: "2s",
        },
        {
          name: "primary",
          route: [
            {
              destination: { host: "reviews", subset: "v1", port: { number: 9080 } },
              headers: { request: { set: { "x-version": "stable" } } },
            },
          ],
          retries: { attempts: 3, perTryTimeout: "2s", retryOn: "gateway-error,connect-failure" },
          timeout: "10s",
          corsPolicy: { allowOrigins: [{ exact: "https://example.com" }], allowMethods: ["GET"] },
          mirror: { host: "reviews-shadow" },
          mirrorPercentage: { value: 5 },
        },
      ],
    },
  };
}

function seedBookinfo() {
  seedRunbook(kube);
  kube.seed("virtualservices", bookinfo());
  kube.seed("destinationrules", {
    ...destinationRule(),
    metadata: { name: "reviews", namespace: NAMESPACE },
    spec: {
      host: "reviews",
      subsets: [
        { name: "v1", labels: { version: "v1" } },
        { name: "v2", labels: { version: "v2" } },
      ],
    },
  });
}

const specOf = (o: KubeObject | undefined) =>
  (o?.spec ?? {}) as {
    http: Array<
      Record<string, unknown> & {
        route: Array<{ weight?: number; destination: { host?: string; subset?: string } }>;
      }
    >;
  };

describe("shifting weights", () => {
  it("changes only the managed weights and the annotation through 1/10/50/100 and a rollback", async () => {
    seedBookinfo();
    const before = kube.get("virtualservices", NAMESPACE, "reviews") as KubeObject;
    const r = router(subsets, "reviews");
    for (const weight of [1, 10, 50, 100]) {
      await r.write(weight, next(weight));
      const now = kube.get("virtualservices", NAMESPACE, "reviews") as KubeObject;
      const primary = specOf(now).http[1] as {
        route: Array<{ weight?: number; destination: Record<string, unknown>; headers?: unknown }>;
      };
      expect(primary.route.map((d) => d.weight)).toEqual([100 - weight, weight]);
      // The canary destination copies the stable one: port and headers kept, subset swapped.
      expect(primary.route[1]).toEqual({
        destination: { host: "reviews", subset: "v2", port: { number: 9080 } },
        headers: { request: { set: { "x-version": "stable" } } },
        weight,
      });
      // Everything but the managed weights and the annotation is as before.
      const strip = (o: KubeObject) => {
        const copy = structuredClone(o) as KubeObject;
        const http = specOf(copy).http;
        http[1]!.route = [http[1]!.route[0]!];
        delete (http[1]!.route[0] as { weight?: number }).weight;
        delete copy.metadata.annotations?.[STATE_ANNOTATION];
        for (const f of ["resourceVersion", "generation"]) delete copy.metadata[f];
        return copy;
      };
      expect(strip(now)).toEqual(strip(before));
    }
    expect((await r.read()).weight).toBe(100);
    await r.write(0, next(0));
    const after = kube.get("virtualservices", NAMESPACE, "reviews") as KubeObject;
    // A rollback restores the routes exactly: the canary destination the action added is gone.
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.annotations?.owner).toBe("team-a");
    expect(JSON.parse(after.metadata.annotations?.[STATE_ANNOTATION] as string)).toMatchObject({
      status: "rolled-back",
      weight: 0,
    });
    expect(writes(kube.audit)).toHaveLength(5);
    expect(weightSums(kube.audit).every((s) => s === 100)).toBe(true);
    expect(weightSums(kube.audit).length).toBeGreaterThanOrEqual(4);
    // Only the JSON Patch content type, and each patch tests the routes it relies on.
    for (const w of writes(kube.audit)) {
      expect(w.contentType).toBe("application/json-patch+json");
      expect((w.requestBody as Array<{ op: string }>)[0]?.op).toBe("test");
    }
  });

  it("keeps another writer's edit made between two stages", async () => {
    seedRunbook(kube);
    const r = router();
    await r.write(1, next(1));
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      specOf(o).http[0]!.timeout = "3s";
    });
    await r.write(10, next(10));
    await r.write(50, next(50));
    const final = kube.get("virtualservices", NAMESPACE, "backend");
    expect(specOf(final).http[0]!.timeout).toBe("3s");
    expect(specOf(final).http[0]!.route.map((d) => d.weight)).toEqual([50, 50]);
  });

  it("re-reads and re-plans when the routes changed under it, never overwriting", async () => {
    seedRunbook(kube);
    const r = router();
    await r.write(10, next(10));
    // Another writer changes the managed route's destinations between our read and our patch.
    kube.injectFault({ status: 409, count: 1, match: { verb: "patch" } });
    await r.write(50, next(50));
    const patches = kube.audit.filter((e) => e.verb === "patch");
    expect(patches.map((p) => p.code)).toEqual([200, 409, 200]);
    expect(
      specOf(kube.get("virtualservices", NAMESPACE, "backend")).http[0]!.route.map((d) => d.weight),
    ).toEqual([50, 50]);
  });

  it("answers a failed test (422) by re-planning on the fresh object", async () => {
    seedRunbook(kube);
    const realApi = api();
    let raced = false;
    const racingApi = Object.create(realApi) as KubernetesMeshApi;
    racingApi.patchVirtualService = async (...args) => {
      if (!raced) {
        raced = true;
        kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
          specOf(o).http[0]!.route[0]!.destination = {
            host: "backend",
            subset: "v1",
            port: { number: 8080 },
          } as never;
        });
      }
      return realApi.patchVirtualService(...args);
    };
    const r = meshRouter(racingApi);
    await r.write(10, next(10));
    const patches = kube.audit.filter((e) => e.verb === "patch");
    expect(patches.map((p) => p.code)).toEqual([422, 200]);
    const route = specOf(kube.get("virtualservices", NAMESPACE, "backend")).http[0]!.route as Array<{
      destination: { port?: unknown };
      weight: number;
    }>;
    expect(route[0]?.destination.port).toEqual({ number: 8080 });
    expect(route.map((d) => d.weight)).toEqual([90, 10]);
  });

  it("retries three 500s in a row (the router's own retry) and never repeats a write that took", async () => {
    seedRunbook(kube);
    const r = router();
    await r.write(10, next(10));
    kube.injectFault({ status: 500, count: 3, match: { verb: "patch" } });
    await r.write(50, next(50));
    expect(kube.audit.filter((e) => e.verb === "patch").map((p) => p.code)).toEqual([
      200, 500, 500, 500, 200,
    ]);
    expect((await r.read()).weights).toEqual([50]);
  });

  it("splits between two hosts", async () => {
    seedRunbook(kube);
    for (const [name, version] of [
      ["reviews-v1", "v1"],
      ["reviews-v2", "v2"],
    ] as const) {
      kube.seed("services", {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace: NAMESPACE },
        spec: { selector: { app: "reviews", version } },
      });
      kube.seed("pods", {
        ...pod({ version }),
        metadata: { name: `${name}-abc`, namespace: NAMESPACE, labels: { app: "reviews", version } },
      });
    }
    kube.seed("virtualservices", {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "reviews", namespace: NAMESPACE },
      spec: {
        hosts: ["reviews.example.com"],
        http: [{ route: [{ destination: { host: "reviews-v1.shop.svc.cluster.local" } }] }],
      },
    });
    const split: Split = { mode: "host", stableHost: "reviews-v1", canaryHost: "reviews-v2" };
    const pre = await preflight(api(), NAMESPACE, "reviews", split, targetOf(split), []);
    expect(pre.canaryLabels).toEqual({ app: "reviews", version: "v2" });
    const r = router(split, "reviews");
    await r.write(10, next(10));
    const route = specOf(kube.get("virtualservices", NAMESPACE, "reviews")).http[0]!.route as Array<{
      destination: { host: string };
      weight: number;
    }>;
    expect(route).toEqual([
      { destination: { host: "reviews-v1.shop.svc.cluster.local" }, weight: 90 },
      { destination: { host: "reviews-v2" }, weight: 10 },
    ]);
    await r.write(0, next(0));
    expect(specOf(kube.get("virtualservices", NAMESPACE, "reviews")).http[0]!.route).toEqual([
      { destination: { host: "reviews-v1.shop.svc.cluster.local" } },
    ]);
  });

  it("refuses a second run while another holds the lease, writing nothing", async () => {
    seedRunbook(kube);
    await router().write(10, next(10, "acme/shop run 41"));
    const before = writes(kube.audit).length;
    const error = await router()
      .write(50, next(50, "acme/shop run 42"))
      .catch((e) => e);
    expect(error).toBeInstanceOf(LeaseHeldError);
    expect(error.message).toContain("being rolled out by acme/shop run 41");
    expect(writes(kube.audit)).toHaveLength(before);
  });

  it("reads the VirtualService from whichever Istio API version is served", async () => {
    seedRunbook(kube);
    const view = await router().read();
    expect(view.object.apiVersion).toBe("networking.istio.io/v1");
    expect(view.weight).toBe(0);
  });
});

describe("API errors are one clear line", () => {
  it("a hung API server becomes a clear error after the request timeout, not a hung step", async () => {
    seedRunbook(kube);
    kube.injectFault({ status: "hang", count: 1, match: { verb: "get" } });
    const hurried = meshApi(kube, { timeoutMs: 300 });
    // A hung call would never settle (the test's timeout would fail it); the message says the
    // request timeout ended it.
    const error = await hurried.getVirtualService(NAMESPACE, "backend").catch((e) => e);
    expect(error).toBeInstanceOf(MeshError);
    expect(error.message).toBe(
      "Kubernetes API unreachable while trying to get virtualservices.networking.istio.io shop/backend: no answer in time",
    );
    expect(isTransient(error)).toBe(true);
  });

  it("403 names the verb, resource, namespace and the RBAC rule needed", async () => {
    seedRunbook(kube);
    kube.grant("reader", {
      user: "system:serviceaccount:shop:canary",
      namespaces: [NAMESPACE],
      rules: [{ apiGroups: ["networking.istio.io"], resources: ["virtualservices"], verbs: ["get"] }],
    });
    const r = meshRouter(api("reader"));
    const error = await r.write(10, next(10)).catch((e) => e);
    expect(error.message).toMatch(
      /^Forbidden: the action's identity cannot patch virtualservices.networking.istio.io in namespace shop; grant it a Role rule \{apiGroups: \["networking.istio.io"\], resources: \["virtualservices"\], verbs: \["patch"\]\}/,
    );
    expect(error.message).not.toContain("\n");
  });

  it("404 names the object", async () => {
    seedRunbook(kube);
    const error = await router(subsets, "nope")
      .read()
      .catch((e) => e);
    expect(error.message).toBe(
      "virtualservices.networking.istio.io shop/nope not found (404): check the name and the namespace",
    );
  });

  it("an admission rejection quotes the server", async () => {
    seedRunbook(kube);
    const error = await api()
      .patchVirtualService(NAMESPACE, "backend", "networking.istio.io/v1", [
        {
          op: "add",
          path: "/spec/http/0/route/-",
          value: { destination: { host: "backend", subset: "v2" }, weight: 10 },
        },
      ])
      .catch((e) => e);
    expect(error.message).toBe(
      'Istio rejected the change to virtualservices.networking.istio.io shop/backend: admission webhook "validation.istio.io" denied the request: configuration is invalid: total destination weight 110 != 100',
    );
  });
});

describe("preflight", () => {
  async function preflightProblems(): Promise<string[]> {
    const error = await preflight(api(), NAMESPACE, "backend", subsets, targetOf(subsets), []).catch(
      (e) => e,
    );
    expect(writes(kube.audit)).toEqual([]);
    if (error instanceof PreflightError) return error.problems;
    if (error instanceof Error) return [error.message];
    return [];
  }

  it("passes on the runbook and reports the versions' labels", async () => {
    seedRunbook(kube);
    const result = await preflight(api(), NAMESPACE, "backend", subsets, targetOf(subsets), []);
    expect(result.canaryLabels).toEqual({ app: "backend", version: "v2" });
    expect(result.warnings).toEqual([]);
    expect(writes(kube.audit)).toEqual([]);
  });

  it("a missing VirtualService", async () => {
    expect(await preflightProblems()).toEqual([
      "virtualservices.networking.istio.io shop/backend not found (404): check the name and the namespace",
    ]);
  });

  it("a route that does not route to stable", async () => {
    seedRunbook(kube);
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      specOf(o).http[0]!.route[0]!.destination.subset = "v0";
    });
    expect((await preflightProblems())[0]).toMatch(
      /has no http route without match \(or with only a catch-all uri prefix "\/"\) whose only destination is the stable subset v1/,
    );
  });

  it("weights that do not sum to 100", async () => {
    seedRunbook(kube);
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      specOf(o).http[0]!.route = [
        { destination: { host: "backend", subset: "v1" }, weight: 70 },
        { destination: { host: "backend", subset: "v2" }, weight: 20 },
      ];
    });
    expect(await preflightProblems()).toEqual(['http route "primary" has weights summing to 90, not 100']);
  });

  it("a DestinationRule without the canary subset (the 503 trap)", async () => {
    seedRunbook(kube);
    kube.editOutOfBand("destinationrules", NAMESPACE, "backend", (o) => {
      (o.spec as { subsets: unknown[] }).subsets = [{ name: "v1", labels: { version: "v1" } }];
    });
    expect(await preflightProblems()).toContainEqual(
      'DestinationRule shop/backend has no subset "v2" (it defines v1): traffic sent to it would get 503 Service Unavailable',
    );
  });

  it("no DestinationRule at all", async () => {
    seedRunbook(kube);
    kube.editOutOfBand("destinationrules", NAMESPACE, "backend", (o) => {
      (o.spec as { host: string }).host = "other";
    });
    expect((await preflightProblems())[0]).toMatch(
      /^no DestinationRule for host backend in namespace shop: .*503 Service Unavailable/,
    );
  });

  it("canary pods without a sidecar", async () => {
    seedRunbook(kube, { canarySidecar: false });
    expect((await preflightProblems())[0]).toMatch(
      /^sidecar not injected or not ready: canary pod backend-v2-\S+ \(containers: backend\) has no istio-proxy container/,
    );
  });

  it("canary pods not ready", async () => {
    seedRunbook(kube, { canaryReady: false });
    expect((await preflightProblems())[0]).toMatch(
      /^sidecar not injected or not ready: no canary pod matching \{app=backend,version=v2\} is READY 2\/2/,
    );
  });

  it("no canary pods", async () => {
    seedRunbook(kube);
    kube.editOutOfBand("pods", NAMESPACE, "backend-v2-7d9c8b0f5-x0k2p", (o) => {
      o.metadata.labels = { app: "backend", version: "v2-old" };
    });
    expect((await preflightProblems())[0]).toMatch(
      /^no canary pods match \{app=backend,version=v2\} in namespace shop: deploy the canary/,
    );
  });

  it("a namespace without injection, when the canary has no sidecar", async () => {
    seedRunbook(kube, { injection: false, canarySidecar: false });
    expect(await preflightProblems()).toContainEqual(
      "namespace shop does not enable sidecar injection (label it istio-injection=enabled or istio.io/rev=<revision>, or run it in ambient mode with istio.io/dataplane-mode=ambient and a waypoint)",
    );
  });

  it("a namespace without injection is only a warning when the pods have their sidecar", async () => {
    seedRunbook(kube, { injection: false });
    const result = await preflight(api(), NAMESPACE, "backend", subsets, targetOf(subsets), []);
    expect(result.warnings[0]).toMatch(/does not enable sidecar injection.*have their sidecar anyway/);
  });
});
