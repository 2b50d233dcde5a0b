/**
 * The HTTPRoute router and preflight (issue 22) against the Kubernetes API emulator through the
 * real client: rules by name or #index, weights as proportional integers (0.1 % is 1 of 1000),
 * only the managed backendRefs' weights change, a conflicting edit is re-read and re-planned, a
 * split in progress is read as the canary's share, rollback without the record, lockstep of a
 * Gateway's route and a Service's (GAMMA) route, and preflight's parents' conditions.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { scaledWeights } from "../../src/mesh/http-route-patches.ts";
import { mirrorProblems } from "../../src/mesh/http-route-preflight.ts";
import { findManagedRules, ruleCatchesAll } from "../../src/mesh/http-route-rules.ts";
import { preflightAll } from "../../src/mesh/lockstep-preflight.ts";
import { LockstepRouter } from "../../src/mesh/lockstep-router.ts";
import { HttpRouteRouter } from "../../src/mesh/router.ts";
import { targetOf } from "../../src/mesh/routes.ts";
import type { GatewayHttpRoute } from "../../src/rollout/model/http-route.ts";
import type { Split } from "../../src/rollout/model/split.ts";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import { backendWeights, httpRoute, seedHttpRouteRunbook } from "../mesh/gateway-fixtures.ts";
import { KubeApiEmulator } from "../mesh/kube-api.ts";
import { meshApi, stateTransition } from "../support/mesh-router.ts";

const HOSTS: Split = { mode: "host", stableHost: "backend-v1", canaryHost: "backend-v2" };
const TARGET = targetOf(HOSTS);
const transition = (weight: number) =>
  stateTransition(weight, {
    holder: "run 1",
    stageIndex: 0,
    leaseBlocksRollback: false,
    holderInHistory: true,
  });

let kube: KubeApiEmulator;
beforeEach(async () => {
  kube = await new KubeApiEmulator().start();
});
afterEach(async () => {
  await kube.stop();
});

function router(name = SERVICE, routes: string[] = [], namespace = NAMESPACE): HttpRouteRouter {
  return new HttpRouteRouter(meshApi(kube), {
    namespace,
    name,
    target: TARGET,
    routes,
    sleep: async () => {},
  });
}

const route = (rules: unknown[]): GatewayHttpRoute =>
  ({ ...httpRoute("gateway"), spec: { ...httpRoute("gateway").spec, rules } }) as unknown as GatewayHttpRoute;

describe("HTTPRoute rules and weights (pure)", () => {
  it("scales a share to integer weights: whole percentages out of 100, 0.1 % as 1 of 1000", () => {
    expect(scaledWeights(10)).toEqual([90, 10]);
    expect(scaledWeights(0.1)).toEqual([999, 1]);
    expect(scaledWeights(0.25)).toEqual([9975, 25]);
    expect(scaledWeights(100)).toEqual([0, 100]);
    expect(() => scaledWeights(0.0001)).toThrow(/more than 3 decimals/);
  });

  it("manages the catch-all rule by default, a rule with matches only when selected by name or #index", () => {
    const r = route([
      {
        name: "api",
        matches: [{ path: { type: "PathPrefix", value: "/api" } }],
        backendRefs: [{ name: "backend-v1" }],
      },
      { matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: [{ name: "backend-v1" }] },
    ]);
    expect(ruleCatchesAll(r.spec.rules?.[0] as never)).toBe(false);
    expect(findManagedRules(r, TARGET, []).map((m) => m.index)).toEqual([1]);
    expect(findManagedRules(r, TARGET, ["api"]).map((m) => m.index)).toEqual([0]);
    expect(findManagedRules(r, TARGET, ["#1", "api"]).map((m) => m.index)).toEqual([1, 0]);
    expect(() => findManagedRules(r, TARGET, ["web"])).toThrow(
      /HTTPRoute shop\/backend has no rule named "web" \(it has api, #1 \(unnamed\)\)/,
    );
    const other = route([{ backendRefs: [{ name: "backend-v1" }, { name: "legacy" }] }]);
    expect(() => findManagedRules(other, TARGET, [])).toThrow(/no rule without matches.*'stable-host' input/);
    expect(() => findManagedRules(other, TARGET, ["#0"])).toThrow(/rule #0 routes to backend-v1, legacy/);
  });
});

describe("HTTPRoute refusals that name the reason (pure)", () => {
  it("a backendRef written with group core is not taken for the Service, and the message says why", () => {
    const r = route([{ backendRefs: [{ group: "core", kind: "Service", name: "backend-v1" }] }]);
    expect(() => findManagedRules(r, TARGET, [])).toThrow(
      /backendRefs backend-v1 \(group "core", kind Service\) say group "core", which the Gateway API and Istio do not resolve \(Linkerd does\): the core group is ""; write group: "" or leave group out/,
    );
  });

  it("a backendRef of another kind (a ServiceImport) is named, and the fix is the versions' Services", () => {
    const r = route([
      { backendRefs: [{ group: "multicluster.x-k8s.io", kind: "ServiceImport", name: "backend-v1" }] },
    ]);
    const refusal =
      /backendRefs backend-v1 \(group "multicluster.x-k8s.io", kind ServiceImport\) are not Services of this cluster.*route to the versions' Services \(the 'stable-host' and 'canary-host' inputs\)/;
    expect(() => findManagedRules(r, TARGET, [])).toThrow(refusal);
    expect(() => findManagedRules(r, TARGET, [])).not.toThrow(/group: ""/);
  });

  it("a RequestMirror to the canary is refused; a mirror elsewhere is a note", () => {
    const mirrorTo = (name: string) =>
      route([
        {
          backendRefs: [{ name: "backend-v1" }],
          filters: [{ type: "RequestMirror", requestMirror: { backendRef: { name, port: 8080 } } }],
        },
      ]);
    expect(mirrorProblems(mirrorTo("backend-v2"), TARGET).problems).toEqual([
      "HTTPRoute shop/backend: rule #0 mirrors its requests to backend-v2 (filter RequestMirror), a version under analysis: mirrored requests would be counted as its traffic and their errors as its errors at every stage; remove the filter before the rollout",
    ]);
    const elsewhere = mirrorProblems(mirrorTo("shadow"), TARGET);
    expect(elsewhere.problems).toEqual([]);
    expect(elsewhere.notes).toHaveLength(1);
  });
});

describe("HTTPRoute router on the emulator", () => {
  it("moves only the managed rule's weights, in one guarded patch with the state, and rolls back exactly", async () => {
    seedHttpRouteRunbook(kube, "gateway");
    const r = router();
    await r.write(0.1, transition(0.1));
    expect(backendWeights(kube)).toEqual([
      { name: "backend-v1", weight: 999 },
      { name: "backend-v2", weight: 1 },
    ]);
    const patch = kube.audit.find((e) => e.verb === "patch")?.requestBody as Array<{
      op: string;
      path: string;
    }>;
    expect(patch[0]).toMatchObject({ op: "test", path: "/spec/rules/0/backendRefs" });
    expect((await r.read()).weight).toBe(0.1);
    await r.write(50, transition(50));
    expect((await r.read()).weights).toEqual([50]);
    await r.write(0, transition(0));
    // As the API server stored it before (the CRD's default weight 1), the canary backendRef gone.
    expect(backendWeights(kube)).toEqual([{ name: "backend-v1", weight: 1 }]);
    const stored = kube.get("httproutes", NAMESPACE, SERVICE) as unknown as {
      spec: unknown;
      metadata: { annotations?: Record<string, string> };
    };
    expect(JSON.parse(stored.metadata.annotations?.[STATE_ANNOTATION] ?? "{}").status).toBe("rolled-back");
    expect(stored.spec).toEqual({
      ...httpRoute("gateway").spec,
      rules: [
        {
          name: "primary",
          matches: [{ path: { type: "PathPrefix", value: "/" } }],
          backendRefs: [{ group: "", kind: "Service", name: "backend-v1", port: 8080, weight: 1 }],
        },
      ],
    });
  });

  it("a concurrent edit of the backendRefs fails the patch's test: read again and planned on the fresh rule", async () => {
    seedHttpRouteRunbook(kube, "gateway");
    const r = router();
    let edits = 0;
    kube.injectMeshFault({
      match: { verb: "patch", resource: "httproutes" },
      active: () => {
        if (edits > 0) return false;
        edits += 1;
        kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (o) => {
          (o.spec as { rules: Array<{ backendRefs: Array<{ port: number }> }> }).rules[0]!
            .backendRefs[0]!.port = 9090;
        });
        return false;
      },
      answer: { status: 500 },
    });
    await r.write(10, transition(10));
    const refs = (
      kube.get("httproutes", NAMESPACE, SERVICE)!.spec as { rules: Array<{ backendRefs: unknown[] }> }
    ).rules[0]!.backendRefs;
    // The person's port stays; the canary backendRef copies it.
    expect(refs).toEqual([
      { group: "", kind: "Service", name: "backend-v1", port: 9090, weight: 90 },
      { group: "", kind: "Service", name: "backend-v2", port: 9090, weight: 10 },
    ]);
    expect(kube.audit.filter((e) => e.verb === "patch").map((e) => e.code)).toEqual([422, 200]);
  });

  it("reads a split in progress (3 to 1) as 25 %, and a rollback without any record puts it on stable", async () => {
    seedHttpRouteRunbook(kube, "service", {
      ...httpRoute("service"),
      spec: {
        ...httpRoute("service").spec,
        rules: [
          {
            backendRefs: [
              { name: "backend-v1", weight: 3 },
              { name: "backend-v2", weight: 1 },
            ],
          },
        ],
      },
    });
    const r = router();
    const view = await r.read();
    expect(view.weight).toBe(25);
    expect(view.state).toBeUndefined();
    expect(view.object.kind).toBe("HTTPRoute");
    await r.write(0, transition(0));
    expect(backendWeights(kube)).toEqual([
      { name: "backend-v1", weight: 100 },
      { name: "backend-v2", weight: 0 },
    ]);
  });

  it("moves a Gateway's route and a Service's (GAMMA) route in lockstep, and a dry run plans both", async () => {
    seedHttpRouteRunbook(kube, "gateway");
    kube.seed("httproutes", {
      ...httpRoute("service"),
      metadata: { name: "backend-mesh", namespace: NAMESPACE },
    });
    const lockstep = new LockstepRouter([router(), router("backend-mesh")]);
    const planned = await lockstep.plan(10, transition(10));
    expect(planned.map((p) => p.object)).toEqual(["HTTPRoute shop/backend", "HTTPRoute shop/backend-mesh"]);
    await lockstep.write(10, transition(10));
    expect((await lockstep.read()).weights).toEqual([10, 10]);
    await lockstep.write(0, transition(0));
    expect((await lockstep.read()).weights).toEqual([0, 0]);
  });
});

describe("HTTPRoute preflight", () => {
  const check = () =>
    preflightAll(
      meshApi(kube),
      [{ namespace: NAMESPACE, name: SERVICE, entry: SERVICE, routes: [] }],
      HOSTS,
      TARGET,
      { kind: "HTTPRoute" },
    );

  it("passes with the parents' conditions as notes and each version's Service selector as its labels", async () => {
    seedHttpRouteRunbook(kube, "gateway");
    const result = await check();
    expect(result.notes).toEqual([
      "HTTPRoute shop/backend on Gateway istio-ingress/gateway: Accepted True (Accepted), ResolvedRefs True (ResolvedRefs)",
    ]);
    expect(result.primary.canaryLabels).toEqual({ app: "backend", version: "v2" });
    expect(result.primary.canaryService).toEqual({ name: "backend-v2", namespace: NAMESPACE });
  });

  it("refuses a route its Gateway has not accepted, naming the parent and the reason, and a missing canary Service", async () => {
    seedHttpRouteRunbook(kube, "gateway");
    kube.editOutOfBand("gateways", "istio-ingress", "gateway", (o) => {
      (o.spec as { gatewayClassName: string }).gatewayClassName = "nginx";
    });
    kube.remove("services", NAMESPACE, "backend-v2");
    const error = (await check().catch((e: Error) => e)) as Error;
    expect(error.message).toContain(
      "HTTPRoute shop/backend is not Accepted by its parent Gateway istio-ingress/gateway (NoMatchingParent: gateway class nginx is not istiod's)",
    );
    expect(error.message).toMatch(/backend-v2.*'canary-host' input/);
  });
});
