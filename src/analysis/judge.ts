/**
 * The canary judge: pure, evidence in, verdict out, with the numbers why (see docs/analysis.md).
 *
 * - `fail` as soon as a harm test's e-value reaches 1/α (src/analysis/evidence.ts): the canary is
 *   clearly above max-error-rate (in windows where stable was within it), or clearly worse than
 *   max-ratio-to-stable times stable's rate at the same moments. Where stable serves nothing (weight
 *   100) a harm by the limit must also persist: the canary above the limit in every window of the
 *   last minute, so a blip that hits everything (a dependency's incident) does not roll back.
 * - A stage below the last moves on after min-stage-duration unless harm is shown: too little
 *   traffic is never a reason to hold or roll back.
 * - The last stage promotes once the safety proof (the canary's rate below each limit, at 1/β)
 *   holds, min-requests and min-stage-duration are met, and the data is complete. At
 *   max-stage-duration without proof or harm the verdict is `inconclusive` (rule max-duration) and
 *   on-inconclusive decides; the reason says how long a proof would take at the observed rate.
 */
import {
  assessSignal,
  type Evidence,
  requestsToProveHalfLimit,
  requestsToProveSafe,
  type SignalAssessment,
} from "./evidence.ts";
import type { EvidenceSettings, JudgeSettings, VersionCounts } from "./types.ts";

export type Decision = "continue" | "pass" | "fail" | "inconclusive";

/** What the metrics side saw. `undefined` counts: the backend has no series for that version. */
export type Observation =
  | {
      ok: true;
      canary?: VersionCounts;
      stable?: VersionCounts;
      /** Warnings or unusable values: the data may be partial. */
      partial: readonly string[];
      /** The same for the latency histogram only: errors still count, latency does not. */
      partialLatency?: readonly string[];
    }
  | {
      ok: false;
      /** unreachable, timeout, bad_query, execution, bad_response */
      problem: string;
      message: string;
    };

export interface CheckInput {
  /** Canary weight of this stage, in percent. */
  weight: number;
  /** Whether this is the last stage (promotion follows a pass). */
  final: boolean;
  /** Time since this stage's weight change. */
  elapsedMs: number;
  /** Counts since this stage's weight change (for the report and the split check). */
  observation: Observation;
  /** The canary version's evidence, this check's window included. */
  evidence: Evidence;
  /** Whether stable served requests in the latest window. */
  stableServed: boolean;
  /** Reads so far in this stage, this one included. */
  check?: number;
  /**
   * Stable's rate in the latest window was above the limit over enough requests to mean it (an
   * incident everything shares): a stage below the last does not move on in it.
   */
  stableAboveLimit?: boolean;
  /**
   * With no stable traffic (weight 100): the weight to step back to when the limit's test rejects,
   * so that stable serves beside the canary and tells a canary gone bad from an incident everything
   * shares. Undefined: no step back is left, and the harm must persist instead.
   */
  stepBackTo?: number;
}

/** One signal's numbers, for people and for the report. */
export interface SignalReport {
  signal: "errors" | "latency";
  canaryBad: number;
  canaryRequests: number;
  canaryRate: number;
  /** Stable's rate over the windows both versions served. */
  stableRate?: number;
  /** The canary's rate over those same windows. */
  pairedCanaryRate?: number;
  /** The limit. */
  p1: number;
  /** Stable's rate (0 when stable served nothing yet). */
  p0: number;
  /** The larger of the two harm tests' log e-values. */
  llr: number;
  absLogE: number;
  relLogE: number;
  safeLogE: number;
  /** reject: ln(1/α) of each harm test; accept: −ln(1/β), the safety proof's level (negated). */
  boundaries: { reject: number; accept: number };
  alpha: number;
}

export interface Verdict {
  decision: Decision;
  /** One sentence for people. */
  reason: string;
  /** The rule that decided, for machines and the report. */
  rule:
    | "harm-limit"
    | "harm-stable"
    | "persisting"
    | "proven-safe"
    | "no-harm"
    | "suspicious"
    | "waiting"
    | "min-requests"
    | "min-duration"
    | "partial-data"
    | "metrics-error"
    | "no-canary-traffic"
    | "no-series"
    | "max-duration"
    | "near-limit"
    | "above-limit"
    | "step-back"
    | "stable-above-limit";
  canary?: VersionCounts;
  stable?: VersionCounts;
  signals: SignalReport[];
  /** Observed canary share of requests in this stage, against the weight. */
  split?: { weight: number; observedShare: number; zScore: number };
}

export const pct = (x: number): string =>
  `${(x * 100).toFixed(x < 0.001 && x > 0 ? 3 : 2).replace(/\.?0+$/, "")} %`;

