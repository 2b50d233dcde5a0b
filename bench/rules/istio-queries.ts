/**
 * The PromQL that Flagger and Argo Rollouts run against Istio's metrics, evaluated on the
 * simulated scrapes as Prometheus evaluates `sum(fn(series[range]))`: `fn` per series (one per pod
 * and response class; each appears with its first request and is absent from failed scrapes),
 * then summed. The canary's queries select its pods; Argo's documented query selects the service's.
 */
import { promIrate, promRate, ratioOfSums, type Sample } from "../promql.ts";
import type { Pod, PodScrape, ServiceWorld, Version } from "../world.ts";

export type RangeFunction = "rate" | "irate";

function samples(
  world: ServiceWorld,
  pod: Pod,
  at: number,
  rangeMs: number,
  value: (s: PodScrape) => number,
): Sample[] {
  return world
    .scrapesIn(pod, at - rangeMs + 1, at)
    .filter((s) => !s.missed && value(s) > 0)
    .map((s) => ({ at: s.at, value: value(s) }));
}

/** `fn(series[range])` of every selected pod's series of one kind. */
function perSeries(
  world: ServiceWorld,
  versions: readonly Version[],
  fn: RangeFunction,
  at: number,
  rangeMs: number,
  value: (s: PodScrape) => number,
): Array<number | undefined> {
  return world.pods
    .filter((p) => versions.includes(p.version))
    .map((pod) => {
      const xs = samples(world, pod, at, rangeMs, value);
      return fn === "rate" ? promRate(xs, at, rangeMs) : promIrate(xs);
    });
}

/**
 * `sum(fn(istio_requests_total{selected, response_code!~"5.*"}[range])) /
 *  sum(fn(istio_requests_total{selected}[range]))` at `at`: undefined for an empty result.
 */
export function successRatio(
  world: ServiceWorld,
  at: number,
  fn: RangeFunction,
  rangeMs: number,
  versions: readonly Version[] = ["canary"],
): number | undefined {
  const ok = perSeries(world, versions, fn, at, rangeMs, (s) => s.ok);
  const failed = perSeries(world, versions, fn, at, rangeMs, (s) => s.errors);
  return ratioOfSums(ok, [...ok, ...failed]);
}

/**
 * Whether the canary's p99 latency (histogram_quantile(0.99, ...) over the window) is at or below
 * the threshold bucket: the share of requests in the `le=threshold` bucket is at least 99 %.
 * Undefined for an empty result; false for NaN (no request in the window), which Flagger counts as
 * a failed check ("no values") and Argo as a Failed measurement.
 */
export function canaryP99WithinThreshold(
  world: ServiceWorld,
  at: number,
  fn: RangeFunction,
  rangeMs: number,
): boolean | undefined {
  const fast = [
    ...perSeries(world, ["canary"], fn, at, rangeMs, (s) => s.ok - s.slowOk),
    ...perSeries(world, ["canary"], fn, at, rangeMs, (s) => s.errors - s.slowErrors),
  ];
  const all = [
    ...perSeries(world, ["canary"], fn, at, rangeMs, (s) => s.ok),
    ...perSeries(world, ["canary"], fn, at, rangeMs, (s) => s.errors),
  ];
  const share = ratioOfSums(fast, all);
  if (share === undefined) return undefined;
  return share >= 0.99;
}
