/** Seeded randomness for reproducible simulations. */

/** mulberry32: a small, fast, seeded PRNG. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Binomial(n, p) by geometric skipping: O(n·p) draws, exact. */
export function binomial(random: () => number, n: number, p: number): number {
  if (p <= 0 || n <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(random, n, 1 - p);
  const logQ = Math.log(1 - p);
  let k = 0;
  let position = Math.floor(Math.log(1 - random()) / logQ);
  while (position < n) {
    k += 1;
    position += 1 + Math.floor(Math.log(1 - random()) / logQ);
  }
  return k;
}
