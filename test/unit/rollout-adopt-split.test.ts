/**
 * Adopting a split in progress (issue 13, finding 1), engine level in virtual time on in-memory
 * ports: a rollout on routes already split between stable and canary continues from the next stage
 * above the canary's weight (the smallest, when routes differ), or restarts from stage 1 after a
 * recorded rollback. The same on the router against the Kubernetes API emulator, with rollbacks and
 * the refusal at 100 %, is in rollout-adopt-split-mesh.test.ts.
 */
import { describe, expect, it } from "vitest";
import { InputError, parseConfig } from "../../src/inputs/config.ts";
import { allOnCanaryRefusal, continuation, restartReason } from "../../src/rollout/adopt-split.ts";
import { type EngineSettings, RolloutEngine } from "../../src/rollout/engine.ts";
import type { OriginalRoute } from "../../src/rollout/model/routes.ts";
import type { RolloutState } from "../../src/rollout/model/state.ts";
import type { NextState, TrafficView } from "../../src/rollout/ports.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { finishedState, warnings } from "../support/split-state.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

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
      unmanaged: [],
      object: {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "backend", namespace: "shop" },
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

describe("a rollout adopts a split in progress (on-split: continue)", () => {
  it("on an 80/20 route with no state, judges it at 20 first, then the first weight write is 50; the evidence starts fresh", async () => {
    const traffic = new SplitTraffic([20]);
    const { engine, log } = engineOn(traffic);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "promoted", weight: 100, failed: false });
    // The first write records the rollout (and its lease) and moves no route.
    expect(traffic.writes.map((w) => w.weight)).toEqual([20, 50, 100, 100]);
    expect(log.events.find((e) => e.type === "started")).toMatchObject({ fromStage: 2, weight: 20 });
    expect(warnings(log)[0]).toBe(
      'Adopting a split in progress (no rollout recorded): the canary already gets http route "route-0" 20 %. First the split is judged where it is, beside stable, as a stage of its own: a canary failing there is rolled back before anything raises it. Then: stage 3 of 4 (50 %), the first stage above 20 %. The evidence starts fresh (none was gathered for this canary). To start from stage 1 instead, set on-split: restart.',
    );
    // Only the stages this run analysed (the split where it was found first), each on evidence of this canary alone.
    expect(traffic.state?.stageResults?.map((r) => [r.weight, r.decision])).toEqual([
      [20, "pass"],
      [50, "pass"],
      [100, "pass"],
    ]);
    expect(traffic.state?.history.map((h) => [h.event, h.weight])).toEqual([
      ["adopted", 20],
      ["judging", 20],
      ["stage 3", 50],
      ["stage 4", 100],
      ["promoted", 100],
    ]);
  });

  it("takes the smallest weight when routes differ, lowering the ones above the next stage, and says so", async () => {
    const traffic = new SplitTraffic([30, 20, 60]);
    const { engine, log } = engineOn(traffic, { pauseAfter: 50 });
    expect(await engine.run()).toMatchObject({ result: "paused", weight: 50, failed: false });
    expect(traffic.writes.map((w) => w.weight)).toEqual([20, 50, 50]);
    expect(traffic.routes).toEqual([50, 50, 50]);
    expect(warnings(log)[0]).toContain(
      'the canary already gets http route "route-0" 30 %, http route "route-1" 20 %, http route "route-2" 60 %. The managed routes differ: continuing from the smallest weight, 20 %, so that no route rises by more than one stage; http route "route-2" is lowered to 50 %.',
    );
  });

  it("at or above the last stage below 100, the split is judged at 60 beside stable before the write to 100, which must prove safety as usual", async () => {
    const traffic = new SplitTraffic([60]);
    const { engine, log } = engineOn(traffic);
    expect(await engine.run()).toMatchObject({ result: "promoted", weight: 100 });
    expect(traffic.writes.map((w) => w.weight)).toEqual([60, 100, 100]);
    // The judgement at 60 came before the write to 100: stable served beside the canary in it.
    const judged = log.events.findIndex((e) => e.type === "analysis" && e.weight === 60);
    const raised = log.events.findIndex((e) => e.type === "moving" && e.weight === 100);
    expect(judged).toBeGreaterThanOrEqual(0);
    expect(judged).toBeLessThan(raised);
    const ends = log.events.flatMap((e) => (e.type === "stage-end" ? [[e.weight, e.decision]] : []));
    expect(ends).toEqual([
      [60, "pass"],
      [100, "pass"],
    ]);
    // The last weight beside stable holds 1.5x min-stage-duration, as the stage before 100 % does.
    const adopted = log.events.find((e) => e.type === "stage-end" && e.weight === 60);
    const { minStageDurationMs } = defaultEngineSettings().analysis;
    expect(adopted?.type === "stage-end" && adopted.durationMs).toBeGreaterThanOrEqual(
      1.5 * minStageDurationMs,
    );
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
    expect(traffic.writes.map((w) => w.weight)).toEqual([20, 50, 100, 100]);
    expect(warnings(log)[0]).toMatch(/^Adopting a split in progress \(rollout old-1 was rolled-back\)/);
    expect(traffic.state?.rolloutId).toBe("abc1234-run-1");
  });
});

