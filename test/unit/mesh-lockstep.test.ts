/**
 * Several VirtualServices in lockstep (issue 13, finding 7): the gateway's and the mesh's for one
 * service move together, against the Kubernetes API emulator through the real client. A person's
 * edit on any one stops the move before anything is written; a rollback reaches every one it can.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import type { InputName } from "../../src/inputs/types.ts";
import { parseVirtualServices } from "../../src/inputs/virtual-services.ts";
import { gatewayOnlyWarning, preflightAll } from "../../src/mesh/lockstep-preflight.ts";
import { LockstepRouter } from "../../src/mesh/lockstep-router.ts";
import { VirtualServiceRouter } from "../../src/mesh/router.ts";
import { targetOf } from "../../src/mesh/routes.ts";
import type { VirtualService } from "../../src/rollout/model/virtual-service.ts";
import { guarded, PersonEditError } from "../../src/rollout/transitions.ts";
import { NAMESPACE, seedRunbook } from "../mesh/fixtures.ts";
import { KubeApiEmulator, type KubeObject } from "../mesh/kube-api.ts";
import { meshApi, SUBSETS, stateTransition } from "../support/mesh-router.ts";

const GATEWAY_NS = "istio-system";

function gatewayVirtualService(): KubeObject {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: "backend-gateway", namespace: GATEWAY_NS },
    spec: {
      hosts: ["shop.example.com"],
      gateways: [`${GATEWAY_NS}/public-gateway`],
      http: [
        {
          match: [{ uri: { prefix: "/" } }],
          route: [{ destination: { host: `backend.${NAMESPACE}.svc.cluster.local`, subset: "v1" } }],
          timeout: "5s",
        },
      ],
    },
  } as KubeObject;
}

let kube: KubeApiEmulator;
beforeEach(async () => {
  kube = await new KubeApiEmulator().start();
  seedRunbook(kube);
  kube.seed("virtualservices", gatewayVirtualService());
  kube.audit.length = 0;
});
afterEach(async () => {
  await kube.stop();
});

function router(token?: string, onRetry?: (message: string) => void): LockstepRouter {
  const api = meshApi(kube, { token });
  // Virtual time for the lockstep rollback's retries: a minute of budget, no real waiting.
  let now = 0;
  const clock = {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
  };
  const target = targetOf(SUBSETS);
  return new LockstepRouter(
    [
      new VirtualServiceRouter(api, {
        namespace: NAMESPACE,
        name: "backend",
        target,
        routes: [],
        sleep: async () => {},
      }),
      new VirtualServiceRouter(api, {
        namespace: GATEWAY_NS,
        name: "backend-gateway",
        target,
        routes: ["#0"],
        sleep: async () => {},
        rollbackBudgetMs: 50,
        trafficBudgetMs: 50,
      }),
    ],
    { rollbackBudgetMs: 60_000, ...clock, onRetry },
  );
}

const next = (weight: number) =>
  stateTransition(weight, {
    holder: "run-1",
    stageIndex: 0,
    leaseBlocksRollback: true,
    holderInHistory: false,
  });

const routeOf = (namespace: string, name: string) =>
  ((kube.get("virtualservices", namespace, name)?.spec ?? {}) as VirtualService["spec"]).http?.[0]?.route;
const patches = () => kube.audit.filter((e) => e.verb === "patch" && e.code === 200);

describe("virtual-service as a list", () => {
  const parse = (vs: string, routes = "") => {
    const problems: Array<{ input: InputName; message: string }> = [];
    const refs = parseVirtualServices(vs, routes, "shop", (input, message) => {
      problems.push({ input, message });
      return undefined;
    });
    return { refs, problems };
  };

  it("reads names and namespace/name entries, with routes qualified by VirtualService", () => {
    const { refs, problems } = parse(
      "backend, istio-system/backend-gateway",
      "istio-system/backend-gateway:#0",
    );
    expect(problems).toEqual([]);
    expect(refs.map((r) => [r.namespace, r.name, r.routes])).toEqual([
      ["shop", "backend", []],
      ["istio-system", "backend-gateway", ["#0"]],
    ]);
    // An unqualified route applies to every VirtualService.
    expect(parse("a\nb", "primary").refs.map((r) => r.routes)).toEqual([["primary"], ["primary"]]);
  });

  it("names the input and what is allowed", () => {
    expect(parse("").problems[0]?.input).toBe("virtual-service");
    expect(parse("a/b/c").problems[0]?.message).toMatch(/write its name, or namespace\/name/);
    expect(parse("backend, shop/backend").problems[0]?.message).toMatch(
      /names VirtualService shop\/backend twice/,
    );
    const unknown = parse("backend", "gateway:#0").problems[0];
    expect(unknown?.input).toBe("routes");
    expect(unknown?.message).toMatch(/"gateway", which is not in virtual-service \(backend\)/);
  });
});

describe("several VirtualServices in lockstep", () => {
  it("moves every one to each weight, each recording its own original routes, and leaves the rest alone", async () => {
    const r = router();
    await r.write(10, next(10));
    expect(routeOf(NAMESPACE, "backend")?.map((d) => d.weight)).toEqual([90, 10]);
    expect(routeOf(GATEWAY_NS, "backend-gateway")?.map((d) => [d.destination.subset, d.weight])).toEqual([
      ["v1", 90],
      ["v2", 10],
    ]);
    const gateway = kube.get("virtualservices", GATEWAY_NS, "backend-gateway");
    expect(((gateway?.spec ?? {}) as { http: Array<{ timeout?: string }> }).http[0]?.timeout).toBe("5s");
    const recorded = JSON.parse(gateway?.metadata.annotations?.[STATE_ANNOTATION] ?? "{}");
    // The gateway's own route #0 had no weight field: that is what its rollback restores.
    expect(recorded.original).toEqual([{ index: 0, canaryAdded: true }]);
    expect((await r.read()).weights).toEqual([10, 10]);

    await r.write(0, next(0));
    expect(routeOf(NAMESPACE, "backend")).toEqual([
      { destination: { host: "backend", subset: "v1" }, weight: 100 },
    ]);
    expect(routeOf(GATEWAY_NS, "backend-gateway")).toEqual([
      { destination: { host: `backend.${NAMESPACE}.svc.cluster.local`, subset: "v1" } },
    ]);
  });

  it("writes nothing when a person changed the weights of any one of them", async () => {
    const r = router();
    await r.write(10, next(10));
    kube.editOutOfBand("virtualservices", GATEWAY_NS, "backend-gateway", (o) => {
      const route = (o.spec as VirtualService["spec"]).http?.[0]?.route ?? [];
      (route[0] as { weight: number }).weight = 100;
      (route[1] as { weight: number }).weight = 0;
    });
    const before = patches().length;
    const move = guarded(
      { holder: "run-1", now: () => new Date(), expectWeight: 10, targetWeight: 50 },
      next(50),
    );
    await expect(r.write(50, move)).rejects.toBeInstanceOf(PersonEditError);
    expect(patches().length).toBe(before);
    expect(routeOf(NAMESPACE, "backend")?.map((d) => d.weight)).toEqual([90, 10]);
  });

  it("rolls back every VirtualService it can when one cannot be written, and names that one", async () => {
    await router().write(50, next(50));
    // The action's token may write only in the service's namespace now.
    kube.grant("shop-only", {
      user: "shop-only",
      rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
      namespaces: [NAMESPACE],
    });
    const error = await router("shop-only")
      .write(0, next(0))
      .catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/VirtualService istio-system\/backend-gateway/);
    expect((error as Error).message).toMatch(/Rolled back: VirtualService shop\/backend/);
    expect(routeOf(NAMESPACE, "backend")?.map((d) => d.weight)).toEqual([100]);
  });

  it("keeps trying the rollback of one that refuses it until it takes it, and leaves one at 100 % stable as it is", async () => {
    await router().write(50, next(50));
    // A person rolls the mesh's VirtualService back by hand; a policy webhook denies the gateway's writes.
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      const route = (o.spec as VirtualService["spec"]).http?.[0]?.route ?? [];
      (route[0] as { weight: number }).weight = 100;
      (route[1] as { weight: number }).weight = 0;
    });
    kube.faultPlan.deny({ count: 3, name: "backend-gateway" });
    const retries: string[] = [];
    const state = await router(undefined, (m) => retries.push(m)).write(0, next(0));
    expect(state.status).toBe("rolled-back");
    expect(retries).toHaveLength(3);
    expect(retries[0]).toMatch(
      /rollback of VirtualService istio-system\/backend-gateway: try 1 failed \(.*denied the request/,
    );
    expect(routeOf(GATEWAY_NS, "backend-gateway")).toEqual([
      { destination: { host: `backend.${NAMESPACE}.svc.cluster.local`, subset: "v1" } },
    ]);
    // The person's 100/0 is left as they wrote it; only the state is recorded there.
    expect(routeOf(NAMESPACE, "backend")?.map((d) => d.weight)).toEqual([100, 0]);
    const recorded = JSON.parse(
      kube.get("virtualservices", NAMESPACE, "backend")?.metadata.annotations?.[STATE_ANNOTATION] ?? "{}",
    );
    expect(recorded.status).toBe("rolled-back");
  });

  it("plans one patch per VirtualService for a dry run, writing nothing", async () => {
    const planned = await router().plan(10, next(10));
    expect(planned.map((p) => p.object)).toEqual([
      "VirtualService shop/backend",
      "VirtualService istio-system/backend-gateway",
    ]);
    expect(patches()).toEqual([]);
  });
});

describe("preflight of several VirtualServices", () => {
  const refs = [
    { namespace: NAMESPACE, name: "backend", entry: "backend", routes: [] },
    {
      namespace: GATEWAY_NS,
      name: "backend-gateway",
      entry: `${GATEWAY_NS}/backend-gateway`,
      routes: ["#0"],
    },
  ];

  it("lists the managed routes of each and warns of nothing for a gateway and mesh pair", async () => {
    const checked = await preflightAll(meshApi(kube), refs, SUBSETS, targetOf(SUBSETS));
    expect(checked.managedRoutes).toBe(
      'VirtualService shop/backend: http route "primary"; VirtualService istio-system/backend-gateway: http route #0',
    );
    expect(checked.warnings).toEqual([]);
  });

  it("warns that in-mesh callers stay on stable when only a gateway's VirtualService is given", async () => {
    const checked = await preflightAll(meshApi(kube), refs.slice(1), SUBSETS, targetOf(SUBSETS));
    expect(checked.warnings.join("\n")).toMatch(
      /backend-gateway \(gateways istio-system\/public-gateway\) applies only to ingress gateways: callers inside the mesh .* stay on stable/,
    );
    const meshToo = gatewayVirtualService() as unknown as VirtualService;
    meshToo.spec.gateways = ["istio-system/public-gateway", "mesh"];
    expect(gatewayOnlyWarning([meshToo])).toBeUndefined();
  });

  it("reports every VirtualService's problems at once, before any write", async () => {
    const error = await preflightAll(
      meshApi(kube),
      [refs[0] as (typeof refs)[number], { ...(refs[1] as (typeof refs)[number]), routes: ["#3"] }],
      SUBSETS,
      targetOf(SUBSETS),
    ).catch((e: unknown) => e as Error);
    expect((error as Error).message).toMatch(
      /VirtualService istio-system\/backend-gateway has no http route #3/,
    );
    expect(kube.audit.filter((e) => e.verb === "patch")).toEqual([]);
  });
});
