/**
 * VirtualService shapes users bring as they are (issue 13), against the Kubernetes API emulator
 * through the real client: unnamed routes selected by position, tcp and tls routes beside the http
 * ones, and canaries that share pods with stable. Every refusal happens before any write.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { PreflightError, preflight } from "../../src/mesh/preflight.ts";
import { targetOf } from "../../src/mesh/routes.ts";
import type { Split } from "../../src/rollout/model/split.ts";

const describeManagedRoutes = (m: Array<{ index: number; name?: string }>) =>
  m.map((r) => (r.name ? `http route "${r.name}"` : `http route #${r.index}`)).join(", ");

import { NAMESPACE, pod, seedRunbook } from "../mesh/fixtures.ts";
import type { KubeApiEmulator, KubeObject } from "../mesh/kube-api.ts";
import { useKubeEmulator, writes } from "../support/kube-emulator.ts";
import { meshApi, meshRouter, SUBSETS, stateTransition } from "../support/mesh-router.ts";

const emulator = useKubeEmulator();
let kube: KubeApiEmulator;
beforeEach(() => {
  kube = emulator();
});

type Spec = Record<string, unknown> & { http: Array<Record<string, unknown>> };
const specOf = (o: KubeObject | undefined) => o?.spec as Spec;

const toV1 = [{ destination: { host: "backend", subset: "v1" } }];
const gatewayMatch = [{ uri: { prefix: "/" } }];

/** The runbook with the backend VirtualService's spec replaced. */
function seedWithSpec(spec: Record<string, unknown>): void {
  seedRunbook(kube);
  kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
    o.spec = { hosts: ["backend"], ...spec };
  });
  kube.audit.length = 0;
}

async function refusal(split: Split = SUBSETS, routes: string[] = [], name = "backend"): Promise<string[]> {
  const error = await preflight(meshApi(kube), NAMESPACE, name, split, targetOf(split), routes).catch(
    (e: unknown) => e,
  );
  expect(writes(kube.audit)).toEqual([]);
  if (error instanceof PreflightError) return error.problems;
  if (error instanceof Error) return [error.message];
  throw new Error("preflight passed");
}

function next(weight: number) {
  return stateTransition(weight, {
    holder: "run-1",
    stageIndex: 0,
    leaseBlocksRollback: true,
    holderInHistory: false,
  });
}