describe("an adopted split is judged before it is raised (issue 21)", () => {
  for (const weights of [[20], [60], [60, 30]]) {
    it(`a canary already failing at ${weights.join(" and ")} % is rolled back with no write that raises it`, async () => {
      const traffic = new SplitTraffic(weights);
      const clock = new VirtualClock();
      const metrics = new SimulatedMetrics(clock, traffic, {
        requestsPerSecond: 100,
        stableErrorRate: 0.005,
        canaryErrorRate: 0.05,
        seed: 9,
      });
      const log = new EventLog();
      const engine = new RolloutEngine(
        defaultEngineSettings(),
        { holder: "run-1", commit: "abc1234def", newRolloutId: "abc1234-run-1" },
        { traffic, metrics, clock, events: log },
        "VirtualService shop/backend",
      );
      expect(await engine.run()).toMatchObject({ result: "rolled-back", weight: 0, failed: true });
      // The record that takes the split over (no route moves), then the rollback.
      expect(traffic.writes.map((w) => [w.weight, w.status])).toEqual([
        [Math.min(...weights), "progressing"],
        [0, "rolled-back"],
      ]);
      expect(log.events.some((e) => e.type === "moving" && e.weight > 0)).toBe(false);
      expect(traffic.state?.reason).toMatch(/^Failed at \d+ %: The canary's error rate is/);
      // Caught within a couple of minutes of judging, not after a stage at a higher weight.
      expect(clock.now().getTime() - new VirtualClock().now().getTime()).toBeLessThanOrEqual(120_000);
    });
  }
});

/** A person swaps two routes' weights after the action took the split over (at its second read). */
class SwappedWhileJudged extends SplitTraffic {
  private reads = 0;
  override async read(): Promise<TrafficView> {
    this.reads += 1;
    if (this.reads === 2) this.routes = [...this.routes].reverse();
    return super.read();
  }
}

describe("a person's edit while the adopted split is judged wins", () => {
  it("two routes' weights swapped (the same weights, on other routes) stop the action, even from a failing canary: the person's split stays", async () => {
    const traffic = new SwappedWhileJudged([20, 40]);
    const clock = new VirtualClock();
    const metrics = new SimulatedMetrics(clock, traffic, {
      requestsPerSecond: 100,
      stableErrorRate: 0.005,
      canaryErrorRate: 0.05,
      seed: 9,
    });
    const engine = new RolloutEngine(
      defaultEngineSettings(),
      { holder: "run-1", commit: "abc1234def", newRolloutId: "abc1234-run-1" },
      { traffic, metrics, clock, events: new EventLog() },
      "VirtualService shop/backend",
    );
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "paused", failed: true });
    expect(outcome.reason).toMatch(/someone else changed the canary's weight/);
    expect(traffic.routes).toEqual([40, 20]);
    // The record that took the split over, then only the record of the stop: no weight written.
    expect(traffic.writes.map((w) => w.weight)).toEqual([20, 20]);
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

/** A person sets route 0 to `weight` just before the action's first write reaches the routes. */
class EditedAtFirstWrite extends SplitTraffic {
  private edit?: number;
  constructor(weights: number[], edit: number) {
    super(weights);
    this.edit = edit;
  }
  override async write(weight: number, next: NextState): Promise<RolloutState> {
    if (this.edit !== undefined) this.routes[0] = this.edit;
    this.edit = undefined;
    return super.write(weight, next);
  }
}

describe("a person's split made while the action adopts or restarts one wins", () => {
  it("adopting: route 0 set to a weight another route carried is still someone's edit", async () => {
    const traffic = new EditedAtFirstWrite([30, 20, 60], 60);
    const { engine } = engineOn(traffic);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "paused", failed: true });
    expect(outcome.reason).toMatch(
      /someone else changed the canary's weight from 30, 20, 60 % to 60, 20, 60 %/,
    );
    expect(traffic.routes).toEqual([60, 20, 60]);
    expect(traffic.writes.map((w) => w.weight)).not.toContain(50);
  });

  it("restarting: nothing is written, and the step fails saying why", async () => {
    const traffic = new EditedAtFirstWrite([20], 40);
    const { engine } = engineOn(traffic, { onSplit: "restart" });
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "unchanged", failed: true });
    expect(outcome.reason).toMatch(
      /^Stopped before the restart: someone else changed the canary's weight from 20 % to 40 %/,
    );
    expect(traffic.routes).toEqual([40]);
    expect(traffic.writes).toEqual([]);
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

describe("messages name the managed object's kind", () => {
  const routes: OriginalRoute[] = [
    { index: 0, name: "primary", canaryAdded: false, stableWeight: 80, canaryWeight: 20 },
  ];
  it("all on the canary: an HTTPRoute's way out swaps stable-host and canary-host, a VirtualService's the subsets", () => {
    const http = allOnCanaryRefusal({ stages: [50, 100], weights: [100], routes, kind: "HTTPRoute" });
    expect(http).toMatch(/either swap stable-host and canary-host \(/);
    expect(http).not.toMatch(/subset/);
    const vs = allOnCanaryRefusal({ stages: [50, 100], weights: [100], routes, kind: "VirtualService" });
    expect(vs).toMatch(/either swap stable-subset and canary-subset \(/);
  });
  it("routes of the other objects in lockstep are named by their kind", () => {
    const { message } = continuation({ stages: [50, 100], weights: [20, 30], routes, kind: "HTTPRoute" });
    expect(message).toMatch(/http route "primary" 20 %, route 1 of the other HTTPRoutes 30 %/);
    expect(restartReason({ stages: [50, 100], weights: [20, 30], routes, kind: "HTTPRoute" })).toMatch(
      /route 1 of the other HTTPRoutes 30 %/,
    );
  });
});