/**
 * Below the last stage, a canary whose harm evidence reached this log e-value (e ≈ 2.7, far from
 * 1/α) is held at its weight instead of moving on, until the evidence fades or max-stage-duration:
 * a bad canary is then caught at the lower weight, at a fraction of the errors. Holding never rolls
 * back, so it costs no false rollbacks, only time.
 */
const SUSPICION_LOG_E = 1;

/** With no stable traffic to compare, harm by the limit must last this long (a blip does not count). */
export const PERSISTENCE_MS = 60_000;

/**
 * A stage's first read may still count requests from before its weight change (Prometheus' samples
 * lag the change by up to a scrape interval), so "no canary traffic" is concluded from the third
 * read on.
 */
const CHECKS_BEFORE_NO_TRAFFIC = 3;

/** Expected canary requests that make "none arrived" a safe conclusion (e^-20: never by chance). */
const EXPECTED_CANARY_REQUESTS_FOR_NO_TRAFFIC = 20;

/** α of each harm test: the budget split evenly over two tests per signal (a union bound). */
export function harmAlpha(settings: JudgeSettings): number {
  const signals = settings.latencyThresholdMs !== undefined ? 2 : 1;
  return settings.falseRollbackBudget / (2 * signals);
}

/** What the evidence needs of the settings. */
export function evidenceSettings(settings: JudgeSettings): EvidenceSettings {
  return { ...settings, harmLogE: Math.log(1 / harmAlpha(settings)) };
}

function assessments(evidence: Evidence, settings: JudgeSettings): SignalAssessment[] {
  const list = [assessSignal("errors", evidence.errors, settings.maxErrorRate)];
  if (evidence.latency) list.push(assessSignal("latency", evidence.latency, settings.maxSlowFraction));
  return list;
}

function report(a: SignalAssessment, alpha: number, beta: number): SignalReport {
  return {
    signal: a.signal,
    canaryBad: a.k,
    canaryRequests: a.n,
    canaryRate: a.canaryRate,
    ...(a.stableRate !== undefined ? { stableRate: a.stableRate } : {}),
    ...(a.pairedCanaryRate !== undefined ? { pairedCanaryRate: a.pairedCanaryRate } : {}),
    p1: a.limit,
    p0: a.stableRate ?? 0,
    llr: Math.max(a.absLogE, a.relLogE),
    absLogE: a.absLogE,
    relLogE: a.relLogE,
    safeLogE: a.safeLogE,
    boundaries: { reject: Math.log(1 / alpha), accept: -Math.log(1 / beta) },
    alpha,
  };
}

/** An e-value for people: "25", "1,200", "more than a million". */
function evidence(logE: number): string {
  return logE > Math.log(1e6) ? "more than a million" : Math.round(Math.exp(logE)).toLocaleString("en-US");
}

function what(signal: "errors" | "latency", settings: JudgeSettings): string {
  return signal === "errors"
    ? "error rate"
    : `share of requests slower than ${settings.latencyThresholdMs} ms`;
}

function harmReason(a: SignalAssessment, byLimit: boolean, settings: JudgeSettings, alpha: number): string {
  const counts = `${a.k} of ${a.n}`;
  if (byLimit) {
    return `The canary's ${what(a.signal, settings)} is ${pct(a.canaryRate)} (${counts}), above the ${pct(a.limit)} limit: the evidence against "within the limit" reached ${evidence(a.absLogE)} ≥ 1/α = ${Math.round(1 / alpha)}`;
  }
  return `The canary's ${what(a.signal, settings)} is ${pct(a.pairedCanaryRate ?? a.canaryRate)} against stable's ${pct(a.stableRate ?? 0)} at the same moments, more than ${settings.maxRatioToStable}× worse: the evidence reached ${evidence(a.relLogE)} ≥ 1/α = ${Math.round(1 / alpha)}`;
}

