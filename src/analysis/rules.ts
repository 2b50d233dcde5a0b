/**
 * The judge's rules, in the order it asks them (src/analysis/judge.ts): step back, harm, unusable
 * data, then the rules of a stage below the last or of the last. Each returns a verdict when it
 * decides, or undefined to let the next one speak. The reasons are sentences for people.
 */
import type { SignalAssessment } from "./assessment.ts";
import { requestsToProveHalfLimit, requestsToProveSafe } from "./proof.ts";
import type { JudgeSettings, VersionCounts } from "./types.ts";
import type { CheckInput, Rule, Verdict } from "./verdict.ts";
import { evidenceWords, pct } from "./words.ts";

/** One check as the rules see it: the input and what every rule needs, computed once. */
export interface Judging {
  input: CheckInput;
  settings: JudgeSettings;
  canary: VersionCounts | undefined;
  stable: VersionCounts | undefined;
  /** Partial-data warnings, the latency histogram's included. */
  partial: readonly string[];
  /** Each signal's three tests: errors first, then latency when it is judged. */
  assessments: readonly SignalAssessment[];
  /** α of each harm test. */
  alpha: number;
  /** At max-stage-duration: no rule may ask for more time. */
  atMax: boolean;
  /** What every verdict of this check carries: the counts, each signal's numbers, the split. */
  base: Pick<Verdict, "canary" | "stable" | "signals" | "split">;
}

type RuleVerdict = Verdict | undefined;

/**
 * Below the last stage, a canary whose harm evidence reached this log e-value (e ≈ 2.7, far from
 * 1/α) is held at its weight instead of moving on, until the evidence fades or max-stage-duration:
 * a bad canary is then caught at the lower weight, at a fraction of the errors. Holding never rolls
 * back, so it costs no false rollbacks, only time.
 */
const SUSPICION_LOG_E = 1;

/** With no stable traffic to compare, harm by the limit must last this long (a blip does not count). */
const PERSISTENCE_MS = 60_000;

/**
 * A stage's first read may still count requests from before its weight change (Prometheus' samples
 * lag the change by up to a scrape interval), so "no canary traffic" is concluded from the third
 * read on.
 */
const CHECKS_BEFORE_NO_TRAFFIC = 3;

/** Expected canary requests that make "none arrived" a safe conclusion (e^-20: never by chance). */
const EXPECTED_CANARY_REQUESTS_FOR_NO_TRAFFIC = 20;

/**
 * The stage before 100 % lasts this many times min-stage-duration. It is the last stage where stable
 * serves beside the canary: a canary going bad there is caught against stable in a read or two, at
 * part of the traffic; at 100 % it is caught only by stepping back (a read at full traffic, the step
 * back, settle-time, a judgement beside stable), which costs several times the errors. Half a stage
 * more there costs a healthy canary half a minute at the defaults (npm run bench, the degrading row).
 */
const LAST_BESIDE_STABLE_HOLD = 1.5;

/** How long a stage below the last lasts at least: min-stage-duration, or the hold before 100 %. */
export function stageMinimumMs(
  settings: { minStageDurationMs: number; maxStageDurationMs: number },
  lastBesideStable: boolean,
): number {
  return lastBesideStable
    ? Math.min(settings.minStageDurationMs * LAST_BESIDE_STABLE_HOLD, settings.maxStageDurationMs)
    : settings.minStageDurationMs;
}

/** A canary's rate this close to its limit, unproven over enough requests, is not promoted. */
const NEAR_LIMIT = 0.9;

/** The signal's name for people. */
function measured(signal: "errors" | "latency", settings: JudgeSettings): string {
  return signal === "errors"
    ? "error rate"
    : `share of requests slower than ${settings.latencyThresholdMs} ms`;
}

function verdict(judging: Judging, decision: Verdict["decision"], rule: Rule, reason: string): Verdict {
  return { ...judging.base, decision, rule, reason };
}

/**
 * With no stable traffic to compare, a streak above the limit that is strong on its own steps back
 * at once (before the harm tests, and before the streak has to persist): the step back rolls
 * nothing back, so it needs no share of α, and stable then judges the canary.
 */
export function stepBackRule(judging: Judging): RuleVerdict {
  const { input, settings } = judging;
  const reject = Math.log(1 / judging.alpha);
  const streak = judging.assessments.find(
    (assessment) => assessment.streakLogE >= reject || assessment.absLogE >= reject,
  );
  if (input.stableServed || input.stepBackTo === undefined || !streak || judging.atMax) return undefined;
  return verdict(
    judging,
    "continue",
    "step-back",
    `The canary's ${measured(streak.signal, settings)} is above the limit in the latest windows (${pct(streak.canaryRate)} over the rollout), with no stable traffic to compare: stepping back to ${input.stepBackTo} % so that stable serves beside it and shows whether everything is failing (an incident) or the canary alone`,
  );
}

