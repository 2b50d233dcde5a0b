/**
 * The analysis' shared types, at the bottom of src/analysis/: the counts it judges and its settings.
 * The settings keep the inputs' names (max-error-rate is maxErrorRate, max-ratio-to-stable is
 * maxRatioToStable); src/action.ts builds them once from the Config and the engine hands them down
 * whole, adding only what is not an input.
 */

/** Exact counts for one version over a span of time. */
export interface VersionCounts {
  requests: number;
  /** 5xx, no response (code 0), and gRPC errors. */
  errors: number;
  /** Requests slower than the latency threshold, when one is set. */
  slow?: number;
}

/** The analysis inputs, as the action's inputs name them. */
export interface AnalysisSettings {
  /** max-error-rate. */
  maxErrorRate: number;
  /** latency-threshold; unset: latency is not judged. */
  latencyThresholdMs?: number;
  /** max-ratio-to-stable: how much worse than stable's rate the canary may be. */
  maxRatioToStable: number;
  /** min-requests: canary requests, over the whole rollout, before the last stage can promote. */
  minRequests: number;
  /** false-rollback-budget: the whole rollout's, split evenly across the harm tests. */
  falseRollbackBudget: number;
  /** min-stage-duration. */
  minStageDurationMs: number;
  /** max-stage-duration. */
  maxStageDurationMs: number;
}

/** What the judge needs: the analysis inputs and the two error rates that are not inputs. */
export interface JudgeSettings extends AnalysisSettings {
  /** Fraction of canary requests allowed past the latency threshold (0.01: the p99). */
  maxSlowFraction: number;
  /** Chance of promoting a canary whose rate is at a limit. */
  beta: number;
}

/** What the evidence needs of the judge's settings, with ln(1/α) of the harm tests. */
export type EvidenceSettings = Pick<
  JudgeSettings,
  "maxErrorRate" | "maxSlowFraction" | "maxRatioToStable"
> & {
  /** ln(1/α) of the harm tests: a blip is forgiven only after the limit's test rejected on it. */
  harmLogE: number;
};
