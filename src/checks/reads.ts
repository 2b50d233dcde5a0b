/**
 * Reading custom checks from Prometheus (issue 23), through the project's client and its exact
 * counting (src/metrics/counts.ts): a counter check's `bad` and `total` selectors are read as raw
 * samples (a bare range selector, no function) and summed series by series from the values at the
 * stage's weight change, with resets handled as for Istio's counters; a threshold check's query is
 * one instant query per version.
 */

import { START_LOOKBACK_MS } from "../constants.ts";
import { fillPlaceholders, type VersionPlaceholders } from "../inputs/checks.ts";
import {
  countsSince,
  type SeriesSamples,
  type StartValues,
  seriesKey,
  startValues,
} from "../metrics/counts.ts";
import type { PrometheusClient, RangeSeries, SeriesResult } from "../metrics/prometheus-client.ts";
import { range } from "../promql-text.ts";
import type { CounterCheck, CounterCounts } from "./judge.ts";

function usable(series: RangeSeries, problems: string[]): boolean {
  if (series.values.every((value) => Number.isFinite(value) && value >= 0)) return true;
  problems.push("a sample value was NaN, infinite or negative");
  return false;
}

/** The two selectors' series as the counting code takes them: total as "requests", bad as "errors". */
function samplesOf(bad: SeriesResult, total: SeriesResult): SeriesSamples {
  const problems = [...bad.warnings, ...total.warnings];
  const requests = new Map<string, number[]>();
  const times = new Map<string, number[]>();
  const errors = new Map<string, number[]>();
  for (const s of total.series) {
    if (!usable(s, problems)) continue;
    requests.set(seriesKey(s.metric), s.values);
    if (s.times && s.times.length === s.values.length) times.set(seriesKey(s.metric), s.times);
  }
  for (const s of bad.series) if (usable(s, problems)) errors.set(seriesKey(s.metric), s.values);
  return { requests, times, errors, problems, latencyProblems: [], series: total.series.length };
}

/** Both selectors of one version, every raw sample over the `ms` before `at`. */
export async function readCounter(
  client: PrometheusClient,
  check: CounterCheck,
  version: VersionPlaceholders,
  at: Date,
  ms: number,
  signal?: AbortSignal,
): Promise<SeriesSamples> {
  const [bad, total] = await Promise.all([
    client.querySeries(range(fillPlaceholders(check.bad, version), ms), at, signal),
    client.querySeries(range(fillPlaceholders(check.total, version), ms), at, signal),
  ]);
  return samplesOf(bad, total);
}

/** Each series' latest value at `at` (over the lookback), to count from. */
export async function counterStart(
  client: PrometheusClient,
  check: CounterCheck,
  version: VersionPlaceholders,
  at: Date,
  signal?: AbortSignal,
): Promise<StartValues> {
  return startValues(await readCounter(client, check, version, at, START_LOOKBACK_MS, signal));
}

/**
 * A version's bad and total events since its start values; undefined when Prometheus has no total
 * series for it (or the data is partial: warnings, NaN), which adds no window.
 */
export function counterCounts(
  start: StartValues,
  since: SeriesSamples,
  at?: { instant: number; spacingMs: number; startAt: number },
): CounterCounts | undefined {
  if (since.problems.length > 0 || start.problems.length > 0) return undefined;
  const counts = countsSince(start, since, at);
  return counts ? { bad: counts.errors, total: counts.requests } : undefined;
}

/** A threshold query's one value for a version now; undefined with no series or NaN. */
export async function readValue(
  client: PrometheusClient,
  query: string,
  version: VersionPlaceholders,
  at: Date,
  signal?: AbortSignal,
): Promise<{ value?: number; series: number }> {
  const result = await client.querySeries(fillPlaceholders(query, version), at, signal);
  const only = result.series.length === 1 ? result.series[0]?.values.at(-1) : undefined;
  return {
    ...(only !== undefined && Number.isFinite(only) && result.warnings.length === 0 ? { value: only } : {}),
    series: result.series.length,
  };
}
