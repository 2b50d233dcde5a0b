/**
 * How far the safety proof is (src/analysis/evidence.ts): the requests it still needs, by Wald's
 * approximation, for the judge's reasons and the near-limit rule.
 */
import type { SignalAssessment } from "./assessment.ts";
import { bernoulliKl } from "./likelihood.ts";

/**
 * Canary requests the safety proof would still need at the canary's observed rate (Wald's
 * approximation: the remaining log-evidence over the expected gain per request); Infinity when the
 * observed rate is not below the limit.
 */
export function requestsToProveSafe(assessment: SignalAssessment, beta: number): number {
  const target = Math.log(1 / beta);
  if (assessment.safeLogE >= target) return 0;
  const rate = Math.max(assessment.canaryRate, 1e-6);
  if (rate >= assessment.limit) return Number.POSITIVE_INFINITY;
  const gain = bernoulliKl(rate, assessment.limit);
  return Math.ceil((target - assessment.safeLogE) / gain);
}

/** Requests that prove a canary at half the limit below it (Wald's approximation, ln(1/β) / KL). */
export function requestsToProveHalfLimit(limit: number, beta: number): number {
  return Math.ceil(Math.log(1 / beta) / bernoulliKl(limit / 2, limit));
}
