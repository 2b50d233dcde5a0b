/**
 * PromQL's `rate()` and `irate()` over scraped counter samples, as Prometheus computes them
 * (promql/functions.go: extrapolatedRate and instantValue), for the Flagger and Argo rules, which
 * read Istio's metrics through these functions rather than as exact counts.
 */

export interface Sample {
  at: number;
  value: number;
}

/**
 * `rate(series[rangeMs])` at `end`: the increase between the first and last sample in the window,
 * extrapolated towards the window's edges (at most half a scrape interval beyond the samples, and
 * never below zero for a counter), per second. Undefined with fewer than two samples.
 */
export function promRate(samples: readonly Sample[], end: number, rangeMs: number): number | undefined {
  if (samples.length < 2) return undefined;
  const first = samples[0] as Sample;
  const last = samples.at(-1) as Sample;
  let increase = last.value - first.value;
  // Counter resets: a drop means the counter restarted from zero.
  for (let i = 1; i < samples.length; i++) {
    const previous = (samples[i - 1] as Sample).value;
    if ((samples[i] as Sample).value < previous) increase += previous;
  }
  const start = end - rangeMs;
  let durationToStart = (first.at - start) / 1000;
  const durationToEnd = (end - last.at) / 1000;
  const sampledInterval = (last.at - first.at) / 1000;
  const averageBetweenSamples = sampledInterval / (samples.length - 1);
  if (increase > 0 && first.value >= 0) {
    // A counter does not extrapolate below zero.
    const durationToZero = sampledInterval * (first.value / increase);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  const threshold = averageBetweenSamples * 1.1;
  let extrapolateTo = sampledInterval;
  extrapolateTo += durationToStart < threshold ? durationToStart : averageBetweenSamples / 2;
  extrapolateTo += durationToEnd < threshold ? durationToEnd : averageBetweenSamples / 2;
  return (increase * (extrapolateTo / sampledInterval)) / (rangeMs / 1000);
}

/** `irate(series[range])`: the per-second increase between the last two samples in the window. */
export function promIrate(samples: readonly Sample[]): number | undefined {
  if (samples.length < 2) return undefined;
  const last = samples.at(-1) as Sample;
  const previous = samples.at(-2) as Sample;
  const increase = last.value < previous.value ? last.value : last.value - previous.value;
  return increase / ((last.at - previous.at) / 1000);
}

/**
 * `sum(f(a)) / sum(f(b))` over several series: undefined when a sum has no series with a result
 * (an empty vector: the division yields nothing), NaN for 0/0.
 */
export function ratioOfSums(
  numerator: Array<number | undefined>,
  denominator: Array<number | undefined>,
): number | undefined {
  const sum = (xs: Array<number | undefined>) => {
    const present = xs.filter((x): x is number => x !== undefined);
    return present.length > 0 ? present.reduce((a, b) => a + b, 0) : undefined;
  };
  const top = sum(numerator);
  const bottom = sum(denominator);
  if (top === undefined || bottom === undefined) return undefined;
  return top / bottom;
}
