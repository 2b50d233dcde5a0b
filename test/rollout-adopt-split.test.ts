/**
 * Adopting a split in progress (issue 13, finding 1): a rollout on routes already split between
 * stable and canary continues from the next stage above the canary's weight, or restarts from
 * stage 1 after a recorded rollback; a canary at 100 % is refused with advice that leads somewhere;
 * and a rollback on any split reaches 100 % stable with a recorded state that agrees with the routes.
 * The engine runs in virtual time, on in-memory ports or on the router against the Kubernetes API
 * emulator through the real client.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../src/constants.ts";
import { InputError, parseConfig, type Split } from "../src/inputs.ts";
import type { OriginalRoute } from "../src/mesh/routes.ts";
import type { RolloutState } from "../src/mesh/state.ts";
import { VirtualClock } from "../src/rollout/clock.ts";
import { type EngineSettings, RolloutEngine } from "../src/rollout/engine.ts";
import type { NextState, TrafficView } from "../src/rollout/ports.ts";
import { NAMESPACE, seedRunbook } from "./mesh/fixtures.ts";
import { KubeApiEmulator, type KubeObject } from "./mesh/kube-api.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "./support/fake-ports.ts";
import { meshApi, meshRouter, SUBSETS } from "./support/mesh-router.ts";

const HEALTHY = { requestsPerSecond: 100, stableErrorRate: 0.0005, canaryErrorRate: 0.0005 };

/** In-memory routes, each with its own canary weight (the fake port of fake-ports.ts has one). */
class SplitTraffic extends InMemoryTraffic {
  routes: number[];
  constructor(weights: number[], state?: RolloutState) {
    super();
    this.routes = [...weights];
    this.state = state;
    this.weight = Math.min(...weights);
  }
  private split(): TrafficView {
    return {
      weight: this.routes[0] ?? 0,
      weights: [...this.routes],
      state: this.state,
      original: this.routes.map(
        (w, index): OriginalRoute => ({
          index,
          name: `route-${index}`,
          canaryAdded: false,
          stableWeight: 100 - w,
          canaryWeight: w,
        }),
      ),
      virtualService: {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "backend", namespace: "shop" },
        spec: {},
      },
    };
  }
  override async read(): Promise<TrafficView> {
    return this.split();
  }
  override async write(weight: number, next: NextState): Promise<RolloutState> {
    const state = next(this.state, this.split());
    this.routes = this.routes.map(() => weight);
    this.weight = weight;
    this.state = structuredClone(state);
    this.writes.push({ weight, status: state.status });
    return state;
  }
  override async record(next: NextState): Promise<RolloutState> {
    const state = next(this.state, this.split());
    this.state = structuredClone(state);
    this.writes.push({ weight: this.weight, status: state.status });
    return state;
  }
}

function engineOn(traffic: InMemoryTraffic, settings: Partial<EngineSettings> = {}, holder = "run-1") {
  const clock = new VirtualClock();
  const metrics = new SimulatedMetrics(clock, traffic, { ...HEALTHY, seed: 5 });
  const log = new EventLog();
  const engine = new RolloutEngine(
    defaultEngineSettings(settings),
    { holder, commit: "abc1234def", newRolloutId: `abc1234-${holder}` },
    { traffic, metrics, clock, events: log },
    "VirtualService shop/backend",
  );
  return { engine, log };
}

const warnings = (log: EventLog) => log.events.flatMap((e) => (e.type === "warning" ? [e.message] : []));

/** A finished rollout's state, as an earlier run (or the buggy rollback of finding 1) left it. */
function finishedState(status: "promoted" | "rolled-back", weight: number, original: OriginalRoute[]) {
  return {
    schemaVersion: 1,
    rolloutId: "old-1",
    commit: "0ld0ld0ld",
    stages: [1, 10, 50, 100],
    stageIndex: 3,
    weight,
    status,
    startedAt: "2026-11-20T10:00:00.000Z",
    updatedAt: "2026-11-20T11:00:00.000Z",
    original,
    history: [],
  } satisfies RolloutState;
}

