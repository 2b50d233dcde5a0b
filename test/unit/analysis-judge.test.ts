/** The judge and the evidence it carries: pure, counts in, verdict out. */
import { describe, expect, it } from "vitest";
import { assessSignal } from "../../src/analysis/assessment.ts";
import { addWindow, emptyEvidence } from "../../src/analysis/evidence.ts";
import { evidenceSettings, judgeCheck, splitCheck } from "../../src/analysis/judge.ts";
import { requestsToProveSafe } from "../../src/analysis/proof.ts";
import { judgeDefaults, StageJudging } from "../support/judging.ts";
import { binomial, seededRandom } from "../support/random.ts";

const baseInput = (
  evidence: ReturnType<typeof emptyEvidence>,
  window: { canary: { requests: number; errors: number }; stable: { requests: number; errors: number } },
) => ({
  weight: 50,
  final: false,
  elapsedMs: 0,
  observation: { ok: true, canary: window.canary, stable: window.stable, partial: [] } as const,
  evidence,
  stableServed: true,
});

const ok = (
  canary: { requests: number; errors: number; slow?: number } | undefined,
  stable?: { requests: number; errors: number; slow?: number },
  partial: string[] = [],
) => ({ ok: true, canary, stable, partial }) as const;

/** Feeds `windows` windows of counts drawn at the given rates; returns the first non-continue verdict. */
function simulate(
  random: () => number,
  o: {
    windows: number;
    canaryRequests: number;
    stableRequests: number;
    canaryRate: (w: number) => number;
    stableRate: (w: number) => number;
    final?: boolean;
    weight?: number;
  },
) {
  const judging = new StageJudging(
    { maxStageDurationMs: Number.POSITIVE_INFINITY },
    o.weight ?? 10,
    o.final ?? false,
  );
  const total = { canary: { requests: 0, errors: 0 }, stable: { requests: 0, errors: 0 } };
  for (let w = 0; w < o.windows; w++) {
    const cr = binomial(random, o.canaryRequests * 2, 0.5);
    const sr = binomial(random, o.stableRequests * 2, 0.5);
    total.canary.requests += cr;
    total.canary.errors += binomial(random, cr, o.canaryRate(w));
    total.stable.requests += sr;
    total.stable.errors += binomial(random, sr, o.stableRate(w));
    // Below the last stage only harm can end the stage early: min-stage-duration is never reached here.
    const v = judging.check(ok({ ...total.canary }, { ...total.stable }), 0);
    if (v.decision !== "continue") return { verdict: v, window: w, total };
  }
  return { verdict: undefined, window: o.windows, total };
}

