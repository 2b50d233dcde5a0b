import { describe, expect, it } from "vitest";
import { type JudgeSettings, judgeStage, type Observation, splitCheck } from "../src/analysis/judge.ts";
import { bernoulliLlr, boundaries, splitBudget } from "../src/analysis/sprt.ts";

const settings: JudgeSettings = {
  maxErrorRate: 0.01,
  maxSlowFraction: 0.01,
  minRequests: 100,
  minStageDurationMs: 60_000,
  maxStageDurationMs: 600_000,
  alpha: 0.0442,
  beta: 0.05,
};
const ok = (
  canary: { requests: number; errors: number; slow?: number } | undefined,
  stable?: { requests: number; errors: number; slow?: number },
  partial: string[] = [],
): Observation => ({
  ok: true,
  canary,
  stable,
  partial,
});

describe("sequential test primitives", () => {
  it("computes the Bernoulli log-likelihood ratio", () => {
    expect(bernoulliLlr(100, 5, 0.005, 0.05)).toBeCloseTo(5 * Math.log(10) + 95 * Math.log(0.95 / 0.995), 10);
    expect(bernoulliLlr(0, 0, 0.005, 0.05)).toBe(0);
  });

  it("uses the anytime-valid rejection boundary ln(1/α)", () => {
    expect(boundaries(0.05, 0.05).reject).toBeCloseTo(Math.log(20));
    expect(boundaries(0.05, 0.05).accept).toBeCloseTo(Math.log(0.05 / 0.95));
  });

  it("splits the budget in proportion to 1/weight and sums to it", () => {
    const shares = splitBudget(0.05, [1, 10, 50, 100]);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(0.05, 12);
    expect(shares[0]! / shares[1]!).toBeCloseTo(10);
    expect(shares[2]! / shares[3]!).toBeCloseTo(2);
  });
});

