/**
 * Custom checks (issue 23): the port the stage analysis asks at every read, beside the built-in
 * signals, and what each check reports. The core owns these types; src/checks/ implements the port
 * over Prometheus, and the reports show the results.
 */

/** One check's standing after a read. */
export interface CustomCheckResult {
  name: string;
  /** counter: bad/total judged by the anytime-valid tests; threshold: a query against a bound, with persistence. */
  kind: "counter" | "threshold";
  /** fail: a failing check rolls the canary back; report: it is only reported (a dry run). */
  mode: "fail" | "report";
  /** ok: nothing shown so far; failing: the check's rule fired; no-data: nothing to judge yet. */
  status: "ok" | "failing" | "no-data";
  /** One sentence for people; it may quote Prometheus' error message, so it is escaped where shown. */
  summary: string;
  /** Counter checks: the counts since the first stage of this run. */
  canary?: { bad: number; total: number };
  stable?: { bad: number; total: number };
  maxRate?: number;
  maxRatioToStable?: number;
  /** Log e-values of the limit's and the ratio's tests, and where a test rejects (ln 1/α). */
  limitLogE?: number;
  ratioLogE?: number;
  rejectLogE?: number;
  alpha?: number;
  /** Threshold checks: the latest values, the bound, and the consecutive reads in breach. */
  value?: number;
  stableValue?: number;
  below?: number;
  above?: number;
  breaches?: number;
  breachesToFail?: number;
}

/** When a read happens: the stage, the weight on the routes, when that weight was written, and now. */
export interface CustomChecksRead {
  stage: number;
  weight: number;
  /**
   * When the weight on the routes was written (the stage's change, or a step back or the return up
   * inside the stage): counting starts again here, as the built-in counts do after a move.
   */
  changedAt: number;
  now: Date;
}

/** What the stage analysis asks of the custom checks. */
export interface CustomChecksPort {
  /** Reads and judges every check; a Prometheus failure is a check's `no-data`, never an exception. */
  judge(read: CustomChecksRead, signal?: AbortSignal): Promise<CustomCheckResult[]>;
}

/** The first check in fail mode whose rule fired, if any. */
export function failingCheck(results: readonly CustomCheckResult[]): CustomCheckResult | undefined {
  return results.find((result) => result.mode === "fail" && result.status === "failing");
}