describe("routes by position", () => {
  it('selects an unnamed route with a match as "#0", shifts only it and restores it', async () => {
    seedWithSpec({
      http: [
        { match: gatewayMatch, route: toV1 },
        { name: "other", route: [{ destination: { host: "other" } }] },
      ],
    });
    const before = specOf(kube.get("virtualservices", NAMESPACE, "backend"));
    const checked = await preflight(meshApi(kube), NAMESPACE, "backend", SUBSETS, targetOf(SUBSETS), ["#0"]);
    expect(checked.managed.map((m) => m.index)).toEqual([0]);
    expect(describeManagedRoutes(checked.managed)).toBe("http route #0");
    expect(writes(kube.audit)).toEqual([]);

    const router = meshRouter(meshApi(kube), { routes: ["#0"] });
    await router.write(10, next(10));
    const during = specOf(kube.get("virtualservices", NAMESPACE, "backend"));
    expect(during.http[0]?.route).toEqual([
      { destination: { host: "backend", subset: "v1" }, weight: 90 },
      { destination: { host: "backend", subset: "v2" }, weight: 10 },
    ]);
    expect(during.http[1]).toEqual(before.http[1]);
    await router.write(0, next(0));
    expect(specOf(kube.get("virtualservices", NAMESPACE, "backend")).http).toEqual(before.http);
  });

  it("by default manages every unnamed route without match that goes to stable alone", async () => {
    seedWithSpec({
      http: [
        { match: [{ headers: { "end-user": { exact: "jason" } } }], route: toV1 },
        { name: "primary", route: toV1 },
        { route: toV1 },
      ],
    });
    const checked = await preflight(meshApi(kube), NAMESPACE, "backend", SUBSETS, targetOf(SUBSETS), []);
    expect(describeManagedRoutes(checked.managed)).toBe('http route "primary", http route #2');
    expect(writes(kube.audit)).toEqual([]);
  });

  it("refuses a position past the routes and a route selected twice, listing what it has", async () => {
    seedWithSpec({
      http: [
        { match: gatewayMatch, route: toV1 },
        { name: "primary", route: toV1 },
      ],
    });
    expect(await refusal(SUBSETS, ["#2"])).toEqual([
      "VirtualService shop/backend has no http route #2 (it has #0 (unnamed), primary)",
    ]);
    expect(await refusal(SUBSETS, ["primary", "#1"])).toEqual([
      `the 'routes' input selects http route "primary" of VirtualService shop/backend twice (by name and by position #1)`,
    ]);
  });

  it('manages an unnamed catch-all uri prefix "/" route by default, as a route without match', async () => {
    seedWithSpec({ http: [{ match: gatewayMatch, route: toV1 }] });
    const checked = await preflight(meshApi(kube), NAMESPACE, "backend", SUBSETS, targetOf(SUBSETS), []);
    expect(describeManagedRoutes(checked.managed)).toBe("http route #0");
    // A prefix narrower than "/" is a real match: not managed unless selected.
    seedWithSpec({ http: [{ match: [{ uri: { prefix: "/api" } }], route: toV1 }] });
    expect((await refusal())[0]).toMatch(/select them with routes: "#0"$/);
  });

  it("when no route qualifies by default, says how to select the matched ones that go to stable", async () => {
    seedWithSpec({ http: [{ match: [{ headers: { "end-user": { exact: "jason" } } }], route: toV1 }] });
    const [problem] = await refusal();
    expect(problem).toMatch(/by name or by position #N \(it has #0 \(unnamed\)\)/);
    expect(problem).toMatch(/select them with routes: "#0"$/);
  });

  it("names the stable subset when the target has no host (never 'undefined')", async () => {
    seedWithSpec({
      http: [{ name: "primary", route: [{ destination: { host: "backend", subset: "v0" } }] }],
    });
    expect(await refusal(SUBSETS, ["primary"])).toEqual([
      'VirtualService shop/backend: http route "primary" routes to backend (subset v0), not to the stable destination subset v1 alone',
    ]);
  });
});

describe("tcp and tls routes", () => {
  it("refuses a VirtualService with only tcp routes, naming them", async () => {
    seedWithSpec({ http: undefined, tcp: [{ route: [{ destination: { host: "backend", subset: "v1" } }] }] });
    const [problem] = await refusal();
    expect(problem).toMatch(
      /it has no http routes\); its tcp route #0 cannot be managed: the action shifts http routes only/,
    );
  });

  it("refuses tcp and tls routes to the stable host before any write, naming them", async () => {
    seedWithSpec({
      http: [{ name: "primary", route: toV1 }],
      tls: [
        { match: [{ port: 443, sniHosts: ["backend.example.com"] }], route: toV1 },
        { match: [{ port: 8443, sniHosts: ["db.example.com"] }], route: [{ destination: { host: "db" } }] },
      ],
      tcp: [{ route: [{ destination: { host: "backend.shop.svc.cluster.local", port: { number: 9000 } } }] }],
    });
    expect(await refusal()).toEqual([
      "VirtualService shop/backend also has tcp route #0 (to backend.shop.svc.cluster.local), tls route #0 (to backend) sending traffic to the stable host backend: only http routes are shifted, so that traffic would stay on stable after the canary is promoted; move these routes to a VirtualService of their own",
    ]);
  });

  it("passes when the tcp routes go to other hosts", async () => {
    seedWithSpec({
      http: [{ name: "primary", route: toV1 }],
      tcp: [{ route: [{ destination: { host: "db" } }] }],
    });
    await preflight(meshApi(kube), NAMESPACE, "backend", SUBSETS, targetOf(SUBSETS), []);
    expect(writes(kube.audit)).toEqual([]);
  });
});

describe("shared pods", () => {
  it("refuses a canary subset whose labels also select stable's pods", async () => {
    seedRunbook(kube);
    kube.editOutOfBand("destinationrules", NAMESPACE, "backend", (o) => {
      (o.spec as { subsets: unknown[] }).subsets = [
        { name: "v1", labels: { version: "v1" } },
        { name: "v2", labels: { app: "backend" } },
      ];
    });
    kube.audit.length = 0;
    expect(await refusal()).toEqual([
      "the canary and stable share pod backend-v1-7d9c8b0f5-x0k2p: selected by both the canary's labels {app=backend} and stable's {app=backend,version=v1}, so the canary would be judged on stable's traffic; give each version labels (or a Service) that select its own pods alone",
    ]);
  });

  it("refuses a canary Service that also selects stable's pods", async () => {
    seedRunbook(kube);
    for (const [name, selector] of [
      ["reviews-v1", { app: "reviews", version: "v1" }],
      ["reviews-v2", { app: "reviews" }],
    ] as const) {
      kube.seed("services", {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace: NAMESPACE },
        spec: { selector },
      });
    }
    for (const version of ["v1", "v2"]) {
      kube.seed("pods", {
        ...pod({ version }),
        metadata: {
          name: `reviews-${version}-abc`,
          namespace: NAMESPACE,
          labels: { app: "reviews", version },
        },
      });
    }
    kube.seed("virtualservices", {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "reviews", namespace: NAMESPACE },
      spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews-v1" } }] }] },
    });
    kube.audit.length = 0;
    const split: Split = { mode: "host", stableHost: "reviews-v1", canaryHost: "reviews-v2" };
    const [problem] = await refusal(split, [], "reviews");
    expect(problem).toMatch(
      /^the canary and stable share pod reviews-v1-abc: selected by both the canary's labels \{app=reviews\}/,
    );
  });
});
