/**
 * Adopting a split in progress (issue 13, finding 1) on the router against the Kubernetes API
 * emulator, through the real client, engine in virtual time: a canary at 100 % is refused with
 * advice checked to lead to a rollout; `command: rollback` on any split reaches 100 % stable and
 * records a state that agrees with the routes; routes at different weights move in one write.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { LockstepRouter } from "../../src/mesh/lockstep-router.ts";
import { VirtualServiceRouter } from "../../src/mesh/router.ts";
import { targetOf } from "../../src/mesh/routes.ts";
import { type EngineSettings, RolloutEngine } from "../../src/rollout/engine.ts";
import type { OriginalRoute } from "../../src/rollout/model/routes.ts";
import type { Split } from "../../src/rollout/model/split.ts";
import type { RolloutState } from "../../src/rollout/model/state.ts";
import type { TrafficPort } from "../../src/rollout/ports.ts";
import { NAMESPACE, seedRunbook } from "../mesh/fixtures.ts";
import { KubeApiEmulator, type KubeObject } from "../mesh/kube-api.ts";
import { defaultEngineSettings, EventLog } from "../support/fake-ports.ts";
import { meshApi, meshRouter, SUBSETS } from "../support/mesh-router.ts";
import { finishedState, warnings } from "../support/split-state.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

describe("a canary at 100 % on every route is refused, with advice that leads to a rollout", () => {
  const subsetsSwapped: Split = { mode: "subset", stableSubset: "v2", canarySubset: "v1" };
  let kube: KubeApiEmulator;
  beforeEach(async () => {
    kube = await new KubeApiEmulator().start();
    seedRunbook(kube);
  });
  afterEach(async () => {
    await kube.stop();
  });

  const stored = () => kube.get("virtualservices", NAMESPACE, "backend") as KubeObject;
  const routesNow = () =>
    (
      stored().spec as { http: Array<{ route: Array<{ destination: { subset: string }; weight?: number }> }> }
    ).http[0]?.route.map((d) => [d.destination.subset, d.weight]);
  const stateNow = (): RolloutState =>
    JSON.parse(stored().metadata.annotations?.[STATE_ANNOTATION] as string) as RolloutState;

  function engine(
    settings: Partial<EngineSettings>,
    split: Split = SUBSETS,
    holder = "run-1",
    routes: string[] = [],
    traffic?: TrafficPort,
  ) {
    const clock = new VirtualClock();
    const router = traffic ?? meshRouter(meshApi(kube), { split, routes });
    const log = new EventLog();
    const e = new RolloutEngine(
      defaultEngineSettings({ skipAnalysis: true, ...settings }),
      { holder, commit: "abc1234def", newRolloutId: `abc1234-${holder}` },
      { traffic: router, clock, events: log },
      "VirtualService shop/backend",
    );
    return { e, router, log };
  }

  /** A promoted rollout of v2: the route is v1 0 / v2 100. */
  async function promoted() {
    expect(await engine({}).e.run()).toMatchObject({ result: "promoted", weight: 100 });
    expect(routesNow()).toEqual([
      ["v1", 0],
      ["v2", 100],
    ]);
  }

  it("refuses, with either way out; on-split: restart does not change that", async () => {
    await promoted();
    for (const onSplit of ["continue", "restart"] as const) {
      const refused = await engine({ onSplit }, SUBSETS, "run-2")
        .e.run()
        .catch((e: Error) => e);
      expect((refused as Error).message).toMatch(
        /^the canary already gets 100 % of traffic on http route "primary" 100 % \(rollout abc1234-run-1 was promoted\): no stage is left to run.*swap stable-subset and canary-subset \(the version at 100 % becomes stable and the new canary starts from 0 %\), or run command: rollback first/,
      );
    }
    expect(routesNow()).toEqual([
      ["v1", 0],
      ["v2", 100],
    ]);
  });

  it("after the swap the new canary is at 0 % and the next rollout runs from stage 1", async () => {
    await promoted();
    const swapped = engine({}, subsetsSwapped, "run-3");
    expect((await swapped.router.read()).weights).toEqual([0]);
    expect(await swapped.e.run()).toMatchObject({ result: "promoted", weight: 100 });
    expect(swapped.log.events.find((e) => e.type === "started")).toMatchObject({ fromStage: 0 });
    expect(routesNow()).toEqual([
      ["v1", 100],
      ["v2", 0],
    ]);
  });

  it("after command: rollback all traffic is stable and the next rollout runs from stage 1", async () => {
    await promoted();
    expect(await engine({ command: "rollback" }, SUBSETS, "run-3").e.run()).toMatchObject({
      result: "rolled-back",
    });
    expect(routesNow()).toEqual([["v1", 100]]);
    const next = engine({ pauseAfter: 1 }, SUBSETS, "run-4");
    expect(await next.e.run()).toMatchObject({ result: "paused", weight: 1 });
    expect(next.log.events.find((e) => e.type === "started")).toMatchObject({ fromStage: 0 });
  });

  /**
   * The recorded state agrees with the routes: the weight the route carries, and once rolled back,
   * weight 0 and an `original` that is the route as left (what a later rollback would restore).
   */
  function agrees(): void {
    const state = stateNow();
    const route = routesNow() ?? [];
    const canary = route.find(([subset]) => subset === "v2")?.[1] ?? 0;
    expect(state.weight, "recorded weight").toBe(canary);
    if (state.status !== "rolled-back") return;
    expect(state.original).toEqual([
      {
        index: 0,
        name: "primary",
        canaryAdded: route.length === 1,
        stableWeight: route[0]?.[1],
        ...(route.length > 1 ? { canaryWeight: canary } : {}),
      },
    ]);
  }

  const splitRoute = (stable: number, canary: number) =>
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      (o.spec as { http: Array<{ route: unknown[] }> }).http[0] = {
        name: "primary",
        route: [
          { destination: { host: "backend", subset: "v1" }, weight: stable },
          { destination: { host: "backend", subset: "v2" }, weight: canary },
        ],
      } as never;
    });
  const annotate = (state: RolloutState) =>
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      o.metadata.annotations = { [STATE_ANNOTATION]: JSON.stringify(state) };
    });
  const handSplit: OriginalRoute = {
    index: 0,
    name: "primary",
    canaryAdded: false,
    stableWeight: 80,
    canaryWeight: 20,
  };

  describe("command: rollback on a split reaches 100 % stable, and the state agrees with the routes", () => {
    for (const [title, state] of [
      ["no state", undefined],
      [
        "the state finding 1 left: rolled-back at weight 0 over 80/20",
        finishedState("rolled-back", 0, [handSplit]),
      ],
      ["a promoted state at 100 over a route set to 80/20 by hand", finishedState("promoted", 100, [])],
    ] as const) {
      it(`80/20 with ${title}`, async () => {
        splitRoute(80, 20);
        if (state) annotate(state);
        const outcome = await engine({ command: "rollback" }).e.run();
        expect(outcome).toMatchObject({ result: "rolled-back", weight: 0, failed: false });
        // Only the weights change: a hand-made split is never restored, the canary stays at 0.
        expect(routesNow()).toEqual([
          ["v1", 100],
          ["v2", 0],
        ]);
        expect(stateNow()).toMatchObject({ status: "rolled-back", weight: 0 });
        agrees();
        // Nothing is refused afterwards: a rollout of stages 50,100 starts from its first stage.
        const next = engine({ stages: [50, 100] }, SUBSETS, "run-2");
        expect(await next.e.run()).toMatchObject({ result: "promoted", weight: 100 });
        expect(next.log.events.find((e) => e.type === "started")).toMatchObject({ fromStage: 0 });
      });
    }
  });

  it("a rollout that adopted 80/20 is rolled back to 100 % stable, never to the split it found", async () => {
    splitRoute(80, 20);
    expect(await engine({ pauseAfter: 50 }).e.run()).toMatchObject({ result: "paused", weight: 50 });
    expect(routesNow()).toEqual([
      ["v1", 50],
      ["v2", 50],
    ]);
    agrees();
    // What the routes were before this rollout: the split it adopted, kept as history.
    expect(stateNow().original).toEqual([handSplit]);
    expect(await engine({ command: "rollback" }, SUBSETS, "run-2").e.run()).toMatchObject({
      result: "rolled-back",
      weight: 0,
    });
    expect(routesNow()).toEqual([
      ["v1", 100],
      ["v2", 0],
    ]);
    agrees();
  });

  it("moves two routes at 60 % and 20 % to 50 % in one write (the router accepts both as found)", async () => {
    kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      const to = (subset: string, weight: number) => ({ destination: { host: "backend", subset }, weight });
      (o.spec as { http: unknown[] }).http = [
        {
          name: "beta",
          match: [{ headers: { "x-beta": { exact: "1" } } }],
          route: [to("v1", 40), to("v2", 60)],
        },
        { name: "primary", route: [to("v1", 80), to("v2", 20)] },
      ];
    });
    const run = engine({ pauseAfter: 50 }, SUBSETS, "run-1", ["beta", "primary"]);
    expect(await run.e.run()).toMatchObject({ result: "paused", weight: 50, failed: false });
    const http = (stored().spec as { http: Array<{ route: Array<{ weight: number }> }> }).http;
    expect(http.map((r) => r.route.map((d) => d.weight))).toEqual([
      [50, 50],
      [50, 50],
    ]);
    expect(warnings(run.log)[0]).toContain('http route "beta" is lowered to 50 %');
  });

  it("a dry run plans from the adopted stage, or the rollback and every stage with restart; nothing is written", async () => {
    splitRoute(80, 20);
    const continued = await engine({ dryRun: true }).e.run();
    expect(continued.plan?.map((p) => p.weight)).toEqual([50, 100]);
    const restarted = await engine({ dryRun: true, onSplit: "restart" }).e.run();
    expect(restarted.plan?.map((p) => p.weight)).toEqual([0, 1, 10, 50, 100]);
    expect(restarted.plan?.[0]?.patches[0]?.patch).toContainEqual({
      op: "add",
      path: "/spec/http/0/route/1/weight",
      value: 0,
    });
    expect(kube.audit.filter((e) => e.verb === "patch")).toEqual([]);
  });

  it("two VirtualServices in lockstep, 80/20 and 70/30: both continue at 50 %, and a rollback gives 100 % stable on both", async () => {
    splitRoute(80, 20);
    kube.seed("virtualservices", {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "backend-gateway", namespace: "istio-system" },
      spec: {
        hosts: ["shop.example.com"],
        gateways: ["istio-system/public-gateway"],
        http: [
          {
            route: [
              { destination: { host: `backend.${NAMESPACE}.svc.cluster.local`, subset: "v1" }, weight: 70 },
              { destination: { host: `backend.${NAMESPACE}.svc.cluster.local`, subset: "v2" }, weight: 30 },
            ],
          },
        ],
      },
    });
    const api = meshApi(kube);
    const lockstep = () =>
      new LockstepRouter(
        [
          { namespace: NAMESPACE, name: "backend" },
          { namespace: "istio-system", name: "backend-gateway" },
        ].map(
          (vs) =>
            new VirtualServiceRouter(api, {
              ...vs,
              target: targetOf(SUBSETS),
              routes: [],
              sleep: async () => {},
            }),
        ),
      );
    const gatewayWeights = () =>
      (
        (kube.get("virtualservices", "istio-system", "backend-gateway")?.spec ?? {}) as {
          http: Array<{ route: Array<{ weight: number }> }>;
        }
      ).http[0]?.route.map((d) => d.weight);
    const run = engine({ pauseAfter: 50 }, SUBSETS, "run-1", [], lockstep());
    expect(await run.e.run()).toMatchObject({ result: "paused", weight: 50 });
    expect(warnings(run.log)[0]).toContain(
      'the canary already gets http route "primary" 20 %, route 1 of the other VirtualServices 30 %. The managed routes differ: continuing from the smallest weight, 20 %',
    );
    expect(routesNow()).toEqual([
      ["v1", 50],
      ["v2", 50],
    ]);
    expect(gatewayWeights()).toEqual([50, 50]);
    expect(await engine({ command: "rollback" }, SUBSETS, "run-2", [], lockstep()).e.run()).toMatchObject({
      result: "rolled-back",
    });
    expect(routesNow()).toEqual([
      ["v1", 100],
      ["v2", 0],
    ]);
    expect(gatewayWeights()).toEqual([100, 0]);
    agrees();
  });

  it("command: promote on a split with no rollout points to command: rollout", async () => {
    splitRoute(80, 20);
    const refused = (await engine({ command: "promote" })
      .e.run()
      .catch((e: Error) => e)) as Error;
    expect(refused.message).toMatch(
      /^nothing to promote: .* records no rollout.*The routes already send 20 % to the canary: command: rollout adopts that split/,
    );
  });
});
