/**
 * The canary judge: pure, counts in, verdict out, with the numbers why.
 *
 * One sequential test per signal and stage (see docs/analysis.md):
 *   H0: the canary's bad-request rate is the stable version's (p0, the stable's observed rate,
 *       kept within [p1/10, p1/2]);
 *   H1: the canary's rate is the limit p1 (max-error-rate; for latency, 1 % slower than the
 *       threshold, i.e. the p99 is past it).
 * `fail` as soon as the likelihood ratio reaches 1/α (α: this stage's share of the false-rollback
 * budget, halved again when two signals are tested). Because the boundary between the two
 * hypotheses sits between p0 and p1, a canary clearly worse than the stable version fails even
 * below the limit. `pass` needs the acceptance boundary AND min-requests AND min-stage-duration AND
 * complete data. Anything else is `continue` until max-stage-duration, then `inconclusive` with the
 * reason.
 */
import { bernoulliLlr, boundaries, requestsToAccept, type SprtBoundaries } from "./sprt.ts";

export type Decision = "continue" | "pass" | "fail" | "inconclusive";

/** Exact counts for one version over the analysis window. */
export interface VersionCounts {
  requests: number;
  /** 5xx, no response (code 0), and gRPC errors. */
  errors: number;
  /** Requests slower than the latency threshold, when one is set. */
  slow?: number;
}

/** What the metrics side saw. `undefined` counts: Prometheus has no series for that version. */
export type Observation =
  | {
      ok: true;
      canary?: VersionCounts;
      stable?: VersionCounts;
      /** Prometheus warnings or unusable values: the data may be partial. */
      partial: readonly string[];
    }
  | {
      ok: false;
      /** unreachable, timeout, bad_query, execution, bad_response */
      problem: string;
      message: string;
    };

export interface JudgeSettings {
  maxErrorRate: number;
  latencyThresholdMs?: number;
  /** Fraction of canary requests allowed past the latency threshold (0.01: the p99). */
  maxSlowFraction: number;
  minRequests: number;
  minStageDurationMs: number;
  maxStageDurationMs: number;
  /** This stage's share of the false-rollback budget. */
  alpha: number;
  /** Chance a stage accepts a canary whose rate is at the limit. */
  beta: number;
}

export interface StageInput {
  /** Canary weight of this stage, in percent. */
  weight: number;
  /** Time since the analysis window began (after the settle time). */
  elapsedMs: number;
  observation: Observation;
  /**
   * Stable counts to take the baseline rate from: this stage's, plus earlier stages' when the stable
   * version carries little or no traffic (at weight 100 it carries none).
   */
  stableBaseline?: VersionCounts;
}

export interface SignalEvidence {
  signal: "errors" | "latency";
  canaryBad: number;
  canaryRequests: number;
  canaryRate: number;
  stableRate?: number;
  p0: number;
  p1: number;
  llr: number;
  boundaries: SprtBoundaries;
  alpha: number;
}

export interface Verdict {
  decision: Decision;
  /** One sentence for people. */
  reason: string;
  /** The rule that decided, for machines and the report. */
  rule:
    | "sprt-reject"
    | "sprt-accept"
    | "waiting"
    | "min-requests"
    | "min-duration"
    | "partial-data"
    | "metrics-error"
    | "no-canary-traffic"
    | "no-series"
    | "max-duration";
  canary?: VersionCounts;
  stable?: VersionCounts;
  signals: SignalEvidence[];
  /** Observed canary share of requests in this window, against the weight. */
  split?: { weight: number; observedShare: number; zScore: number };
}

const pct = (x: number): string => `${(x * 100).toFixed(x < 0.001 && x > 0 ? 3 : 2).replace(/\.?0+$/, "")} %`;

/** Expected canary requests that make "none arrived" a safe conclusion (e^-20: never by chance). */
const EXPECTED_CANARY_REQUESTS_FOR_NO_TRAFFIC = 20;

