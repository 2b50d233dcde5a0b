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
 *
 * The rules themselves, in the order asked, are in ./rules.ts.
 */
import { assessSignal, type SignalAssessment } from "./assessment.ts";
import type { Evidence } from "./evidence.ts";
import {
  earlierStageVerdict,
  harmRule,
  type Judging,
  lastStageVerdict,
  stepBackRule,
  unusableDataRule,
} from "./rules.ts";
import type { EvidenceSettings, JudgeSettings, VersionCounts } from "./types.ts";
import type { CheckInput, SignalReport, Verdict } from "./verdict.ts";

export type { CheckInput, Decision, Observation, SignalReport, Verdict } from "./verdict.ts";

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

function signalReport(assessment: SignalAssessment, alpha: number, beta: number): SignalReport {
  return {
    signal: assessment.signal,
    canaryBad: assessment.bad,
    canaryRequests: assessment.requests,
    canaryRate: assessment.canaryRate,
    ...(assessment.stableRate !== undefined ? { stableRate: assessment.stableRate } : {}),
    ...(assessment.pairedCanaryRate !== undefined ? { pairedCanaryRate: assessment.pairedCanaryRate } : {}),
    p1: assessment.limit,
    p0: assessment.stableRate ?? 0,
    llr: Math.max(assessment.absLogE, assessment.relLogE),
    absLogE: assessment.absLogE,
    relLogE: assessment.relLogE,
    safeLogE: assessment.safeLogE,
    boundaries: { reject: Math.log(1 / alpha), accept: -Math.log(1 / beta) },
    alpha,
  };
}

export function judgeCheck(input: CheckInput, settings: JudgeSettings): Verdict {
  const { observation } = input;
  const atMax = input.elapsedMs >= settings.maxStageDurationMs;
  if (!observation.ok) {
    return {
      decision: atMax ? "inconclusive" : "continue",
      rule: "metrics-error",
      reason: `Prometheus could not be read (${observation.problem}): ${observation.message}`,
      signals: [],
    };
  }
  const { canary, stable } = observation;
  const alpha = harmAlpha(settings);
  const list = assessments(input.evidence, settings);
  const signals = list.map((assessment) => signalReport(assessment, alpha, settings.beta));
  const judging: Judging = {
    input,
    settings,
    canary,
    stable,
    partial: [...observation.partial, ...(observation.partialLatency ?? [])],
    assessments: list,
    alpha,
    atMax,
    base: { canary, stable, signals, split: splitCheck(input.weight, canary, stable) },
  };
  return (
    stepBackRule(judging) ??
    harmRule(judging) ??
    unusableDataRule(judging) ??
    (input.final ? lastStageVerdict(judging) : earlierStageVerdict(judging))
  );
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
  const canaryRequests = canary?.requests ?? 0;
  const total = canaryRequests + (stable?.requests ?? 0);
  if (total === 0) return undefined;
  const expectedShare = weight / 100;
  const observedShare = canaryRequests / total;
  const sd = Math.sqrt((expectedShare * (1 - expectedShare)) / total);
  // At 0 % or 100 % any other share is impossible by chance: infinitely far, on its own side.
  const zScore =
    sd > 0
      ? (observedShare - expectedShare) / sd
      : observedShare === expectedShare
        ? 0
        : Math.sign(observedShare - expectedShare) * Number.POSITIVE_INFINITY;
  return { weight, observedShare, zScore };
}
