/**
 * The PromQL that Flagger and Argo Rollouts run against Istio's metrics, evaluated on the
 * simulated scrapes. Istio keeps one `istio_requests_total` series per response code class here:
 * non-5xx and 5xx; each appears with its first request, as Istio creates series.
 */
import { promIrate, promRate, ratioOfSums, type Sample } from "../promql.ts";
import type { Scrape, ServiceWorld } from "../world.ts";

export type RangeFunction = "rate" | "irate";

function series(scrapes: readonly Scrape[], value: (s: Scrape) => number): Sample[] {
  // A counter series exists from the first scrape where it is above zero.
  return scrapes.filter((s) => value(s) > 0).map((s) => ({ at: s.at, value: value(s) }));
}

function evaluate(fn: RangeFunction, samples: Sample[], at: number, rangeMs: number): number | undefined {
  return fn === "rate" ? promRate(samples, at, rangeMs) : promIrate(samples);
}

/**
 * `sum(fn(istio_requests_total{canary, response_code!~"5.*"}[range])) /
 *  sum(fn(istio_requests_total{canary}[range]))` at `at`: undefined for an empty result.
 */
export function canarySuccessRatio(
  world: ServiceWorld,
  at: number,
  fn: RangeFunction,
  rangeMs: number,
): number | undefined {
  const scrapes = world.scrapesIn("canary", at - rangeMs, at);
  const ok = evaluate(
    fn,
    series(scrapes, (s) => s.requests - s.errors),
    at,
    rangeMs,
  );
  const failed = evaluate(
    fn,
    series(scrapes, (s) => s.errors),
    at,
    rangeMs,
  );
  return ratioOfSums([ok], [ok, failed]);
}

/**
 * Whether the canary's p99 latency (histogram_quantile(0.99, ...) over the window) is at or below
 * the threshold bucket: the share of requests in the `le=threshold` bucket is at least 99 %.
 * Undefined for an empty result.
 */
export function canaryP99WithinThreshold(
  world: ServiceWorld,
  at: number,
  fn: RangeFunction,
  rangeMs: number,
): boolean | undefined {
  const scrapes = world.scrapesIn("canary", at - rangeMs, at);
  const fast = evaluate(
    fn,
    series(scrapes, (s) => s.requests - s.slow),
    at,
    rangeMs,
  );
  const all = evaluate(
    fn,
    series(scrapes, (s) => s.requests),
    at,
    rangeMs,
  );
  const share = ratioOfSums([fast], [all]);
  if (share === undefined || Number.isNaN(share)) return undefined;
  return share >= 0.99;
}