function signal(
  kind: SignalEvidence["signal"],
  canaryBad: number,
  canaryRequests: number,
  stableBad: number | undefined,
  stableRequests: number | undefined,
  p1: number,
  alpha: number,
  beta: number,
): SignalEvidence {
  const stableRate = stableRequests ? (stableBad ?? 0) / stableRequests : undefined;
  // The null is the stable version's observed rate (it carries most traffic, so the estimate is
  // tight), but never below p1/10, so that one stray canary error cannot decide (it moves the
  // statistic by at most ln 10 while the boundary is ln(1/α) ≥ 3), and never above p1/2, so the
  // two hypotheses stay separable.
  const observed = stableRequests ? (stableBad ?? 0) / stableRequests : p1 / 2;
  const p0 = Math.min(Math.max(observed, p1 / 10), p1 / 2);
  return {
    signal: kind,
    canaryBad,
    canaryRequests,
    canaryRate: canaryRequests ? canaryBad / canaryRequests : 0,
    stableRate,
    p0,
    p1,
    llr: bernoulliLlr(canaryRequests, canaryBad, p0, p1),
    boundaries: boundaries(alpha, beta),
    alpha,
  };
}

export function judgeStage(input: StageInput, settings: JudgeSettings): Verdict {
  const { observation, elapsedMs, weight } = input;
  const atMax = elapsedMs >= settings.maxStageDurationMs;
  const mins = `${Math.round(elapsedMs / 1000)} s`;

  if (!observation.ok) {
    return {
      decision: atMax ? "inconclusive" : "continue",
      rule: "metrics-error",
      reason: `Prometheus could not be read (${observation.problem}): ${observation.message}`,
      signals: [],
    };
  }

  const { canary, stable } = observation;
  const baseline = input.stableBaseline ?? stable;
  const split = splitCheck(weight, canary, stable);

  const partial = (): Verdict => ({
    decision: atMax ? "inconclusive" : "continue",
    rule: "partial-data",
    reason: `Prometheus returned partial data (${observation.partial.join("; ")}); a stage never passes on it`,
    canary,
    stable,
    signals: [],
    split,
  });

  if (!canary || canary.requests === 0) {
    if (observation.partial.length > 0) return partial();
    if (!canary && !stable) {
      return {
        decision: atMax ? "inconclusive" : "continue",
        rule: "no-series",
        reason:
          "Prometheus has no series for either version: the query matches nothing (check reporter, canary-selector and stable-selector) or Istio's metrics are not scraped",
        signals: [],
      };
    }
    const expected = stable && weight < 100 ? (stable.requests * weight) / (100 - weight) : 0;
    if (expected >= EXPECTED_CANARY_REQUESTS_FOR_NO_TRAFFIC || (atMax && weight === 100)) {
      return {
        decision: "inconclusive",
        rule: "no-canary-traffic",
        reason:
          weight < 100
            ? `No traffic reached the canary: ${stable?.requests} stable requests at weight ${weight} predict about ${Math.round(expected)} canary requests, and Prometheus saw none (is the VirtualService applied, do the canary pods have their istio-proxy sidecar?)`
            : `No traffic reached the canary in ${mins} at weight 100`,
        stable,
        signals: [],
        split,
      };
    }
    return {
      decision: atMax ? "inconclusive" : "continue",
      rule: atMax ? "no-canary-traffic" : "waiting",
      reason: atMax ? `No traffic reached the canary in ${mins}` : "Waiting for the canary's first requests",
      stable,
      signals: [],
      split,
    };
  }

  const testsLatency = settings.latencyThresholdMs !== undefined && canary.slow !== undefined;
  const alpha = testsLatency ? settings.alpha / 2 : settings.alpha;
  const signals = [
    signal(
      "errors",
      canary.errors,
      canary.requests,
      baseline?.errors,
      baseline?.requests,
      settings.maxErrorRate,
      alpha,
      settings.beta,
    ),
  ];
  if (testsLatency) {
    signals.push(
      signal(
        "latency",
        canary.slow ?? 0,
        canary.requests,
        baseline?.slow,
        baseline?.requests,
        settings.maxSlowFraction,
        alpha,
        settings.beta,
      ),
    );
  }
  const base = { canary, stable, signals, split };

  // Failing needs no minimum: the boundary holds whenever it is reached, and a bad canary must go.
  // Partial data cannot acquit, but the counts it does show are real and can convict.
  const rejected = signals.find((s) => s.llr >= s.boundaries.reject);
  if (rejected) {
    const what =
      rejected.signal === "errors"
        ? "error rate"
        : `share of requests slower than ${settings.latencyThresholdMs} ms`;
    const versus = rejected.stableRate !== undefined ? ` against ${pct(rejected.stableRate)} for stable` : "";
    return {
      ...base,
      decision: "fail",
      rule: "sprt-reject",
      reason: `The canary's ${what} is ${pct(rejected.canaryRate)} (${rejected.canaryBad} of ${rejected.canaryRequests})${versus}: the evidence that it is at the ${pct(rejected.p1)} limit rather than stable's ${pct(rejected.p0)} passed 1/α (α = ${pct(rejected.alpha)})`,
    };
  }

  if (observation.partial.length > 0) return { ...partial(), signals };

  const accepted = signals.every((s) => s.llr <= s.boundaries.accept);
  const enoughRequests = canary.requests >= settings.minRequests;
  const longEnough = elapsedMs >= settings.minStageDurationMs;
  if (accepted && enoughRequests && longEnough) {
    const e = signals[0] as SignalEvidence;
    return {
      ...base,
      decision: "pass",
      rule: "sprt-accept",
      reason: `The canary's error rate is ${pct(e.canaryRate)} (${e.canaryBad} of ${e.canaryRequests})${e.stableRate !== undefined ? ` against ${pct(e.stableRate)} for stable` : ""}: the evidence favours stable's rate over the ${pct(e.p1)} limit`,
    };
  }

  if (!atMax) {
    const rule = !enoughRequests ? "min-requests" : !longEnough ? "min-duration" : "waiting";
    const reason = !enoughRequests
      ? `Waiting for ${settings.minRequests} canary requests (${canary.requests} so far)`
      : !longEnough
        ? `Waiting for the minimum stage duration (${mins} so far)`
        : "Not enough evidence yet either way";
    return { ...base, decision: "continue", rule, reason };
  }

  const undecided = signals.find((s) => s.llr > s.boundaries.accept) ?? (signals[0] as SignalEvidence);
  const needed = requestsToAccept(undecided.p0, undecided.p1, undecided.boundaries);
  const reason = !enoughRequests
    ? `Too little traffic: ${canary.requests} canary requests by max-stage-duration, fewer than min-requests (${settings.minRequests})`
    : `Undecided after ${canary.requests} canary requests: telling stable's ${pct(undecided.p0)} from the ${pct(undecided.p1)} limit takes about ${Number.isFinite(needed) ? needed : "unbounded"} requests (raise the limit, lengthen max-stage-duration or start at a larger weight)`;
  return { ...base, decision: "inconclusive", rule: "max-duration", reason };
}

/**
 * Is the canary's share of requests what its weight predicts? A z-score of the observed share
 * against the binomial expectation; |z| > 5 is far outside chance.
 */
export function splitCheck(
  weight: number,
  canary: VersionCounts | undefined,
  stable: VersionCounts | undefined,
): Verdict["split"] | undefined {
  const c = canary?.requests ?? 0;
  const total = c + (stable?.requests ?? 0);
  if (total === 0) return undefined;
  const p = weight / 100;
  const observedShare = c / total;
  const sd = Math.sqrt((p * (1 - p)) / total);
  const zScore = sd > 0 ? (observedShare - p) / sd : observedShare === p ? 0 : Number.POSITIVE_INFINITY;
  return { weight, observedShare, zScore };
}
