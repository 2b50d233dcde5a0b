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
 *
 * Time alignment: Prometheus scrapes each pod at its own offset within the scrape interval, so the
 * canary's and stable's latest samples were taken up to one interval apart, and a burst that hit
 * both at the same moments would land in different reads. With sample times, both versions are
 * counted up to one common instant (`commonInstant`: the earliest latest-sample of the series
 * still being scraped): each series through its samples at or before it, plus the share of the
 * next increment that falls before it (linear between the two samples that bracket it). Each
 * version's total is rounded to whole requests, so reads stay integers and the sum of the windows
 * is the count up to the last instant, exactly.
 */
import type { VersionCounts } from "../analysis/types.ts";
import type { RangeSeries } from "./prometheus-client.ts";
import { type Target, targetsOf } from "./targets.ts";

/** Series values split the way the judge counts them. */
export interface SeriesSamples {
  requests: Map<string, number[]>;
  /** Each request series' sample times (ms), when Prometheus gave them (a range read). */
  times?: Map<string, number[]>;
  errors: Map<string, number[]>;
  /** Histogram `_count` minus the threshold bucket: requests slower than the threshold. */
  slow?: Map<string, number[]>;
  /** Anything that makes the data incomplete (NaN values, warnings). */
  problems: string[];
  /** What makes the latency data incomplete (it leaves the request and error counts usable). */
  latencyProblems: string[];
  /** How many request-counter series matched. */
  series: number;
  /** The scrape targets (job and instance) the request series came from. */
  targets?: Target[];
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
  const times = new Map<string, number[]>();
  for (const s of requestSeries) {
    if (!usable(s.values, "request counter", problems)) continue;
    const key = seriesKey(s.metric);
    requests.set(key, s.values);
    if (s.times && s.times.length === s.values.length) times.set(key, s.times);
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
  return {
    requests,
    errors,
    times,
    slow,
    problems,
    latencyProblems,
    series: requestSeries.length,
    targets: targetsOf(requestSeries),
  };
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

/** When each series' samples were taken, for counting up to a common instant. */
export interface CountUpTo {
  /** The instant (ms) to count up to. */
  at: number;
  times: Map<string, number[]>;
  /** When each start value was sampled, where the start read said. */
  startTimes?: LastValues;
  /** When counting started: a series born since had its first request after it. */
  startAt: number;
  /** The scrape interval, to place the start value before a series' first sample in the range. */
  spacingMs: number;
}

/**
 * Sum over series of increments from the start value through every later sample; with `upTo`,
 * only up to that instant (the increment that straddles it in proportion).
 */
export function increments(start: LastValues, since: Map<string, number[]>, upTo?: CountUpTo): number {
  let total = 0;
  for (const [key, values] of since) {
    // The start value may come from another replica of an HA pair than this range, so a small dip
    // from it to the range's first sample is not a reset. Within one range every sample comes
    // from one replica, so there any drop is a reset (a pod restart), however small.
    // A replica behind the start value still owes that deficit: its first increments are
    // requests served before the start.
    const times = upTo?.times.get(key);
    let previous = start.get(key) ?? 0;
    // Where the increment to the first sample began: the start value's sample, else one interval
    // before, but never before counting started for a series born since (its requests came after).
    let previousAt = 0;
    if (times && upTo) {
      const first = times[0] as number;
      previousAt =
        upTo.startTimes?.get(key) ??
        (start.has(key) ? first - upTo.spacingMs : Math.max(first - upTo.spacingMs, upTo.startAt));
    }
    let deficit = 0;
    for (const [i, value] of values.entries()) {
      const at = times?.[i] ?? 0;
      if (i === 0 && value < previous && (value >= previous / 2 || previous - value <= HA_DIP_ALLOWANCE))
        deficit = previous - value;
      else {
        const increment = value >= previous ? value - previous : value;
        const owed = Math.min(deficit, increment);
        deficit -= owed;
        let counted = increment - owed;
        if (upTo && times && at > upTo.at) {
          // The sample after the instant: only the part of its increment served before it counts.
          counted *= at > previousAt ? Math.max(0, (upTo.at - previousAt) / (at - previousAt)) : 0;
          total += counted;
          break;
        }
        total += counted;
      }
      previous = value;
      previousAt = at;
    }
  }
  return total;
}

/** The median time between consecutive samples of the series (the scrape interval), if any. */
export function sampleSpacing(...reads: SeriesSamples[]): number | undefined {
  const gaps: number[] = [];
  for (const read of reads)
    for (const times of read.times?.values() ?? [])
      for (let i = 1; i < times.length; i++) gaps.push((times[i] as number) - (times[i - 1] as number));
  if (gaps.length === 0) return undefined;
  gaps.sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)];
}

/**
 * Whether any request counter grew in its latest scrape interval (from the sample before its
 * latest, or from the start value when the range holds one sample): the version is serving now.
 */
export function grewLately(read: SeriesSamples, start: LastValues): boolean {
  for (const [key, values] of read.requests) {
    const latest = values.at(-1) ?? 0;
    const before = values.length > 1 ? (values.at(-2) as number) : start.get(key);
    if (before === undefined ? latest > 0 : latest !== before) return true;
  }
  return false;
}

/** Each series' latest sample time. */
export function latestTimes(read: SeriesSamples): number[] {
  return [...(read.times?.values() ?? [])].map((t) => t.at(-1) ?? 0);
}

/**
 * The instant both versions are counted up to: the earliest latest-sample among the series still
 * scraped on time (latest sample less than one interval behind the newest of all). Every such
 * series has a sample at or after it, so no count is extrapolated. A series further behind (its
 * last scrape failed, or its pod is gone) counts to its latest sample and catches up when its
 * next sample arrives, instead of holding every other series back by an interval. Never before
 * `notBefore` (the previous read's instant), so counts never go back.
 */