describe("a rollout adopts a split in progress (on-split: continue)", () => {
  it("on an 80/20 route with no state, the first write is 50 and the evidence starts fresh", async () => {
    const traffic = new SplitTraffic([20]);
    const { engine, log } = engineOn(traffic);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "promoted", weight: 100, failed: false });
    expect(traffic.writes.map((w) => w.weight)).toEqual([50, 100, 100]);
    expect(log.events.find((e) => e.type === "started")).toMatchObject({ fromStage: 2, weight: 20 });
    expect(warnings(log)[0]).toBe(
      'Adopting a split in progress (no rollout recorded): the canary already gets http route "route-0" 20 %. Next: stage 3 of 4 (50 %), the first stage above 20 %. The evidence starts fresh (none was gathered for this canary), so that stage must show the canary within the limits like any other. To start from stage 1 instead, set on-split: restart.',
    );
    // Only the stages this run analysed, each on evidence of this canary alone.
    expect(traffic.state?.stageResults?.map((r) => [r.weight, r.decision])).toEqual([
      [50, "pass"],
      [100, "pass"],
    ]);
    expect(traffic.state?.history.map((h) => [h.event, h.weight])).toEqual([
      ["adopted", 20],
      ["stage 3", 50],
      ["stage 4", 100],
      ["promoted", 100],
    ]);
  });

  it("takes the smallest weight when routes differ, lowering the ones above the next stage, and says so", async () => {
    const traffic = new SplitTraffic([30, 20, 60]);
    const { engine, log } = engineOn(traffic, { pauseAfter: 50 });
    expect(await engine.run()).toMatchObject({ result: "paused", weight: 50, failed: false });
    expect(traffic.writes.map((w) => w.weight)).toEqual([50, 50]);
    expect(traffic.routes).toEqual([50, 50, 50]);
    expect(warnings(log)[0]).toContain(
      'the canary already gets http route "route-0" 30 %, http route "route-1" 20 %, http route "route-2" 60 %. The managed routes differ: continuing from the smallest weight, 20 %, so that no route rises by more than one stage; http route "route-2" is lowered to 50 %.',
    );
  });

  it("at or above the last stage below 100, the next is 100, which must prove safety as usual", async () => {
    const traffic = new SplitTraffic([60]);
    const { engine, log } = engineOn(traffic);
    expect(await engine.run()).toMatchObject({ result: "promoted", weight: 100 });
    expect(traffic.writes.map((w) => w.weight)).toEqual([100, 100]);
    const ends = log.events.flatMap((e) => (e.type === "stage-end" ? [[e.weight, e.decision]] : []));
    expect(ends).toEqual([[100, "pass"]]);
  });

  it("continues after a finished rollout whose rollback recorded weight 0 over an 80/20 route (finding 1)", async () => {
    const split: OriginalRoute = {
      index: 0,
      name: "route-0",
      canaryAdded: false,
      stableWeight: 80,
      canaryWeight: 20,
    };
    const traffic = new SplitTraffic([20], finishedState("rolled-back", 0, [split]));
    const { engine, log } = engineOn(traffic, { stages: [50, 100] });
    expect(await engine.run()).toMatchObject({ result: "promoted", weight: 100 });
    expect(traffic.writes.map((w) => w.weight)).toEqual([50, 100, 100]);
    expect(warnings(log)[0]).toMatch(/^Adopting a split in progress \(rollout old-1 was rolled-back\)/);
    expect(traffic.state?.rolloutId).toBe("abc1234-run-1");
  });
});

describe("on-split: restart", () => {
  it("first moves every route back to 100 % stable, recorded with the reason, then runs from stage 1", async () => {
    const traffic = new SplitTraffic([20, 40]);
    const { engine, log } = engineOn(traffic, { onSplit: "restart" });
    expect(await engine.run()).toMatchObject({ result: "promoted", weight: 100, failed: false });
    expect(traffic.writes.map((w) => [w.weight, w.status])).toEqual([
      [0, "progressing"],
      [1, "progressing"],
      [10, "progressing"],
      [50, "progressing"],
      [100, "progressing"],
      [100, "promoted"],
    ]);
    const reason =
      'on-split: restart: every managed route back to 100 % stable before stage 1 (the canary had http route "route-0" 20 %, http route "route-1" 40 %; no rollout recorded)';
    expect(traffic.state?.history[0]).toMatchObject({ event: "restarted", weight: 0, reason });
    expect(warnings(log)).toContain(`Restarting: ${reason}`);
  });
});

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

  function engine(settings: Partial<EngineSettings>, split: Split = SUBSETS, holder = "run-1") {
    const clock = new VirtualClock();
    const router = meshRouter(meshApi(kube), { split });
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
});

describe("the on-split input", () => {
  const required = {
    "virtual-service": "backend",
    "stable-subset": "v1",
    "canary-subset": "v2",
    "prometheus-url": "http://prometheus:9090",
  };
  it("defaults to continue, accepts restart, and refuses anything else naming the allowed values", () => {
    expect(parseConfig(required).onSplit).toBe("continue");
    expect(parseConfig({ ...required, "on-split": "restart" }).onSplit).toBe("restart");
    const refused = (() => {
      try {
        return parseConfig({ ...required, "on-split": "resume" });
      } catch (error) {
        return error;
      }
    })();
    expect(refused).toBeInstanceOf(InputError);
    expect((refused as InputError).message).toBe(
      "Input 'on-split': \"resume\" is not allowed; use one of continue, restart",
    );
  });
});
