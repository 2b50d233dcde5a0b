/** What one simulated rollout ended with, whichever rule ran it. */
export interface RunOutcome {
  result: "promoted" | "rolled-back" | "paused" | "unfinished";
  /** Why a rollback happened: the analysis failed the canary, could not decide, or anything else. */
  cause?: "fail" | "inconclusive" | "other";
  /** Minutes from the first weight change to the promotion or rollback write (or the pause). */
  minutes: number;
  /** Canary requests and errors users were served from the first weight change to the end. */
  canaryRequests: number;
  canaryErrors: number;
}

/** Where every simulated rollout starts, in virtual time. */
export const ROLLOUT_START = Date.UTC(2026, 10, 26, 12, 0, 0);

/** A rule that has not ended after this long is reported as unfinished. */
export const GIVE_UP_MS = 24 * 60 * 60_000;
