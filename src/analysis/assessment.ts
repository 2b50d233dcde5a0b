/**
 * What the evidence says of one signal (src/analysis/evidence.ts): each test's log e-value, the
 * rates, and the streak at 100 %, as the judge's rules read them.
 */
import { limitChangeLogE, limitChangeLogEWithLatest } from "./change-point.ts";
import type { SignalEvidence } from "./evidence.ts";
import { aboveLimitLogE, logMeanExp } from "./likelihood.ts";

/** The three tests' log e-values for one signal. */
export interface SignalAssessment {
  signal: "errors" | "latency";
  limit: number;
  /** Log e-value against "the canary's rate ≤ the limit" (clean windows; from whichever window a change began in). */
  absLogE: number;
  /**
   * The same test's mixture over the whole rollout's clean windows, from the first: a Bayes factor
   * for "above the limit" over all the canary's counts (what `on-inconclusive` asks).
   */
  absWholeLogE: number;
  /**
   * The larger harm e-value counting a change that began in the latest window too (S rather than
   * D, ./change-point.ts): what holds a stage as suspicious, which costs time, never a rollback.
   */
  suspicionLogE: number;
  /** Log e-value against "the canary's rate ≤ R·stable's" (from whichever window a change began in). */
  relLogE: number;
  /** Log e-value against "the canary's rate ≥ the limit" (the safety proof). */
  safeLogE: number;
  canaryRate: number;
  /** Stable's rate over the windows both versions served. */
  stableRate?: number;
  /** The canary's rate over those same windows. */
  pairedCanaryRate?: number;
  /** The canary's requests and bad requests (errors or slow) over every window. */
  requests: number;
  bad: number;
  aboveWindows: number;
  aboveMs: number;
  /**
   * Log e-value of the limit's mixture on the current streak alone (the latest windows with no
   * stable traffic that did not show the canary below the limit): what a step back from 100 % acts
   * on. It decides no rollback, so it needs no share of α.
   */
  streakLogE: number;
}

export function assessSignal(
  kind: "errors" | "latency",
  signal: SignalEvidence,
  limit: number,
): SignalAssessment {
  return {
    signal: kind,
    limit,
    absLogE: limitChangeLogE(signal.absCp, limit),
    absWholeLogE: aboveLimitLogE(signal.cleanN, signal.cleanK, limit),
    suspicionLogE: Math.max(
      limitChangeLogEWithLatest(signal.absCp, limit),
      signal.relCp && signal.relCp.s.length > 0 ? logMeanExp(signal.relCp.s) : 0,
    ),
    relLogE: signal.relCp && signal.relCp.d.length > 0 ? logMeanExp(signal.relCp.d) : 0,
    safeLogE: signal.safe,
    canaryRate: signal.n > 0 ? signal.k / signal.n : 0,
    ...(signal.pairedStableN > 0
      ? {
          stableRate: signal.pairedStableK / signal.pairedStableN,
          pairedCanaryRate: signal.pairedCanaryN > 0 ? signal.pairedCanaryK / signal.pairedCanaryN : 0,
        }
      : {}),
    requests: signal.n,
    bad: signal.k,
    aboveWindows: signal.aboveWindows,
    aboveMs: signal.aboveMs,
    streakLogE: aboveLimitLogE(signal.streakN, signal.streakK, limit),
  };
}
