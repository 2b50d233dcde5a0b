/**
 * Judging custom checks (issue 23), pure: counts or values in, a result out.
 *
 * - A counter check's bad/total counts are evidence exactly as the built-in error rate's are: each
 *   read's window goes through the same e-processes (src/analysis/evidence.ts), with the check's
 *   `max-rate` as the limit and its `max-ratio-to-stable` as the ratio: the limit's mixture on
 *   clean windows (stable within the limit at the same moments) and, when a ratio is set, the
 *   canary's share of the bad events both versions saw. The check fails at the first read where a
 *   test reaches 1/α, α being its share of the false-rollback budget (./budget.ts).
 * - A threshold check compares the canary's value with `below`/`above` at every read and fails after
 *   `breaches` consecutive reads in breach. It carries no sequential guarantee: a gauge has no
 *   likelihood to build evidence from, and how often a healthy canary breaches depends on the query.
 */
import { assessSignal } from "../analysis/assessment.ts";
import { addWindow, type Evidence, emptyEvidence } from "../analysis/evidence.ts";
import { evidenceWords, pct } from "../analysis/words.ts";
import type { CustomCheckDefinition } from "../inputs/types.ts";
import type { CustomCheckResult } from "../rollout/custom-checks.ts";

export type CounterCheck = Extract<CustomCheckDefinition, { kind: "counter" }>;
export type ThresholdCheck = Extract<CustomCheckDefinition, { kind: "threshold" }>;

export interface CounterCounts {
  bad: number;
  total: number;
}

/** A counter check's evidence over this run, and its counts. */
export interface CounterState {
  evidence: Evidence;
  canary: CounterCounts;
  stable: CounterCounts;
}

/** A threshold check's consecutive reads in breach, and the latest values. */
export interface ThresholdState {
  breaches: number;
  value?: number;
  stableValue?: number;
}

export function emptyCounterState(): CounterState {
  return { evidence: emptyEvidence(false), canary: { bad: 0, total: 0 }, stable: { bad: 0, total: 0 } };
}

function evidenceSettings(check: CounterCheck, alpha: number) {
  return {
    maxErrorRate: check.maxRate,
    maxSlowFraction: 0.01,
    maxRatioToStable: check.maxRatioToStable ?? 1,
    harmLogE: Math.log(1 / alpha),
  };
}

/** The state after one read's window (what each version served since the previous read). */
export function addCounterWindow(
  check: CounterCheck,
  state: CounterState,
  window: { canary: CounterCounts; stable?: CounterCounts; ms: number },
  alpha: number,
): CounterState {
  // A user's two queries need not select matching series: more bad than total events cannot be.
  const clamp = (c: CounterCounts) => ({ requests: c.total, errors: Math.min(c.bad, c.total) });
  const evidence = addWindow(
    state.evidence,
    {
      canary: clamp(window.canary),
      ...(window.stable ? { stable: clamp(window.stable) } : {}),
      ms: window.ms,
    },
    evidenceSettings(check, alpha),
  );
  const add = (a: CounterCounts, b: CounterCounts | undefined) => ({
    bad: a.bad + Math.min(b?.bad ?? 0, b?.total ?? 0),
    total: a.total + (b?.total ?? 0),
  });
  return { evidence, canary: add(state.canary, window.canary), stable: add(state.stable, window.stable) };
}

export function judgeCounter(check: CounterCheck, state: CounterState, alpha: number): CustomCheckResult {
  const assessment = assessSignal("errors", state.evidence.errors, check.maxRate);
  const reject = Math.log(1 / alpha);
  const ratioJudged = check.maxRatioToStable !== undefined;
  const aboveLimit = assessment.absLogE >= reject;
  const aboveStable = ratioJudged && assessment.relLogE >= reject;
  const { canary, stable } = state;
  const rate = canary.total > 0 ? canary.bad / canary.total : 0;
  const n = (x: number) => x.toLocaleString("en-US");
  const counts = `${n(canary.bad)} of ${n(canary.total)} canary events bad (${pct(rate)}); stable ${n(stable.bad)} of ${n(stable.total)} (${pct(stable.total > 0 ? stable.bad / stable.total : 0)})`;
  const summary =
    canary.total === 0
      ? "no canary events counted yet"
      : aboveLimit
        ? `${counts}: above the ${pct(check.maxRate)} limit (evidence ${evidenceWords(assessment.absLogE)}, rolls back at ${evidenceWords(reject)})`
        : aboveStable
          ? `${counts}: at the same moments the canary's share ${pct(assessment.pairedCanaryRate ?? rate)} is more than ${check.maxRatioToStable}× stable's ${pct(assessment.stableRate ?? 0)} (evidence ${evidenceWords(assessment.relLogE)}, rolls back at ${evidenceWords(reject)})`
          : `${counts}; evidence of harm ${evidenceWords(Math.max(assessment.absLogE, ratioJudged ? assessment.relLogE : 0))} (rolls back at ${evidenceWords(reject)})`;
  return {
    name: check.name,
    kind: "counter",
    mode: check.mode,
    status: canary.total === 0 ? "no-data" : aboveLimit || aboveStable ? "failing" : "ok",
    summary,
    canary,
    stable,
    maxRate: check.maxRate,
    ...(ratioJudged ? { maxRatioToStable: check.maxRatioToStable, ratioLogE: assessment.relLogE } : {}),
    limitLogE: assessment.absLogE,
    rejectLogE: reject,
    alpha,
  };
}

/** Whether a value breaches the check's bound. */
function breaches(check: ThresholdCheck, value: number): boolean {
  return check.below !== undefined ? value >= check.below : value <= (check.above as number);
}

/**
 * The state after one read: a value in breach extends the streak, one within the bound ends it, and
 * a read with no value (no series, NaN, Prometheus down) leaves it as it was.
 */
export function addThresholdRead(
  check: ThresholdCheck,
  state: ThresholdState,
  read: { value?: number; stableValue?: number },
): ThresholdState {
  const { value, stableValue } = read;
  if (value === undefined || !Number.isFinite(value)) return { ...state, value: undefined, stableValue };
  return { breaches: breaches(check, value) ? state.breaches + 1 : 0, value, stableValue };
}

export function judgeThreshold(check: ThresholdCheck, state: ThresholdState): CustomCheckResult {
  const bound = check.below !== undefined ? `below ${check.below}` : `above ${check.above}`;
  const failing = state.breaches >= check.breaches;
  const summary =
    state.value === undefined
      ? `no value this read (${state.breaches} consecutive reads in breach so far)`
      : failing
        ? `${state.value} is not ${bound} for ${state.breaches} consecutive reads (fails at ${check.breaches}; no sequential guarantee)`
        : `${state.value} (must stay ${bound}; ${state.breaches} of ${check.breaches} reads in breach)`;
  return {
    name: check.name,
    kind: "threshold",
    mode: check.mode,
    status: failing ? "failing" : state.value === undefined ? "no-data" : "ok",
    summary,
    ...(state.value !== undefined ? { value: state.value } : {}),
    ...(state.stableValue !== undefined ? { stableValue: state.stableValue } : {}),
    ...(check.below !== undefined ? { below: check.below } : { above: check.above }),
    breaches: state.breaches,
    breachesToFail: check.breaches,
  };
}
