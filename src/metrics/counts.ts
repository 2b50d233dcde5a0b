/**
 * Exact counts from raw counter samples. At the stage start the observer keeps each series' last
 * value (an instant query at that time); later it reads every raw sample since then (a range
 * selector, no function applied) and adds up each series' increments one sample to the next:
 * - a series first seen after the start counts from zero (Envoy creates it at its first request,
 *   so its whole value is new: this is the increment `rate()` and `increase()` miss);
 * - within a range, a value lower than the one before is a counter reset (a pod restart) and counts
 *   in full; between the start value and the range's first sample only a fall below half is: two
 *   replicas of a Prometheus HA pair behind one URL answer consecutive queries with samples that
 *   differ slightly, and reading that dip as a reset would count the whole counter again;
 * - a series that vanished adds nothing after its last sample.
 * The result is exact as of the last scrape; nothing is extrapolated.
 */
import type { VersionCounts } from "../analysis/types.ts";
import type { RangeSeries } from "./prometheus-client.ts";

/** Series values split the way the judge counts them. */
export interface SeriesSamples {
  requests: Map<string, number[]>;
  errors: Map<string, number[]>;
  /** Histogram `_count` minus the threshold bucket: requests slower than the threshold. */
  slow?: Map<string, number[]>;
  /** Anything that makes the data incomplete (NaN values, warnings). */
  problems: string[];
  /** What makes the latency data incomplete (it leaves the request and error counts usable). */
  latencyProblems: string[];
  /** How many request-counter series matched. */
  series: number;
}

/** Identity of a series: every label but the metric name and `le`, sorted. */
export function seriesKey(metric: Record<string, string>): string {
  return JSON.stringify(
    Object.entries(metric)
      .filter(([k]) => k !== "__name__" && k !== "le")
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** 5xx, "0" (no response sent) and gRPC errors (HTTP 200 with grpc_response_status != 0). */
export function isErrorSeries(metric: Record<string, string>): boolean {
  const code = metric.response_code ?? "";
  const grpc = metric.grpc_response_status ?? "";
  return /^5\d\d$/.test(code) || code === "0" || (grpc !== "" && grpc !== "0");
}

function usable(values: number[], what: string, problems: string[]): boolean {
  const bad = values.find((v) => !(Number.isFinite(v) && v >= 0));
  if (bad === undefined) return true;
  problems.push(`a ${what} sample value was ${Number.isNaN(bad) ? "NaN" : String(bad)}`);
  return false;
}

/** Sorts raw series (instant samples are one-value series) into requests, errors and slow. */
export function seriesSamples(
  requestSeries: RangeSeries[],
  latencySeries?: RangeSeries[],
  warnings: string[] = [],
  latencyWarnings: string[] = [],
): SeriesSamples {
  const problems = [...warnings];
  const latencyProblems = [...latencyWarnings];
  const requests = new Map<string, number[]>();
  const errors = new Map<string, number[]>();
  for (const s of requestSeries) {
    if (!usable(s.values, "request counter", problems)) continue;
    const key = seriesKey(s.metric);
    requests.set(key, s.values);
    if (isErrorSeries(s.metric)) errors.set(key, s.values);
  }
  let slow: Map<string, number[]> | undefined;
  if (latencySeries) {
    slow = new Map();
    const within = new Map<string, number[]>();
    const totals = new Map<string, number[]>();
    for (const s of latencySeries) {
      if (!usable(s.values, "latency histogram", latencyProblems)) continue;
      (s.metric.le === undefined ? totals : within).set(seriesKey(s.metric), s.values);
    }
    // Bucket and count of one series are scraped together, so their samples line up one to one.
    // A count without its threshold bucket (custom buckets, a dropped series) cannot say how many
    // requests were slow: the data is partial, never "all slow".
    let unmatched = 0;
    for (const [key, total] of totals) {
      const bucket = within.get(key);
      if (!bucket || bucket.length !== total.length) {
        unmatched += 1;
        continue;
      }
      slow.set(
        key,
        total.map((t, i) => Math.max(0, t - (bucket[i] ?? t))),
      );
    }
    if (unmatched > 0)
      latencyProblems.push(
        `${unmatched} latency series had no sample-for-sample match in the threshold's bucket (is the threshold one of the histogram's buckets?)`,
      );
  }
  return { requests, errors, slow, problems, latencyProblems, series: requestSeries.length };
}

/** Each series' last value: what an instant query at the start returns. */
export type LastValues = Map<string, number>;

export function lastValues(samples: Map<string, number[]>): LastValues {
  return new Map([...samples].map(([k, v]) => [k, v.at(-1) ?? 0]));
}

/**
 * A drop this small from the start value to the range's first sample is another replica's lag,
 * not a reset, even on a small counter (a few slow requests) where "below half" says nothing.
 */
const HA_DIP_ALLOWANCE = 20;

/** Sum over series of increments from the start value through every later sample. */
export function increments(start: LastValues, since: Map<string, number[]>): number {
  let total = 0;
  for (const [key, values] of since) {
    // The start value may come from another replica of an HA pair than this range, so a small dip
    // from it to the range's first sample is not a reset. Within one range every sample comes
    // from one replica, so there any drop is a reset (a pod restart), however small.
    // A replica behind the start value still owes that deficit: its first increments are
    // requests served before the start.
    let previous = start.get(key) ?? 0;
    let deficit = 0;
    for (const [i, value] of values.entries()) {
      if (i === 0 && value < previous && (value >= previous / 2 || previous - value <= HA_DIP_ALLOWANCE))
        deficit = previous - value;
      else {
        const increment = value >= previous ? value - previous : value;
        const owed = Math.min(deficit, increment);
        deficit -= owed;
        total += increment - owed;
      }
      previous = value;
    }
  }
  return total;
}

export interface StartValues {
  requests: LastValues;
  errors: LastValues;
  slow?: LastValues;
  problems: string[];
  latencyProblems: string[];
}

export function startValues(at: SeriesSamples): StartValues {
  return {
    requests: lastValues(at.requests),
    errors: lastValues(at.errors),
    slow: at.slow ? lastValues(at.slow) : undefined,
    problems: at.problems,
    latencyProblems: at.latencyProblems,
  };
}

/** Counts since the start; undefined when Prometheus has no series for the version. */
export function countsSince(start: StartValues, since: SeriesSamples): VersionCounts | undefined {
  // No sample at all in the range: no data (a version that serves nothing still has its counters
  // scraped, so its series are there). Series that vanished are not "zero requests".
  if (since.series === 0) return undefined;
  const counts: VersionCounts = {
    requests: increments(start.requests, since.requests),
    errors: increments(start.errors, since.errors),
  };
  if (since.slow) counts.slow = increments(start.slow ?? new Map(), since.slow);
  return counts;
}