describe("harm: the canary clearly above the limit or clearly worse than stable", () => {
  it("fails a 5 % canary against a 1 % limit within a few errors, and says why in numbers", () => {
    const r = simulate(seededRandom(1), {
      windows: 100,
      canaryRequests: 15,
      stableRequests: 1500,
      canaryRate: () => 0.05,
      stableRate: () => 0.005,
    });
    expect(r.verdict?.decision).toBe("fail");
    expect(r.total.canary.errors).toBeLessThanOrEqual(12);
    // Whichever harm test got there first, the reason gives the numbers.
    expect(r.verdict?.reason).toMatch(/above the 1 % limit|against stable's [\d.]+ % at the same moments/);
    expect(r.verdict?.reason).toMatch(/\d+ ≥ 1\/α = 40/);
  });

  it("catches a canary just above the limit (1.2 % against 1 %) by the limit's test, in tens of thousands of requests", () => {
    const random = seededRandom(21);
    const requests: number[] = [];
    for (let run = 0; run < 50; run++) {
      const r = simulate(random, {
        windows: 200,
        canaryRequests: 1500,
        stableRequests: 1500,
        canaryRate: () => 0.012,
        stableRate: () => 0.005,
      });
      expect(r.verdict?.decision).toBe("fail");
      requests.push(r.total.canary.requests);
    }
    // Alternatives from 1.5x the limit never convicted this canary (their likelihood favours 1 %);
    // the mixture's 1.1x-1.35x alternatives do, in about ln(40 / w) / KL(1.2 % || 1 %) requests.
    const mean = requests.reduce((a, b) => a + b, 0) / requests.length;
    expect(mean).toBeLessThan(45_000);
  });

  it.each([
    {
      what: "under the near alternatives (both at 1 %, 300 windows)",
      seed: 22,
      windows: 300,
      requests: 300,
      stableRate: 0.01,
    },
    {
      what: "with a change possible at any window (stable at 0.5 %, 1,000 windows)",
      seed: 32,
      windows: 1000,
      requests: 100,
      stableRate: 0.005,
    },
  ])(
    "keeps the false-rollback promise for a canary at the limit $what",
    ({ seed, windows, requests, stableRate }) => {
      const random = seededRandom(seed);
      let fails = 0;
      for (let run = 0; run < 200; run++) {
        const r = simulate(random, {
          windows,
          canaryRequests: requests,
          stableRequests: requests,
          canaryRate: () => 0.01,
          stableRate: () => stableRate,
        });
        if (r.verdict?.decision === "fail") fails++;
      }
      expect(fails / 200).toBeLessThanOrEqual(judgeDefaults.falseRollbackBudget);
    },
  );

  it("catches a canary that goes bad after minutes of health in a window or two, where the whole-rollout test needs a minute more", () => {
    // 50 % at 100 req/s: 750 requests a version per 15 s window. Healthy (0.5 %) for 12 windows, then 5 %.
    const judging = new StageJudging({ maxStageDurationMs: Number.POSITIVE_INFINITY }, 50);
    const random = seededRandom(31);
    const total = { canary: { requests: 0, errors: 0 }, stable: { requests: 0, errors: 0 } };
    let caughtAfter: number | undefined;
    for (let w = 0; w < 24 && caughtAfter === undefined; w++) {
      const rate = w < 12 ? 0.005 : 0.05;
      total.canary = {
        requests: total.canary.requests + 750,
        errors: total.canary.errors + binomial(random, 750, rate),
      };
      total.stable = {
        requests: total.stable.requests + 750,
        errors: total.stable.errors + binomial(random, 750, 0.005),
      };
      const v = judging.check(ok({ ...total.canary }, { ...total.stable }), 0);
      if (v.decision === "fail") {
        caughtAfter = w - 11;
        // The rollout's rate is still within the limit: the reason leads with the latest window's
        // rate, and never calls a rate below the limit "above" it.
        const rollout = total.canary.errors / total.canary.requests;
        expect(rollout).toBeLessThan(0.01);
        expect(v.reason).toMatch(
          /went above the 1 % limit in its latest windows: [\d.]+ % in the latest window \(\d+ of 750\)/,
        );
        expect(v.reason).toContain(`(${total.canary.errors} of ${total.canary.requests}) over the rollout`);
        // The mixture over the whole rollout, from the first window, is still far from 1/α here.
        const whole = assessSignal("errors", judging.evidence.errors, 0.01).absWholeLogE;
        expect(whole).toBeLessThan(Math.log(40));
      }
    }
    expect(caughtAfter).toBeDefined();
    expect(caughtAfter).toBeLessThanOrEqual(2);
  });

  it("keeps the relative test's level when the edge rule reads the straddling increments' rest (canary at 2x stable)", () => {
    // Per window: stable's pods add their whole increments plus a share f of the one that straddles
    // the window's end; the rest (1 - f) is what stableAhead adds past the end, drawn from the same
    // increment, as the reader counts it. The canary sits exactly at max-ratio-to-stable x stable.
    const settings = evidenceSettings(judgeDefaults);
    const random = seededRandom(41);
    const runs = 1000;
    let rejected = 0;
    for (let run = 0; run < runs; run++) {
      let evidence = emptyEvidence(false);
      let stableCarry = { requests: 0, errors: 0 };
      for (let w = 0; w < 60; w++) {
        const f = random();
        const straddle = { requests: binomial(random, 600, 0.5), errors: 0 };
        straddle.errors = binomial(random, straddle.requests, 0.008);
        const inWindow = Math.round(f * straddle.requests);
        const errorsIn = Math.round(f * straddle.errors);
        const base = binomial(random, 900, 0.5);
        const stable = {
          requests: stableCarry.requests + base + inWindow,
          errors: stableCarry.errors + binomial(random, base, 0.008) + errorsIn,
        };
        const past = { requests: straddle.requests - inWindow, errors: straddle.errors - errorsIn };
        stableCarry = past;
        const canaryRequests = binomial(random, 1500, 0.5);
        const canary = { requests: canaryRequests, errors: binomial(random, canaryRequests, 0.016) };
        evidence = addWindow(
          evidence,
          {
            canary,
            stable,
            stableAhead: { requests: stable.requests + past.requests, errors: stable.errors + past.errors },
            ms: 15_000,
          },
          settings,
        );
        if (assessSignal("errors", evidence.errors, 0.01).relLogE >= Math.log(40)) {
          rejected++;
          break;
        }
      }
    }
    expect(rejected / runs).toBeLessThanOrEqual(0.025);
  });

  it("a blip forgiven at 100 % leaves nothing in the limit's change-point test", () => {
    // No step back available (a single stage, or both used): a 30 s incident at 100 %, then a window below.
    const settings = evidenceSettings(judgeDefaults);
    const w = (errors: number) => ({ canary: { requests: 3000, errors }, ms: 15_000 });
    let evidence = emptyEvidence(false);
    for (let i = 0; i < 6; i++) evidence = addWindow(evidence, w(15), settings);
    for (let i = 0; i < 2; i++) evidence = addWindow(evidence, w(600), settings);
    evidence = addWindow(evidence, w(12), settings);
    expect(evidence.errors.forgiven).toBe(1);
    expect(assessSignal("errors", evidence.errors, 0.01).absLogE).toBeLessThan(Math.log(40));
  });

  it("does not count a window at an incident's edge: stable's samples just past it show the incident", () => {
    // 1,000 req/s at 50 %: 7,500 requests a version per window. An incident starts at a window's
    // end; the canary's pods, scraped later, carry its first seconds into that window, stable's not.
    const settings = evidenceSettings(judgeDefaults);
    const healthy = { requests: 7500, errors: 37 };
    const run = (withAhead: boolean) => {
      let evidence = emptyEvidence(false);
      for (let w = 0; w < 10; w++)
        evidence = addWindow(evidence, { canary: healthy, stable: healthy, ms: 15_000 }, settings);
      const edge = {
        canary: { requests: 7500, errors: 300 },
        stable: healthy,
        ...(withAhead ? { stableAhead: { requests: 9000, errors: 337 } } : {}),
        ms: 15_000,
      };
      evidence = addWindow(evidence, edge, settings);
      // The incident itself, both versions in it: no clean window, and no worse a share for the canary.
      evidence = addWindow(
        evidence,
        { canary: { requests: 7500, errors: 1500 }, stable: { requests: 7500, errors: 1500 }, ms: 15_000 },
        settings,
      );
      return assessSignal("errors", evidence.errors, 0.01);
    };
    const reject = Math.log(1 / 0.025);
    const counted = run(false);
    expect(Math.max(counted.absLogE, counted.relLogE)).toBeGreaterThanOrEqual(reject);
    const notCounted = run(true);
    expect(notCounted.absLogE).toBeLessThan(reject);
    expect(notCounted.relLogE).toBeLessThan(reject);
  });

  it("fails a canary three times stable's rate even below the limit (0.6 % against 0.2 %)", () => {
    const r = simulate(seededRandom(2), {
      windows: 400,
      canaryRequests: 500,
      stableRequests: 500,
      canaryRate: () => 0.006,
      stableRate: () => 0.002,
    });
    expect(r.verdict).toMatchObject({ decision: "fail", rule: "harm-stable" });
    expect(r.verdict?.reason).toMatch(/more than 2× worse/);
  });

  it("does not blame the canary for an incident that hits both versions at the same moments", () => {
    // Every 10th window both versions fail 20 % of requests: far above the limit, for both.
    const burst = (w: number) => (w % 10 === 5 ? 0.2 : 0.005);
    let fails = 0;
    const random = seededRandom(3);
    for (let run = 0; run < 200; run++) {
      const r = simulate(random, {
        windows: 40,
        canaryRequests: 150,
        stableRequests: 1350,
        canaryRate: burst,
        stableRate: burst,
      });
      if (r.verdict?.decision === "fail") fails++;
    }
    expect(fails / 200).toBeLessThanOrEqual(0.02);
  });

  it("keeps the false-rollback promise when stable runs close to the limit (both at 0.9 %, 500 checks)", () => {
    const random = seededRandom(4);
    let fails = 0;
    for (let run = 0; run < 200; run++) {
      const r = simulate(random, {
        windows: 500,
        canaryRequests: 200,
        stableRequests: 200,
        canaryRate: () => 0.009,
        stableRate: () => 0.009,
      });
      if (r.verdict?.decision === "fail") fails++;
    }
    expect(fails / 200).toBeLessThanOrEqual(judgeDefaults.falseRollbackBudget);
  });

  it("at 100 % (no stable to compare) rolls back only a harm that persists for a minute", () => {
    const judging = new StageJudging({}, 100, true);
    expect(judging.check(ok({ requests: 1500, errors: 7 }, undefined), 15_000).decision).toBe("continue");
    // From here every 15 s window runs at 5 % errors.
    let canary = { requests: 1500, errors: 7 };
    const rules: string[] = [];
    for (let t = 30_000; t <= 120_000; t += 15_000) {
      canary = { requests: canary.requests + 1500, errors: canary.errors + 75 };
      const v = judging.check(ok({ ...canary }, undefined), t);
      rules.push(v.rule);
      if (v.decision !== "continue") break;
    }
    expect(rules).toEqual(["persisting", "persisting", "persisting", "harm-limit"]);
  });

  it("a 30-second blip at 100 % does not roll back", () => {
    const judging = new StageJudging({}, 100, true);
    const windows = [7, 300, 300, 8, 6, 7];
    let canary = { requests: 0, errors: 0 };
    for (const [i, errors] of windows.entries()) {
      canary = { requests: canary.requests + 1500, errors: canary.errors + errors };
      expect(judging.check(ok({ ...canary }, undefined), 15_000 * (i + 1)).decision).not.toBe("fail");
    }
  });

  it("never convicts on partial data, and counts none of it", () => {
    const judging = new StageJudging();
    const v = judging.check(
      ok({ requests: 200, errors: 100 }, { requests: 2000, errors: 1 }, [
        "a request counter sample value was NaN",
      ]),
      30_000,
    );
    expect(v).toMatchObject({ decision: "continue", rule: "partial-data" });
    expect(judging.evidence.windows).toBe(0);
  });
});

describe("moving on and promoting", () => {
  it("a stage below the last moves on after min-stage-duration with little traffic and no harm", () => {
    const judging = new StageJudging({}, 1, false);
    expect(judging.check(ok({ requests: 3, errors: 0 }, { requests: 300, errors: 1 }), 30_000).decision).toBe(
      "continue",
    );
    const v = judging.check(ok({ requests: 6, errors: 0 }, { requests: 600, errors: 3 }), 60_000);
    expect(v).toMatchObject({ decision: "pass", rule: "no-harm" });
  });

  it("the stage before 100 % (the last with stable beside the canary) holds for 1.5x min-stage-duration", () => {
    const settings = { ...judgeDefaults };
    const window = {
      canary: { requests: 3000, errors: 15 },
      stable: { requests: 3000, errors: 15 },
      ms: 60_000,
    };
    const evidence = addWindow(emptyEvidence(false), window, evidenceSettings(settings));
    const at = (elapsedMs: number, lastBesideStable: boolean) =>
      judgeCheck(
        {
          weight: 50,
          final: false,
          ...(lastBesideStable ? { lastBesideStable } : {}),
          elapsedMs,
          observation: ok(window.canary, window.stable),
          evidence,
          stableServed: true,
        },
        settings,
      );
    expect(at(60_000, false)).toMatchObject({ decision: "pass", rule: "no-harm" });
    expect(at(60_000, true)).toMatchObject({ decision: "continue", rule: "min-duration" });
    expect(at(75_000, true)).toMatchObject({ decision: "continue", rule: "min-duration" });
    expect(at(90_000, true)).toMatchObject({ decision: "pass", rule: "no-harm" });
    // Never past max-stage-duration.
    expect(
      judgeCheck(
        { ...baseInput(evidence, window), lastBesideStable: true, elapsedMs: 70_000 },
        { ...settings, maxStageDurationMs: 70_000 },
      ),
    ).toMatchObject({ decision: "pass" });
  });

  it("holds a stage below the last while some evidence of harm has built up", () => {
    const judging = new StageJudging({}, 1, false);
    const v = judging.check(ok({ requests: 60, errors: 4 }, { requests: 6000, errors: 30 }), 60_000);
    expect(v).toMatchObject({ decision: "continue", rule: "suspicious" });
  });

  it("the last stage promotes only with the proof that the canary is below the limit", () => {
    const judging = new StageJudging({}, 100, true);
    expect(judging.check(ok({ requests: 500, errors: 2 }), 60_000)).toMatchObject({
      decision: "continue",
      rule: "waiting",
    });
    const v = judging.check(ok({ requests: 4000, errors: 18 }), 90_000);
    expect(v).toMatchObject({ decision: "pass", rule: "proven-safe" });
  });

  it("at max-stage-duration without proof the verdict is inconclusive and says how long a proof would take", () => {
    const judging = new StageJudging({}, 100, true);
    const v = judging.check(ok({ requests: 600, errors: 3 }), 600_000);
    expect(v).toMatchObject({ decision: "inconclusive", rule: "max-duration" });
    expect(v.reason).toMatch(/about \d+ more canary requests \(\d+ min at the observed 1\.0 req\/s\)/);
  });

  it("at max-stage-duration a canary near the limit over plenty of requests is not promoted", () => {
    // 60,000 requests at 1 %: enough to prove a canary at half the limit, not this one.
    const atLimit = new StageJudging({}, 100, true).check(ok({ requests: 60_000, errors: 600 }), 600_000);
    expect(atLimit).toMatchObject({ decision: "inconclusive", rule: "near-limit" });
    // The same traffic at 0.5 % is proven well before; too little traffic is max-duration (promotable).
    const few = new StageJudging({}, 100, true).check(ok({ requests: 600, errors: 6 }), 600_000);
    expect(few.rule).toBe("max-duration");
  });

  it("at max-stage-duration, however little traffic, a canary whose counts point above the limit is not promoted", () => {
    // 1 req/s at 100 % for 10 minutes: 600 requests, too few for either proof.
    const bad = new StageJudging({}, 100, true).check(ok({ requests: 600, errors: 14 }), 600_000);
    expect(bad).toMatchObject({ decision: "inconclusive", rule: "above-limit" });
    expect(bad.reason).toMatch(/2\.33 % \(14 of 600\) against the 1 % limit/);
    // A healthy canary's counts at the same traffic favour the limit or below: on-inconclusive decides.
    const healthy = new StageJudging({}, 100, true).check(ok({ requests: 600, errors: 4 }), 600_000);
    expect(healthy.rule).toBe("max-duration");
  });

  it("carries evidence across stages: the last stage starts with what earlier stages saw", () => {
    const earlier = new StageJudging({}, 50, false);
    earlier.check(ok({ requests: 3000, errors: 12 }, { requests: 3000, errors: 14 }), 60_000);
    const last = new StageJudging({}, 100, true, earlier.evidence);
    expect(last.check(ok({ requests: 800, errors: 3 }), 60_000)).toMatchObject({
      decision: "pass",
      rule: "proven-safe",
    });
    const fresh = new StageJudging({}, 100, true);
    expect(fresh.check(ok({ requests: 800, errors: 3 }), 60_000).decision).toBe("continue");
  });

  it("tells no traffic apart from no data", () => {
    const judging = new StageJudging();
    expect(judging.check(ok(undefined, undefined), 30_000).rule).toBe("no-series");
    const none = new StageJudging().check(
      ok({ requests: 0, errors: 0 }, { requests: 900, errors: 0 }),
      30_000,
    );
    expect(none).toMatchObject({ decision: "inconclusive", rule: "no-canary-traffic" });
    // Any route kind (VirtualService or HTTPRoute), any data plane (sidecar or ambient).
    expect(none.reason).toContain("is the route applied to this traffic");
    expect(none.reason).toContain("in ambient mode served by a waypoint");
    expect(none.reason).not.toContain("VirtualService");
  });
});

describe("evidence primitives", () => {
  it("estimates the requests a safety proof still needs from the observed rate", () => {
    const e = addWindow(
      emptyEvidence(false),
      { canary: { requests: 200, errors: 1 }, ms: 15_000 },
      { maxErrorRate: 0.01, maxSlowFraction: 0.01, maxRatioToStable: 2, harmLogE: Math.log(40) },
    );
    const needed = requestsToProveSafe(assessSignal("errors", e.errors, 0.01), 0.05);
    expect(needed).toBeGreaterThan(500);
    expect(needed).toBeLessThan(3000);
  });

  it("checks the observed split against the weight", () => {
    expect(splitCheck(10, { requests: 100, errors: 0 }, { requests: 900, errors: 0 })?.zScore).toBeCloseTo(
      0,
      5,
    );
    expect(
      splitCheck(10, { requests: 550, errors: 0 }, { requests: 450, errors: 0 })?.zScore,
    ).toBeGreaterThan(5);
  });

  it("reports metrics errors without deciding before max-stage-duration", () => {
    const v = judgeCheck(
      {
        weight: 10,
        final: false,
        elapsedMs: 1000,
        observation: { ok: false, problem: "timeout", message: "slow" },
        evidence: emptyEvidence(false),
        stableServed: false,
      },
      judgeDefaults,
    );
    expect(v).toMatchObject({ decision: "continue", rule: "metrics-error" });
  });
});