export function commonInstant(
  spacingMs: number,
  reads: SeriesSamples[],
  notBefore = Number.NEGATIVE_INFINITY,
): number | undefined {
  const latest = reads.flatMap(latestTimes);
  if (latest.length === 0) return undefined;
  const newest = Math.max(...latest);
  return Math.max(notBefore, Math.min(...latest.filter((t) => newest - t < spacingMs)));
}

/** The read with each series' samples after `t` only (the start values at `t` stand for the rest). */
export function samplesAfter(read: SeriesSamples, t: number): SeriesSamples {
  const times = read.times ?? new Map<string, number[]>();
  const trim = (samples: Map<string, number[]>) =>
    new Map(
      [...samples].map(([key, values]) => {
        const at = times.get(key);
        return [key, at ? values.filter((_, i) => (at[i] as number) > t) : values];
      }),
    );
  return {
    ...read,
    requests: trim(read.requests),
    errors: trim(read.errors),
    ...(read.slow ? { slow: trim(read.slow) } : {}),
    times: new Map([...times].map(([key, at]) => [key, at.filter((x) => x > t)])),
  };
}

/**
 * After a move of the weights at `after`: the instant both versions count from, the latest of the
 * series' first samples since the move (among the series that existed then: a first sample within
 * one interval of it). Every sample around that instant was taken after the move, so no increment
 * that began before it is interpolated into the counts. Undefined until every such series has one.
 */
export function firstCommonSample(
  spacingMs: number,
  after: number,
  reads: SeriesSamples[],
): number | undefined {
  const firsts = reads.flatMap((read) => [...(read.times?.values() ?? [])].map((t) => t[0] ?? Infinity));
  const existing = firsts.filter((t) => t <= after + spacingMs);
  return existing.length > 0 ? Math.max(...existing) : undefined;
}

export interface StartValues {
  requests: LastValues;
  /** When each request series' start value was sampled (a range read gives it). */
  times?: LastValues;
  errors: LastValues;
  slow?: LastValues;
  problems: string[];
  latencyProblems: string[];
  /** The scrape targets the version's series came from at the start. */
  targets?: Target[];
}

export function startValues(at: SeriesSamples, instant?: number): StartValues {
  if (instant === undefined || !at.times)
    return {
      requests: lastValues(at.requests),
      ...(at.times ? { times: lastValues(at.times) } : {}),
      errors: lastValues(at.errors),
      slow: at.slow ? lastValues(at.slow) : undefined,
      problems: at.problems,
      latencyProblems: at.latencyProblems,
      ...(at.targets ? { targets: at.targets } : {}),
    };
  const times = at.times;
  const valuesAt = (samples: Map<string, number[]>) => {
    const out: LastValues = new Map();
    for (const [key, values] of samples) {
      const value = valueAt(values, times.get(key), instant);
      if (value !== undefined) out.set(key, value);
    }
    return out;
  };
  const startTimes: LastValues = new Map();
  for (const [key, t] of times) {
    const last = t.filter((x) => x <= instant).at(-1);
    if (last !== undefined) startTimes.set(key, t.some((x) => x > instant) ? instant : last);
  }
  return {
    requests: valuesAt(at.requests),
    times: startTimes,
    errors: valuesAt(at.errors),
    slow: at.slow ? valuesAt(at.slow) : undefined,
    problems: at.problems,
    latencyProblems: at.latencyProblems,
    ...(at.targets ? { targets: at.targets } : {}),
  };
}

/**
 * A counter's value at `instant`: linear between the samples around it (as `increments` counts up
 * to an instant), its latest value when every sample is older, undefined when every sample is
 * newer (the series was born since: it counts from zero). A fall between the two samples is a
 * reset after the instant: the value before it.
 */
function valueAt(values: number[], times: number[] | undefined, instant: number): number | undefined {
  if (!times || times.length !== values.length) return values.at(-1);
  let i = -1;
  while (i + 1 < times.length && (times[i + 1] as number) <= instant) i++;
  if (i < 0) return undefined;
  const before = values[i] as number;
  if (i === times.length - 1) return before;
  const after = values[i + 1] as number;
  const t0 = times[i] as number;
  const t1 = times[i + 1] as number;
  if (after < before || t1 <= t0) return before;
  return before + ((after - before) * (instant - t0)) / (t1 - t0);
}

/**
 * Counts since the start; undefined when Prometheus has no series for the version. With `at` and
 * the samples' times, up to that instant, in whole requests.
 */
export function countsSince(
  start: StartValues,
  since: SeriesSamples,
  at?: { instant: number; spacingMs: number; startAt: number },
): VersionCounts | undefined {
  // No sample at all in the range: no data (a version that serves nothing still has its counters
  // scraped, so its series are there). Series that vanished are not "zero requests".
  if (since.series === 0) return undefined;
  const upTo: CountUpTo | undefined =
    at && since.times
      ? {
          at: at.instant,
          times: since.times,
          spacingMs: at.spacingMs,
          startAt: at.startAt,
          ...(start.times ? { startTimes: start.times } : {}),
        }
      : undefined;
  // Rounding each cumulative total (not each window) keeps errors <= requests and loses nothing;
  // it matters where the start values or the end were interpolated at an instant.
  const count = (from: LastValues, samples: Map<string, number[]>) =>
    Math.round(increments(from, samples, upTo));
  const counts: VersionCounts = {
    requests: count(start.requests, since.requests),
    errors: count(start.errors, since.errors),
  };
  // A histogram's series are scraped with the counter's, at the same times.
  if (since.slow) counts.slow = count(start.slow ?? new Map(), since.slow);
  return counts;
}