export function judgeCheck(input: CheckInput, settings: JudgeSettings): Verdict {
  const { observation, elapsedMs, weight } = input;
  const atMax = elapsedMs >= settings.maxStageDurationMs;
  const secs = `${Math.round(elapsedMs / 1000)} s`;

  if (!observation.ok) {
    return {
      decision: atMax ? "inconclusive" : "continue",
      rule: "metrics-error",
      reason: `Prometheus could not be read (${observation.problem}): ${observation.message}`,
      signals: [],
    };
  }

  const { canary, stable } = observation;
  const split = splitCheck(weight, canary, stable);
  const alpha = harmAlpha(settings);
  const list = assessments(input.evidence, settings);
  const signals = list.map((a) => report(a, alpha, settings.beta));
  const base = { canary, stable, signals, split };
  const reject = Math.log(1 / alpha);

  // With no stable traffic to compare, a streak above the limit that is strong on its own steps
  // back at once (before the harm tests, and before the streak has to persist): the step back
  // rolls nothing back, so it needs no share of α, and stable then judges the canary.
  const streak = list.find((a) => a.streakLogE >= reject || a.absLogE >= reject);
  if (!input.stableServed && input.stepBackTo !== undefined && streak && !atMax) {
    return {
      ...base,
      decision: "continue",
      rule: "step-back",
      reason: `The canary's ${what(streak.signal, settings)} is above the limit in the latest windows (${pct(streak.canaryRate)} over the rollout), with no stable traffic to compare: stepping back to ${input.stepBackTo} % so that stable serves beside it and shows whether everything is failing (an incident) or the canary alone`,
    };
  }
  // Harm needs no minimum: the e-value holds whenever it is reached, and a bad canary must go.
  // Partial data adds no window, so it can never convict on its own.
  for (const a of list) {
    if (a.relLogE >= reject)
      return {
        ...base,
        decision: "fail",
        rule: "harm-stable",
        reason: harmReason(a, false, settings, alpha),
      };
    if (a.absLogE >= reject) {
      const persists = a.aboveWindows >= 2 && a.aboveMs >= PERSISTENCE_MS;
      // At max-stage-duration proven harm rolls back whether or not it lasted a minute.
      if (input.stableServed || persists || atMax)
        return {
          ...base,
          decision: "fail",
          rule: "harm-limit",
          reason: harmReason(a, true, settings, alpha),
        };
      return {
        ...base,
        decision: "continue",
        rule: "persisting",
        reason: `The canary's ${what(a.signal, settings)} is above the limit, with no stable traffic to compare: waiting to see whether it persists for ${PERSISTENCE_MS / 1000} s`,
      };
    }
  }

  const partial = [...observation.partial, ...(observation.partialLatency ?? [])];
  if (partial.length > 0) {
    return {
      ...base,
      decision: atMax ? "inconclusive" : "continue",
      rule: "partial-data",
      reason: `Prometheus returned partial data (${partial.join("; ")}); a stage never passes on it`,
    };
  }

  if (!canary || canary.requests === 0) {
    if (!canary && !stable) {
      return {
        ...base,
        decision: atMax ? "inconclusive" : "continue",
        rule: "no-series",
        reason:
          "Prometheus answers but has no series for either version since the weight change: no data (check reporter, canary-selector and stable-selector, and that Istio's metrics are scraped)",
      };
    }
    const expected = stable && weight < 100 ? (stable.requests * weight) / (100 - weight) : 0;
    const settled = (input.check ?? CHECKS_BEFORE_NO_TRAFFIC) >= CHECKS_BEFORE_NO_TRAFFIC;
    if (expected >= EXPECTED_CANARY_REQUESTS_FOR_NO_TRAFFIC && settled) {
      return {
        ...base,
        decision: "inconclusive",
        rule: "no-canary-traffic",
        reason: `No traffic reached the canary: ${stable?.requests} stable requests at weight ${weight} predict about ${Math.round(expected)} canary requests, and Prometheus saw none (is the VirtualService applied to this traffic, do the canary pods have their istio-proxy sidecar?)`,
      };
    }
  }

  const longEnough = elapsedMs >= settings.minStageDurationMs;
  if (!input.final) {
    if (!longEnough)
      return {
        ...base,
        decision: "continue",
        rule: "min-duration",
        reason: `No harm shown so far (${secs})`,
      };
    if (input.stableAboveLimit && !atMax) {
      return {
        ...base,
        decision: "continue",
        rule: "stable-above-limit",
        reason: `Holding at ${weight} %: stable's own rate is above the limit right now (an incident everything shares); the canary's weight is not raised in it`,
      };
    }
    const suspect = list.find((a) => Math.max(a.absLogE, a.relLogE) >= SUSPICION_LOG_E);
    if (suspect && !atMax) {
      return {
        ...base,
        decision: "continue",
        rule: "suspicious",
        reason: `Holding at ${weight} %: some evidence that the canary's ${what(suspect.signal, settings)} (${pct(suspect.canaryRate)}, ${suspect.k} of ${suspect.n}) is worse than allowed, not yet enough to decide`,
      };
    }
    const e = list[0] as SignalAssessment;
    return {
      ...base,
      decision: "pass",
      rule: "no-harm",
      reason: `No harm shown: the canary's error rate is ${pct(e.canaryRate)} (${e.k} of ${e.n} over the rollout)${e.stableRate !== undefined ? ` against ${pct(e.stableRate)} for stable` : ""}`,
    };
  }

  const proofLevel = Math.log(1 / settings.beta);
  const proven = list.every((a) => a.safeLogE >= proofLevel);
  const total = input.evidence.errors.n;
  const enough = total >= settings.minRequests;
  if (proven && enough && longEnough) {
    const e = list[0] as SignalAssessment;
    return {
      ...base,
      decision: "pass",
      rule: "proven-safe",
      reason: `The canary is within the limits: its error rate is ${pct(e.canaryRate)} (${e.k} of ${e.n})${e.stableRate !== undefined ? ` against ${pct(e.stableRate)} for stable` : ""}, and the evidence that it is below ${pct(e.limit)} reached 1/β = ${Math.round(1 / settings.beta)}${list.length > 1 ? "; the same for latency" : ""}`,
    };
  }
  if (!atMax) {
    const rule = !longEnough ? "min-duration" : !enough ? "min-requests" : "waiting";
    const reason = !enough
      ? `Waiting for ${settings.minRequests} canary requests (${total} so far)`
      : !longEnough
        ? `No harm shown so far (${secs})`
        : "No harm shown; gathering the evidence that the canary is within the limits";
    return { ...base, decision: "continue", rule, reason };
  }
  const slowest = list
    .map((a) => ({ a, needed: requestsToProveSafe(a, settings.beta) }))
    .sort((x, y) => y.needed - x.needed)[0] as { a: SignalAssessment; needed: number };
  const rate = elapsedMs > 0 ? ((canary?.requests ?? 0) * 1000) / elapsedMs : 0;
  const howLong =
    Number.isFinite(slowest.needed) && rate > 0
      ? `about ${slowest.needed} more canary requests (${Math.ceil(slowest.needed / rate / 60)} min at the observed ${rate.toFixed(rate < 10 ? 1 : 0)} req/s)`
      : "more requests than the canary's observed rate allows";
  const refused = notPromotable(list, settings);
  if (refused) return { ...base, decision: "inconclusive", ...refused };
  const reason = !enough
    ? `No harm shown, but only ${total} canary requests by max-stage-duration, fewer than min-requests (${settings.minRequests})`
    : `No harm shown in ${slowest.a.n} canary requests (${what(slowest.a.signal, settings)} ${pct(slowest.a.canaryRate)}), but showing it is below the ${pct(slowest.a.limit)} limit takes ${howLong}`;
  return { ...base, decision: "inconclusive", rule: "max-duration", reason };
}

