/** The benchmark's harness: Prometheus' arithmetic, counts as the action reads them, and a few rollouts per rule. */
import { describe, expect, it } from "vitest";
import { ROLLOUT_START } from "../../bench/outcome.ts";
import { ScrapedMetrics } from "../../bench/ports.ts";
import { promIrate, promRate } from "../../bench/promql.ts";
import { parseScenario } from "../../bench/scenario.ts";
import { runRange } from "../../bench/simulate.ts";
import { ServiceWorld } from "../../bench/world.ts";

const scenario = (canaryErrorRate: number, requestsPerSecond = 100) =>
  parseScenario(
    {
      description: "test",
      requestsPerSecond,
      stable: { errorRate: 0 },
      canary: { errorRate: canaryErrorRate },
    },
    "test",
  );

describe("PromQL arithmetic", () => {
  it("rate() extrapolates to the window's edges as Prometheus does, irate() takes the last two samples", () => {
    const samples = [10, 25, 40, 55].map((s, i) => ({ at: s * 1000, value: 10 * (i + 1) }));
    // Increase 30 over 45 s, extended by 10 s to the start and 5 s to the end: 40 over the 60 s window.
    expect(promRate(samples, 60_000, 60_000)).toBeCloseTo(40 / 60, 10);
    // A series born inside the window: extrapolated back only to where it would have been zero.
    const born = [40, 55].map((s, i) => ({ at: s * 1000, value: i + 1 }));
    expect(promRate(born, 60_000, 60_000)).toBeCloseTo((15 + 15 + 5) / 15 / 60, 10);
    expect(promRate(samples.slice(0, 1), 60_000, 60_000)).toBeUndefined();
    expect(promIrate(samples)).toBeCloseTo(10 / 15, 10);
  });
});

describe("metrics as the action reads them", () => {
  it("has no canary series before a request reached it, then counts from the mark at scrape granularity", async () => {
    const world = new ServiceWorld(scenario(0.5), 7, ROLLOUT_START);
    const metrics = new ScrapedMetrics(world, false);
    const mark = await metrics.start(new Date(ROLLOUT_START));
    const before = await metrics.observeSince(mark, new Date(ROLLOUT_START + 60_000));
    expect(before).toMatchObject({ ok: true, canary: undefined });
    world.setWeight(50);
    const after = await metrics.observeSince(mark, new Date(ROLLOUT_START + 5 * 60_000));
    if (!after.ok || !after.canary || !after.stable) throw new Error("expected both versions' counts");
    // What Prometheus saw trails what was served by less than one scrape interval.
    expect(after.canary.requests).toBeLessThanOrEqual(world.served.canary.requests);
    expect(after.canary.requests).toBeGreaterThan(50 * (4 * 60 - 15) * 0.9);
    expect(after.canary.errors / after.canary.requests).toBeCloseTo(0.5, 1);
    expect(after.stable.errors).toBe(0);
  });
});

describe("rollouts under each rule", () => {
  it("the real engine rolls a 20 % canary back and promotes a flawless one", async () => {
    const bad = await runRange("ours", scenario(0.2), 0, 3);
    for (const o of bad) {
      expect(o).toMatchObject({ result: "rolled-back", cause: "fail" });
      expect(o.canaryErrors).toBeGreaterThan(0);
      expect(o.canaryErrors).toBeLessThan(o.canaryRequests);
    }
    const good = await runRange("ours", scenario(0, 1000), 0, 2);
    for (const o of good) expect(o).toMatchObject({ result: "promoted", canaryErrors: 0 });
  });

  it("Flagger promotes a flawless canary after one passing check per step; Argo after five measurements per step", async () => {
    const [flagger] = await runRange("flagger", scenario(0), 0, 1);
    expect(flagger).toMatchObject({ result: "promoted", minutes: 4 });
    // Argo's first measurement at 1 % finds no canary series yet: an error, measured again a minute later.
    const [argo] = await runRange("argo", scenario(0), 0, 1);
    expect(argo).toMatchObject({ result: "promoted", minutes: 17 });
  });

  it("gives every rule the same draws for the same run", async () => {
    const once = await runRange("flagger", scenario(0.05), 5, 8);
    expect(await runRange("flagger", scenario(0.05), 5, 8)).toEqual(once);
  });
});