/**
 * Harm needs no minimum: the e-value holds whenever it is reached, and a bad canary must go.
 * Partial data adds no window, so it can never convict on its own.
 */
export function harmRule(judging: Judging): RuleVerdict {
  const reject = Math.log(1 / judging.alpha);
  for (const assessment of judging.assessments) {
    if (assessment.relLogE >= reject) return harmVerdict(judging, assessment, false);
    if (assessment.absLogE >= reject) {
      const persists = assessment.aboveWindows >= 2 && assessment.aboveMs >= PERSISTENCE_MS;
      // At max-stage-duration proven harm rolls back whether or not it lasted a minute.
      if (judging.input.stableServed || persists || judging.atMax)
        return harmVerdict(judging, assessment, true);
      return verdict(
        judging,
        "continue",
        "persisting",
        `The canary's ${measured(assessment.signal, judging.settings)} is above the limit, with no stable traffic to compare: waiting to see whether it persists for ${PERSISTENCE_MS / 1000} s`,
      );
    }
  }
  return undefined;
}

/**
 * Why a harm test convicted, in numbers. The tests weigh the windows since a change began
 * (./change-point.ts): a canary that went bad after minutes of health is convicted while its rate
 * over the rollout is still within the limit, so the reason then leads with the latest window.
 */
function harmVerdict(judging: Judging, assessment: SignalAssessment, byLimit: boolean): Verdict {
  const { reason, late } = harmReason(judging, assessment, byLimit);
  const failed = verdict(judging, "fail", byLimit ? "harm-limit" : "harm-stable", reason);
  return late ? { ...failed, late } : failed;
}

function harmReason(
  judging: Judging,
  assessment: SignalAssessment,
  byLimit: boolean,
): { reason: string; late?: true } {
  const { settings, alpha } = judging;
  const what = measured(assessment.signal, settings);
  const latest = latestCounts(judging.input.latest, assessment.signal);
  const ratio = settings.maxRatioToStable;
  if (byLimit) {
    const reached = `${evidenceWords(assessment.absLogE)} ≥ 1/α = ${Math.round(1 / alpha)}`;
    const overall = `${pct(assessment.canaryRate)} (${assessment.bad} of ${assessment.requests})`;
    if (assessment.canaryRate > assessment.limit)
      return {
        reason: `The canary's ${what} is ${overall}, above the ${pct(assessment.limit)} limit: the evidence against "within the limit" reached ${reached}`,
      };
    const recent = latest ? `${pct(latest.canary.rate)} in the latest window (${latest.canary.words}), ` : "";
    return {
      reason: `The canary's ${what} went above the ${pct(assessment.limit)} limit in its latest windows: ${recent}${overall} over the rollout; the evidence of that change reached ${reached}`,
      late: true,
    };
  }
  const reached = `${evidenceWords(assessment.relLogE)} ≥ 1/α = ${Math.round(1 / alpha)}`;
  const canary = assessment.pairedCanaryRate ?? assessment.canaryRate;
  const stable = assessment.stableRate ?? 0;
  if (canary > ratio * stable)
    return {
      reason: `The canary's ${what} is ${pct(canary)} against stable's ${pct(stable)} at the same moments, more than ${ratio}× worse: the evidence reached ${reached}`,
    };
  const recent = latest?.stable
    ? `${pct(latest.canary.rate)} against stable's ${pct(latest.stable.rate)} in the latest window, `
    : "";
  return {
    reason: `The canary's ${what} became more than ${ratio}× stable's in its latest windows: ${recent}${pct(canary)} against ${pct(stable)} over the windows both served; the evidence of that change reached ${reached}`,
    late: true,
  };
}

interface WindowRate {
  rate: number;
  words: string;
}

/** The latest window's rate of the signal for each version, where it counted any requests. */
function latestCounts(
  latest: CheckInput["latest"],
  signal: "errors" | "latency",
): { canary: WindowRate; stable?: WindowRate } | undefined {
  const rate = (counts: VersionCounts | undefined): WindowRate | undefined => {
    const bad = signal === "errors" ? counts?.errors : counts?.slow;
    if (!counts || bad === undefined || counts.requests <= 0) return undefined;
    return { rate: bad / counts.requests, words: `${bad} of ${counts.requests}` };
  };
  const canary = rate(latest?.canary);
  if (!canary) return undefined;
  const stable = rate(latest?.stable);
  return stable ? { canary, stable } : { canary };
}

