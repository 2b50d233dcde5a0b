/**
 * Seeded rollout simulations for the judge: a service at a fixed request rate, the canary's weight
 * stepping through the stages, binomial request and error counts per interval, and the judge
 * consulted at every interval exactly as the rollout engine consults it.
 */
import {
  type JudgeSettings,
  judgeStage,
  type Verdict,
  type VersionCounts,
} from "../../src/analysis/judge.ts";
import { splitBudget } from "../../src/analysis/sprt.ts";
import { binomial, seededRandom } from "./random.ts";

export interface SimulationConfig {
  stages: number[];
  requestsPerSecond: number;
  stableErrorRate: number;
  canaryErrorRate: number;
  intervalMs: number;
  settings: Omit<JudgeSettings, "alpha">;
  budget: number;
}

export interface RolloutOutcome {
  result: "promoted" | "failed" | "inconclusive";
  stage: number;
  /** Canary requests (and errors) that users sent to the canary before the decision. */
  canaryRequests: number;
  canaryErrors: number;
  verdict: Verdict;
  elapsedMs: number;
}

export function simulateRollout(config: SimulationConfig, random: () => number): RolloutOutcome {
  const alphas = splitBudget(config.budget, config.stages);
  const stableAll: VersionCounts = { requests: 0, errors: 0 };
  let canaryRequests = 0;
  let canaryErrors = 0;
  let elapsedTotal = 0;
  let last: Verdict | undefined;
  for (const [index, weight] of config.stages.entries()) {
    const canary: VersionCounts = { requests: 0, errors: 0 };
    const stable: VersionCounts = { requests: 0, errors: 0 };
    const settings: JudgeSettings = { ...config.settings, alpha: alphas[index] as number };
    for (let elapsed = config.intervalMs; ; elapsed += config.intervalMs) {
      const total = binomial(
        random,
        Math.round((config.requestsPerSecond * config.intervalMs) / 1000) * 4,
        0.25,
      );
      const c = binomial(random, total, weight / 100);
      const ce = binomial(random, c, config.canaryErrorRate);
      const se = binomial(random, total - c, config.stableErrorRate);
      canary.requests += c;
      canary.errors += ce;
      stable.requests += total - c;
      stable.errors += se;
      canaryRequests += c;
      canaryErrors += ce;
      const baseline = {
        requests: stableAll.requests + stable.requests,
        errors: stableAll.errors + stable.errors,
      };
      last = judgeStage(
        {
          weight,
          elapsedMs: elapsed,
          observation: { ok: true, canary: { ...canary }, stable: { ...stable }, partial: [] },
          stableBaseline: baseline,
        },
        settings,
      );
      if (last.decision === "continue") continue;
      elapsedTotal += elapsed;
      if (last.decision === "fail")
        return {
          result: "failed",
          stage: weight,
          canaryRequests,
          canaryErrors,
          verdict: last,
          elapsedMs: elapsedTotal,
        };
      if (last.decision === "inconclusive")
        return {
          result: "inconclusive",
          stage: weight,
          canaryRequests,
          canaryErrors,
          verdict: last,
          elapsedMs: elapsedTotal,
        };
      break;
    }
    stableAll.requests += stable.requests;
    stableAll.errors += stable.errors;
  }
  return {
    result: "promoted",
    stage: 100,
    canaryRequests,
    canaryErrors,
    verdict: last as Verdict,
    elapsedMs: elapsedTotal,
  };
}

export interface SimulationSummary {
  runs: number;
  promoted: number;
  failed: number;
  inconclusive: number;
  meanCanaryRequestsBeforeFail: number;
  meanCanaryErrorsBeforeFail: number;
  meanMinutes: number;
}

export function simulateMany(config: SimulationConfig, runs: number, seed: number): SimulationSummary {
  const random = seededRandom(seed);
  const outcomes = Array.from({ length: runs }, () => simulateRollout(config, random));
  const failed = outcomes.filter((o) => o.result === "failed");
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  return {
    runs,
    promoted: outcomes.filter((o) => o.result === "promoted").length,
    failed: failed.length,
    inconclusive: outcomes.filter((o) => o.result === "inconclusive").length,
    meanCanaryRequestsBeforeFail: mean(failed.map((o) => o.canaryRequests)),
    meanCanaryErrorsBeforeFail: mean(failed.map((o) => o.canaryErrors)),
    meanMinutes: mean(outcomes.map((o) => o.elapsedMs / 60_000)),
  };
}

/** Wald's SPRT average sample number, simulated per request (the design's reference figure). */
export function waldAsn(
  p: number,
  p0: number,
  p1: number,
  alpha: number,
  beta: number,
  runs: number,
  seed: number,
): number {
  const random = seededRandom(seed);
  const up = Math.log(p1 / p0);
  const down = Math.log((1 - p1) / (1 - p0));
  const a = Math.log((1 - beta) / alpha);
  const b = Math.log(beta / (1 - alpha));
  let total = 0;
  for (let r = 0; r < runs; r++) {
    let llr = 0;
    let n = 0;
    while (llr < a && llr > b) {
      n += 1;
      llr += random() < p ? up : down;
    }
    total += n;
  }
  return total / runs;
}

/**
 * The design's reference case: 100 req/s, stages 1/10/50/100, stable at 0.5 % errors, the limit at
 * 5 % (the SPRT's p1), budget 5 %, min-requests 100, durations 1m/10m, judged every second.
 */
export const REFERENCE_SETTINGS: SimulationConfig["settings"] = {
  maxErrorRate: 0.05,
  maxSlowFraction: 0.01,
  minRequests: 100,
  minStageDurationMs: 60_000,
  maxStageDurationMs: 600_000,
  beta: 0.05,
};
export const REFERENCE: Omit<SimulationConfig, "canaryErrorRate"> = {
  stages: [1, 10, 50, 100],
  requestsPerSecond: 100,
  stableErrorRate: 0.005,
  intervalMs: 1000,
  settings: REFERENCE_SETTINGS,
  budget: 0.05,
};
