/**
 * Wald's sequential probability ratio test for a Bernoulli rate (an error or a slow request per
 * canary request), on counts: the log-likelihood ratio of H1 (rate p1) against H0 (rate p0) after
 * `n` requests of which `k` were bad is k·ln(p1/p0) + (n−k)·ln((1−p1)/(1−p0)).
 *
 * Why it may be consulted at every interval without inflating false alarms: under H0 (and for any
 * true rate at or below p0) the likelihood ratio is a non-negative (super)martingale, so by Ville's
 * inequality the chance that it EVER reaches 1/α is at most α, however often it is looked at and
 * whenever the looking stops. That is why the rejection boundary is ln(1/α), not Wald's
 * ln((1−β)/α): it keeps the guarantee even though a stage goes on sampling after the acceptance
 * boundary until min-requests and min-stage-duration are met.
 */

/** Log-likelihood ratio of H1: rate p1 against H0: rate p0, for k bad out of n. */
export function bernoulliLlr(n: number, k: number, p0: number, p1: number): number {
  if (n <= 0) return 0;
  return k * Math.log(p1 / p0) + (n - k) * Math.log((1 - p1) / (1 - p0));
}

export interface SprtBoundaries {
  /** Reject H0 (the canary is bad) at or above this log-likelihood ratio. */
  reject: number;
  /** Accept H0 (the canary is as good as the baseline) at or below this. */
  accept: number;
}

/** ln(1/α) (anytime-valid, Ville) and Wald's acceptance boundary ln(β/(1−α)). */
export function boundaries(alpha: number, beta: number): SprtBoundaries {
  return { reject: Math.log(1 / alpha), accept: Math.log(beta / (1 - alpha)) };
}

/**
 * Wald's approximation of the requests needed to accept H0 when the true rate is p0, used to say in
 * an inconclusive verdict how much traffic a decision would have needed.
 */
export function requestsToAccept(p0: number, p1: number, b: SprtBoundaries): number {
  const drift = p0 * Math.log(p1 / p0) + (1 - p0) * Math.log((1 - p1) / (1 - p0));
  return drift < 0 ? Math.ceil(b.accept / drift) : Number.POSITIVE_INFINITY;
}

/**
 * Splits the rollout's false-rollback budget across its stages in proportion to 1/weight, so the
 * shares sum to the budget (a union bound keeps the whole rollout within it).
 *
 * Why 1/weight: at stage i the canary gets requests at a rate proportional to its weight w_i, and a
 * bad canary is caught after about ln(1/α_i)/drift requests, i.e. in a time proportional to
 * ln(1/α_i)/w_i. Minimising Σ ln(1/α_i)/w_i subject to Σ α_i = budget (Lagrange: 1/(α_i·w_i) = λ)
 * gives α_i ∝ 1/w_i: the 1 % stage, where requests are scarcest, gets most of the budget, and the
 * 50 % and 100 % stages, where a stricter boundary costs a second or two, get little.
 */
export function splitBudget(budget: number, weights: readonly number[]): number[] {
  const inverse = weights.map((w) => 1 / w);
  const sum = inverse.reduce((a, b) => a + b, 0);
  return inverse.map((x) => (budget * x) / sum);
}
