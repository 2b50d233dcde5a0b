/**
 * The arithmetic of the e-values (src/analysis/evidence.ts): Bernoulli likelihood ratios and the
 * mixtures over alternatives, computed in logs without overflow.
 */

/**
 * Alternatives of the absolute-harm mixture, as multiples of the limit, with their prior weights
 * (summing to 1). Alternatives close to the limit catch a canary just above it (1.2·L builds no
 * evidence against a 1.5·L alternative: its likelihood favours L); the far ones catch a clear
 * regression in a few dozen requests. Weight on the near ones costs the far ones little: ln(1/w)
 * nats, a handful of requests for a canary at 5·L.
 */
export const ABS_ALTERNATIVES: ReadonlyArray<{ multiple: number; weight: number }> = [
  { multiple: 1.1, weight: 0.15 },
  { multiple: 1.2, weight: 0.2 },
  { multiple: 1.35, weight: 0.15 },
  { multiple: 1.5, weight: 0.1 },
  { multiple: 2, weight: 0.1 },
  { multiple: 3, weight: 0.1 },
  { multiple: 5, weight: 0.08 },
  { multiple: 10, weight: 0.06 },
  { multiple: 20, weight: 0.06 },
];

/** log(mean(exp(xs))) without overflow. */
export function logMeanExp(xs: readonly number[]): number {
  const max = Math.max(...xs);
  if (!Number.isFinite(max)) return max;
  return max + Math.log(xs.reduce((sum, x) => sum + Math.exp(x - max), 0) / xs.length);
}

/** Log likelihood ratio of rate p1 against p0 for k bad out of n. */
export function bernoulliLlr(n: number, k: number, p0: number, p1: number): number {
  if (n <= 0) return 0;
  return k * Math.log(p1 / p0) + (n - k) * Math.log((1 - p1) / (1 - p0));
}

/** Kullback-Leibler divergence of Bernoulli(q) from Bernoulli(p): the evidence one request adds on average. */
export function bernoulliKl(p: number, q: number): number {
  return p * Math.log(p / q) + (1 - p) * Math.log((1 - p) / (1 - q));
}

/** log(Σ w·exp(x)) without overflow. */
export function logWeightedSumExp(terms: ReadonlyArray<{ x: number; w: number }>): number {
  const max = Math.max(...terms.map((t) => t.x));
  if (!Number.isFinite(max)) return max;
  return max + Math.log(terms.reduce((sum, t) => sum + t.w * Math.exp(t.x - max), 0));
}

/**
 * Log e-value of the absolute-harm mixture, against "the rate ≤ `limit`", for `bad` of `requests`
 * (the clean windows' counts, or a streak's).
 */
export function aboveLimitLogE(requests: number, bad: number, limit: number): number {
  if (requests <= 0) return 0;
  return logWeightedSumExp(
    usableAbsAlternatives(limit).map((alternative) => ({
      x: bernoulliLlr(requests, bad, limit, alternative.rate),
      w: alternative.weight,
    })),
  );
}

/**
 * The absolute-harm alternatives a limit allows, as rates with their prior weights: alternatives at
 * or past a rate of 1 are impossible, and their weight goes to the others.
 */
export function usableAbsAlternatives(limit: number): Array<{ rate: number; weight: number }> {
  const usable = ABS_ALTERNATIVES.filter((alternative) => alternative.multiple * limit < 1);
  const total = usable.reduce((sum, alternative) => sum + alternative.weight, 0);
  return usable.map((alternative) => ({
    rate: alternative.multiple * limit,
    weight: alternative.weight / total,
  }));
}
