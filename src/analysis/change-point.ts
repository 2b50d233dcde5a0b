/**
 * Harm tests that notice a change (src/analysis/evidence.ts): a canary healthy for minutes and then
 * going bad. A likelihood-ratio e-process over the whole rollout must first win back every healthy
 * request's evidence against the alternative before it can reject; at 100 req/s and 50 % that was a
 * minute of a canary failing at 5 %. Here each alternative's e-process is a mixture over the window
 * the change began in (the Shiryaev-Roberts form of an e-detector):
 *
 *   S(n) = Σ_{k ≤ n} w_k · Π_{j = k..n} LR_j,   with w_k = 1 / (k(k+1)), so Σ w_k ≤ 1,
 *
 * computed as S(n) = (S(n−1) + w_n) · LR_n. Each term is a likelihood-ratio product started at
 * window k, a non-negative supermartingale under the null (the canary within the limit, or within
 * R× stable, in every window), so their weighted sum is one too and starts at most at 1: Ville's
 * inequality still bounds the chance of ever reaching 1/α by α, for however many windows. A change
 * at window k costs ln(1/w_k) ≈ 2·ln k nats (about 6 at the 20th window), a handful of requests at a
 * clear regression; a canary bad from the start pays ln 2.
 */
import { logWeightedSumExp, usableAbsAlternatives } from "./likelihood.ts";

/** log w_k for window k (1-based). */
export function logStartWeight(k: number): number {
  return -Math.log(k) - Math.log(k + 1);
}

/**
 * Each alternative's log S(n), and log D(n): the same sum without the change that began in window n
 * (empty before the second window).
 */
export interface ChangePointState {
  s: number[];
  d: number[];
}

/**
 * One window's step for every alternative: log S(n) from log S(n−1) (empty before the first
 * window), the window's index k and each alternative's log likelihood ratio in it (0: the window
 * says nothing, as a window this test does not count).
 *
 * Decisions use D(n) = S(n−1) · LR_n, the changes that began before the latest window: the latest
 * window's evidence is discounted by the window before it (a healthy one costs its own likelihood
 * ratio; one this test did not count costs nothing, so then the latest window can decide alone).
 * One window can be wrong by the counting's timing: each pod is scraped at its own moment, and a
 * burst that hits both versions lands in the canary's window and stable's in different proportions
 * for the window it starts in. D(n) ≤ S(n), so D reaches 1/α no more often than S.
 */
export function changePointStep(
  previous: readonly number[],
  k: number,
  llrs: readonly number[],
): ChangePointState {
  // A state of another length (alternatives changed, or a record edited by hand) starts afresh:
  // reading a missing S(n−1) as 1 would let the latest window decide alone.
  const prior = previous.length === llrs.length ? previous : [];
  const logW = logStartWeight(k);
  const s = llrs.map((llr, index) => {
    const before = prior[index];
    return (before === undefined ? logW : logAddExp(before, logW)) + llr;
  });
  // Before the second window there is no D.
  const d = prior.length === 0 ? [] : llrs.map((llr, index) => (prior[index] as number) + llr);
  return { s, d };
}

/** The mixture over alternatives of their change-point e-processes, in logs. */
export function changePointLogE(logS: readonly number[], weights: readonly number[]): number {
  if (logS.length === 0) return Number.NEGATIVE_INFINITY;
  return logWeightedSumExp(logS.map((x, index) => ({ x, w: weights[index] ?? 0 })));
}

function logAddExp(a: number, b: number): number {
  const max = Math.max(a, b);
  return max + Math.log(Math.exp(a - max) + Math.exp(b - max));
}

/** The limit test's change-point e-value (D), in logs: 0 before its second window. */
export function limitChangeLogE(state: ChangePointState | undefined, limit: number): number {
  if (!state || state.d.length === 0) return 0;
  return changePointLogE(state.d, limitWeights(limit));
}

/** The limit test's change-point e-value counting a change in the latest window too (S), in logs. */
export function limitChangeLogEWithLatest(state: ChangePointState | undefined, limit: number): number {
  if (!state || state.s.length === 0) return 0;
  return changePointLogE(state.s, limitWeights(limit));
}

function limitWeights(limit: number): number[] {
  return usableAbsAlternatives(limit).map((alternative) => alternative.weight);
}