describe("judgeStage", () => {
  it("fails a canary at 20 % errors quickly, with the numbers why", () => {
    const v = judgeStage(
      {
        weight: 1,
        elapsedMs: 15_000,
        observation: ok({ requests: 20, errors: 4 }, { requests: 2000, errors: 2 }),
      },
      settings,
    );
    expect(v.decision).toBe("fail");
    expect(v.rule).toBe("sprt-reject");
    expect(v.signals[0]?.llr).toBeGreaterThanOrEqual(v.signals[0]?.boundaries.reject as number);
    expect(v.reason).toContain("20 % (4 of 20)");
  });

  it("does not fail on one error at 1 % traffic (1 in 60 is 1.7 %, above a fixed 1 % threshold)", () => {
    const v = judgeStage(
      {
        weight: 1,
        elapsedMs: 60_000,
        observation: ok({ requests: 60, errors: 1 }, { requests: 5940, errors: 6 }),
      },
      settings,
    );
    expect(v.decision).toBe("continue");
  });

  it("passes a healthy canary only with min-requests and after min-stage-duration", () => {
    const healthy = ok({ requests: 1000, errors: 0 }, { requests: 9000, errors: 9 });
    expect(judgeStage({ weight: 10, elapsedMs: 30_000, observation: healthy }, settings)).toMatchObject({
      decision: "continue",
      rule: "min-duration",
    });
    expect(judgeStage({ weight: 10, elapsedMs: 60_000, observation: healthy }, settings)).toMatchObject({
      decision: "pass",
      rule: "sprt-accept",
    });
    const few = ok({ requests: 99, errors: 0 }, { requests: 891, errors: 0 });
    expect(judgeStage({ weight: 10, elapsedMs: 60_000, observation: few }, settings)).toMatchObject({
      decision: "continue",
      rule: "min-requests",
    });
    const v = judgeStage({ weight: 10, elapsedMs: 600_000, observation: few }, settings);
    expect(v).toMatchObject({ decision: "inconclusive", rule: "max-duration" });
    expect(v.reason).toContain("Too little traffic");
  });

  it("fails a canary clearly worse than stable even below max-error-rate", () => {
    const v = judgeStage(
      {
        weight: 50,
        elapsedMs: 120_000,
        observation: ok({ requests: 6000, errors: 42 }, { requests: 6000, errors: 3 }),
      },
      settings,
    );
    expect(v.signals[0]?.canaryRate).toBeLessThan(settings.maxErrorRate);
    expect(v.decision).toBe("fail");
  });

  it("judges latency when a threshold is set, with the budget halved between the signals", () => {
    const latency = { ...settings, latencyThresholdMs: 500 };
    const v = judgeStage(
      {
        weight: 10,
        elapsedMs: 60_000,
        observation: ok({ requests: 400, errors: 0, slow: 40 }, { requests: 3600, errors: 0, slow: 3 }),
      },
      latency,
    );
    expect(v.decision).toBe("fail");
    expect(v.signals.map((s) => s.signal)).toEqual(["errors", "latency"]);
    expect(v.signals[1]?.alpha).toBeCloseTo(settings.alpha / 2);
    expect(v.reason).toContain("slower than 500 ms");
  });

  it("uses the stable baseline from earlier stages at weight 100", () => {
    const v = judgeStage(
      {
        weight: 100,
        elapsedMs: 60_000,
        observation: ok({ requests: 6000, errors: 3 }, { requests: 0, errors: 0 }),
        stableBaseline: { requests: 50_000, errors: 25 },
      },
      settings,
    );
    expect(v.decision).toBe("pass");
    expect(v.signals[0]?.stableRate).toBeCloseTo(0.0005);
  });

  describe("never passes on missing or bad data, and says which", () => {
    const healthy = { requests: 5000, errors: 0 };
    it.each<[string, Observation, RegExp]>([
      [
        "Prometheus down",
        { ok: false, problem: "unreachable", message: "connect ECONNREFUSED 127.0.0.1:9090" },
        /could not be read \(unreachable\)/,
      ],
      [
        "503",
        { ok: false, problem: "timeout", message: "query timed out in expression evaluation" },
        /\(timeout\)/,
      ],
      [
        "422",
        { ok: false, problem: "execution", message: "many-to-many matching not allowed" },
        /\(execution\)/,
      ],
      [
        "NaN values",
        ok(healthy, { requests: 45_000, errors: 0 }, ["a sample value was NaN"]),
        /partial data \(a sample value was NaN\)/,
      ],
      [
        "warnings",
        ok(healthy, { requests: 45_000, errors: 0 }, ["PromQL info: metric might not be a counter"]),
        /partial data/,
      ],
      ["no series at all", ok(undefined, undefined), /no series for either version/],
      ["no canary series", ok(undefined, { requests: 45_000, errors: 0 }), /No traffic reached the canary/],
    ])("%s", (_, observation, reason) => {
      for (const elapsedMs of [60_000, 300_000, 600_000]) {
        const v = judgeStage({ weight: 10, elapsedMs, observation }, settings);
        expect(v.decision).not.toBe("pass");
        expect(v.reason).toMatch(reason);
      }
      expect(judgeStage({ weight: 10, elapsedMs: 600_000, observation }, settings).decision).toBe(
        "inconclusive",
      );
    });
  });

  it("waits for the canary's first request while too few are expected", () => {
    const v = judgeStage(
      { weight: 1, elapsedMs: 20_000, observation: ok(undefined, { requests: 500, errors: 0 }) },
      settings,
    );
    expect(v).toMatchObject({ decision: "continue", rule: "waiting" });
  });

  it("checks the observed split against the weight", () => {
    expect(splitCheck(10, { requests: 100, errors: 0 }, { requests: 900, errors: 0 })?.zScore).toBeCloseTo(0);
    expect(
      Math.abs(splitCheck(10, { requests: 0, errors: 0 }, { requests: 1000, errors: 0 })?.zScore ?? 0),
    ).toBeGreaterThan(5);
  });
});