/** Data a stage never passes on: partial data, no series at all, or no canary traffic where some was due. */
export function unusableDataRule(judging: Judging): RuleVerdict {
  const { input, canary, stable, atMax } = judging;
  const waitOrGiveUp = atMax ? "inconclusive" : "continue";
  if (judging.partial.length > 0) {
    return verdict(
      judging,
      waitOrGiveUp,
      "partial-data",
      `Prometheus returned partial data (${judging.partial.join("; ")}); a stage never passes on it`,
    );
  }
  if (canary && canary.requests !== 0) return undefined;
  if (!canary && !stable) {
    return verdict(
      judging,
      waitOrGiveUp,
      "no-series",
      "Prometheus answers but has no series for either version since the weight change: no data (check reporter, canary-selector and stable-selector, and that Istio's metrics are scraped)",
    );
  }
  const { weight } = input;
  const expected = stable && weight < 100 ? (stable.requests * weight) / (100 - weight) : 0;
  const settled = (input.check ?? CHECKS_BEFORE_NO_TRAFFIC) >= CHECKS_BEFORE_NO_TRAFFIC;
  if (expected < EXPECTED_CANARY_REQUESTS_FOR_NO_TRAFFIC || !settled) return undefined;
  return verdict(
    judging,
    "inconclusive",
    "no-canary-traffic",
    `No traffic reached the canary: ${stable?.requests} stable requests at weight ${weight} predict about ${Math.round(expected)} canary requests, and Prometheus saw none (is the route applied to this traffic, are the canary pods in the mesh: with their sidecar, or in ambient mode served by a waypoint?)`,
  );
}

/** The error signal's rate, for a verdict's reason: "0.5 % (5 of 1000 …)". */
function errorRateWords(errors: SignalAssessment, counts: string): string {
  const stable = errors.stableRate !== undefined ? ` against ${pct(errors.stableRate)} for stable` : "";
  return `${pct(errors.canaryRate)} (${counts})${stable}`;
}

/**
 * A stage below the last moves on after min-stage-duration unless harm is shown, stable itself is
 * above the limit, or the canary is suspect: too little traffic is never a reason to hold.
 */
export function earlierStageVerdict(judging: Judging): Verdict {
  const { input, settings, atMax } = judging;
  const minimumMs = stageMinimumMs(settings, input.lastBesideStable === true);
  if (!(input.elapsedMs >= minimumMs))
    return verdict(judging, "continue", "min-duration", `No harm shown so far (${seconds(input.elapsedMs)})`);
  if (input.stableAboveLimit && !atMax) {
    return verdict(
      judging,
      "continue",
      "stable-above-limit",
      `Holding at ${input.weight} %: stable's own rate is above the limit right now (an incident everything shares); the canary's weight is not raised in it`,
    );
  }
  const suspect = judging.assessments.find((assessment) => assessment.suspicionLogE >= SUSPICION_LOG_E);
  if (suspect && !atMax) {
    return verdict(
      judging,
      "continue",
      "suspicious",
      `Holding at ${input.weight} %: some evidence that the canary's ${measured(suspect.signal, settings)} (${pct(suspect.canaryRate)}, ${suspect.bad} of ${suspect.requests}) is worse than allowed, not yet enough to decide`,
    );
  }
  const errors = judging.assessments[0] as SignalAssessment;
  return verdict(
    judging,
    "pass",
    "no-harm",
    `No harm shown: the canary's error rate is ${errorRateWords(errors, `${errors.bad} of ${errors.requests} over the rollout`)}`,
  );
}

const seconds = (ms: number): string => `${Math.round(ms / 1000)} s`;

/**
 * The last stage promotes once the safety proof holds, min-requests and min-stage-duration are met;
 * until max-stage-duration it waits for them, and then the verdict is inconclusive.
 */