/** A canary's rate this close to its limit, unproven over enough requests, is not promoted. */
const NEAR_LIMIT = 0.9;

/**
 * At max-stage-duration without proof or harm: the rule that keeps `on-inconclusive: promote` from
 * promoting this canary, if one applies.
 */
function notPromotable(
  list: readonly SignalAssessment[],
  settings: JudgeSettings,
): { rule: "near-limit" | "above-limit"; reason: string } | undefined {
  const proofLevel = Math.log(1 / settings.beta);
  // Enough requests to prove a canary at half the limit safe, no proof, and a rate within 10 % of
  // the limit or above it: not too little traffic, but a canary at the limit the user set as the
  // rate that must trigger a rollback.
  const nearLimit = list.find(
    (a) =>
      !(a.safeLogE >= proofLevel) &&
      a.n >= requestsToProveHalfLimit(a.limit, settings.beta) &&
      a.canaryRate >= NEAR_LIMIT * a.limit,
  );
  if (nearLimit)
    return {
      rule: "near-limit",
      reason: `Not shown within the limit in ${nearLimit.n} canary requests, enough to show a canary at half the limit: its ${what(nearLimit.signal, settings)} is ${pct(nearLimit.canaryRate)} against the ${pct(nearLimit.limit)} limit`,
    };
  // However little traffic: a canary whose own counts favour "above the limit" over "at the limit"
  // (the limit's mixture e-value at least 1, a Bayes factor) is not promoted without proof. At
  // 1 req/s this stops a 3 % canary that a 10-minute stage could not convict, and leaves a healthy
  // one alone (its counts favour the limit or below).
  const aboveLimit = list.find((a) => a.n > 0 && a.absLogE >= 0 && !(a.safeLogE >= proofLevel));
  if (aboveLimit)
    return {
      rule: "above-limit",
      reason: `Not shown within the limit, and the canary's own counts point above it: its ${what(aboveLimit.signal, settings)} is ${pct(aboveLimit.canaryRate)} (${aboveLimit.k} of ${aboveLimit.n}) against the ${pct(aboveLimit.limit)} limit (the evidence for "above the limit" is ${evidence(aboveLimit.absLogE)}, short of 1/α)`,
    };
  return undefined;
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
  // At 0 % or 100 % any other share is impossible by chance: infinitely far, on its own side.
  const zScore =
    sd > 0
      ? (observedShare - p) / sd
      : observedShare === p
        ? 0
        : Math.sign(observedShare - p) * Number.POSITIVE_INFINITY;
  return { weight, observedShare, zScore };
}
