/**
 * What the judge reads and what it says: the observation, one check's input, and the verdict with
 * its numbers. Types only, below the judge and its rules so that both can use them.
 */
import type { Evidence } from "./evidence.ts";
import type { VersionCounts } from "./types.ts";

export type Decision = "continue" | "pass" | "fail" | "inconclusive";

/** What the metrics side saw. `undefined` counts: the backend has no series for that version. */
export type Observation =
  | {
      ok: true;
      canary?: VersionCounts;
      stable?: VersionCounts;
      /**
       * Stable's counts through each series' latest sample, past the instant both versions were
       * counted up to (each increment that straddles it in full): what stable saw just after the
       * window, to tell the window at an incident's edge (see src/analysis/evidence.ts).
       */
      stableAhead?: VersionCounts;
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
  /**
   * The stage before the last at 100 %: the last one with stable serving beside the canary. It holds
   * longer than min-stage-duration (see the rules' LAST_BESIDE_STABLE_HOLD).
   */
  lastBesideStable?: boolean;
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
   * The counts of the latest window alone (this read's increments): a harm verdict quotes them when
   * a change in the latest windows, not the rollout's whole rate, crossed the limit.
   */
  latest?: { canary: VersionCounts; stable?: VersionCounts };
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

/** The rule that decided a verdict, for machines and the report. */
export type Rule =
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
  | "stable-above-limit"
  /** A custom check in fail mode (issue 23; src/checks/). */
  | "custom-check";

export interface Verdict {
  decision: Decision;
  /** One sentence for people. */
  reason: string;
  /** The rule that decided, for machines and the report. */
  rule: Rule;
  canary?: VersionCounts;
  stable?: VersionCounts;
  signals: SignalReport[];
  /**
   * A harm verdict for a change in the canary's latest windows: its rate over the rollout is still
   * within the limit (or within the ratio to stable's), so the reason and the report lead with the
   * latest window rather than call that rate harmful.
   */
  late?: true;
  /** Observed canary share of requests in this stage, against the weight. */
  split?: { weight: number; observedShare: number; zScore: number };
}