export function lastStageVerdict(judging: Judging): Verdict {
  const { input, settings } = judging;
  const longEnough = input.elapsedMs >= settings.minStageDurationMs;
  const proofLevel = Math.log(1 / settings.beta);
  const proven = judging.assessments.every((assessment) => assessment.safeLogE >= proofLevel);
  const total = input.evidence.errors.n;
  const enough = total >= settings.minRequests;
  if (proven && enough && longEnough) {
    const errors = judging.assessments[0] as SignalAssessment;
    return verdict(
      judging,
      "pass",
      "proven-safe",
      `The canary is within the limits: its error rate is ${errorRateWords(errors, `${errors.bad} of ${errors.requests}`)}, and the evidence that it is below ${pct(errors.limit)} reached 1/β = ${Math.round(1 / settings.beta)}${judging.assessments.length > 1 ? "; the same for latency" : ""}`,
    );
  }
  if (!judging.atMax) {
    const rule = !longEnough ? "min-duration" : !enough ? "min-requests" : "waiting";
    const reason = !enough
      ? `Waiting for ${settings.minRequests} canary requests (${total} so far)`
      : !longEnough
        ? `No harm shown so far (${seconds(input.elapsedMs)})`
        : "No harm shown; gathering the evidence that the canary is within the limits";
    return verdict(judging, "continue", rule, reason);
  }
  const refused = notPromotable(judging);
  if (refused) return { ...judging.base, decision: "inconclusive", ...refused };
  return verdict(judging, "inconclusive", "max-duration", maxDurationReason(judging, total, enough));
}

/** Why max-stage-duration came without a proof: too few requests, or how long a proof would take. */
function maxDurationReason(judging: Judging, total: number, enough: boolean): string {
  const { input, settings } = judging;
  if (!enough)
    return `No harm shown, but only ${total} canary requests by max-stage-duration, fewer than min-requests (${settings.minRequests})`;
  const slowest = judging.assessments
    .map((assessment) => ({ assessment, needed: requestsToProveSafe(assessment, settings.beta) }))
    .sort((x, y) => y.needed - x.needed)[0] as { assessment: SignalAssessment; needed: number };
  const rate = input.elapsedMs > 0 ? ((judging.canary?.requests ?? 0) * 1000) / input.elapsedMs : 0;
  const howLong =
    Number.isFinite(slowest.needed) && rate > 0
      ? `about ${slowest.needed} more canary requests (${Math.ceil(slowest.needed / rate / 60)} min at the observed ${rate.toFixed(rate < 10 ? 1 : 0)} req/s)`
      : "more requests than the canary's observed rate allows";
  const { assessment } = slowest;
  return `No harm shown in ${assessment.requests} canary requests (${measured(assessment.signal, settings)} ${pct(assessment.canaryRate)}), but showing it is below the ${pct(assessment.limit)} limit takes ${howLong}`;
}

/**
 * At max-stage-duration without proof or harm: the rule that keeps `on-inconclusive: promote` from
 * promoting this canary, if one applies.
 */
function notPromotable(judging: Judging): { rule: "near-limit" | "above-limit"; reason: string } | undefined {
  const { settings } = judging;
  const proofLevel = Math.log(1 / settings.beta);
  // Enough requests to prove a canary at half the limit safe, no proof, and a rate within 10 % of
  // the limit or above it: not too little traffic, but a canary at the limit the user set as the
  // rate that must trigger a rollback.
  const nearLimit = judging.assessments.find(
    (assessment) =>
      !(assessment.safeLogE >= proofLevel) &&
      assessment.requests >= requestsToProveHalfLimit(assessment.limit, settings.beta) &&
      assessment.canaryRate >= NEAR_LIMIT * assessment.limit,
  );
  if (nearLimit)
    return {
      rule: "near-limit",
      reason: `Not shown within the limit in ${nearLimit.requests} canary requests, enough to show a canary at half the limit: its ${measured(nearLimit.signal, settings)} is ${pct(nearLimit.canaryRate)} against the ${pct(nearLimit.limit)} limit`,
    };
  // However little traffic: a canary whose own counts favour "above the limit" over "at the limit"
  // (the limit's mixture e-value at least 1, a Bayes factor) is not promoted without proof. At
  // 1 req/s this stops a 3 % canary that a 10-minute stage could not convict, and leaves a healthy
  // one alone (its counts favour the limit or below).
  const aboveLimit = judging.assessments.find(
    (assessment) =>
      assessment.requests > 0 && assessment.absWholeLogE >= 0 && !(assessment.safeLogE >= proofLevel),
  );
  if (aboveLimit)
    return {
      rule: "above-limit",
      reason: `Not shown within the limit, and the canary's own counts point above it: its ${measured(aboveLimit.signal, settings)} is ${pct(aboveLimit.canaryRate)} (${aboveLimit.bad} of ${aboveLimit.requests}) against the ${pct(aboveLimit.limit)} limit (the evidence for "above the limit" is ${evidenceWords(aboveLimit.absWholeLogE)}, short of 1/α)`,
    };
  return undefined;
}
