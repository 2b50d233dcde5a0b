/**
 * Judge only fresh data (issue 20): counters that stopped moving because nothing scrapes them any
 * more look exactly like a version that served nothing, and "nothing served" lets a stage pass on
 * "no harm shown" and the last stage promote through `on-inconclusive`. Each read's sample times
 * say which it is:
 * - **stale**: a version's newest sample is older than the other version's newest by more than
 *   STALE_SCRAPES scrape intervals (its scrape target is down, its series went stale), or every
 *   series' newest sample is that old at the query time, with CLOCK_SKEW_MS for the runner's clock
 *   (a federation gap, Prometheus no longer scraping);
 * - **vanished**: a version had series (at the start of counting, or in an earlier read of this
 *   rollout) and none has a sample in this read's range (a target down since before the range, or
 *   a replica of an HA pair restarted with empty storage): Istio's series live as long as the pods;
 * - **stuck**: the canary's counters have not moved for so long that, given the N requests it
 *   served in the H ms of earlier reads, "none in the last D ms" has a chance below e^-20 at a
 *   constant rate: (H / (H + D))^N (an exporter that answers with fresh timestamps but frozen
 *   values). The canary's weight never falls during a rollout, so a constant rate is the least it
 *   can have; stable's legitimately stops when the canary reaches 100 %, so only the canary.
 * Each is "no data" for the read: the engine treats it as an outage of the metrics
 * (`on-unreachable`), never as no or too little traffic.
 */
import { latestTimes, type SeriesSamples } from "./counts.ts";

/** A series not scraped for this many intervals is stale (one missed scrape is not). */
export const STALE_SCRAPES = 3;
/** How far the runner's clock may be from Prometheus' before "old at the query time" is believed. */
export const CLOCK_SKEW_MS = 10_000;
/** "No request in that time" below this log-chance is not chance (e^-20, as for "no traffic"). */
export const STUCK_LOG_CHANCE = -20;

export interface FreshnessInput {
  now: number;
  /** The scrape interval as the samples show it; without it only "vanished" can be told. */
  spacingMs?: number;
  canary: SeriesSamples;
  stable: SeriesSamples;
  /** Whether each version had series at the start of counting or in an earlier read. */
  hadSeries: { canary: boolean; stable: boolean };
  /** The canary's requests and the time they took over earlier reads of this rollout. */
  canaryHistory?: { requests: number; ms: number };
  /** The same for both versions together. */
  allHistory?: { requests: number; ms: number };
  stableStart?: Map<string, number>;
  /** The canary's start values, to tell its first sample's increment. */
  canaryStart: Map<string, number>;
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/** What makes this read not fresh, one sentence each; empty when it is fresh. */
export function freshnessProblems(input: FreshnessInput): string[] {
  const problems: string[] = [];
  const versions = { canary: input.canary, stable: input.stable } as const;
  for (const [name, read] of Object.entries(versions)) {
    if (read.series === 0 && input.hadSeries[name as keyof typeof versions])
      problems.push(
        `the ${name}'s series at the start of counting have no sample since (its scrape target is down, or the Prometheus replica that answered has no history for them)`,
      );
  }
  const spacing = input.spacingMs;
  if (spacing === undefined) return problems;
  const staleMs = STALE_SCRAPES * spacing;
  const newest = { canary: newestOf(input.canary), stable: newestOf(input.stable) };
  const all = Math.max(newest.canary ?? -Infinity, newest.stable ?? -Infinity);
  if (Number.isFinite(all) && input.now - all > staleMs + CLOCK_SKEW_MS) {
    problems.push(
      `no series has a sample in the last ${seconds(input.now - all)} (scrape interval ${seconds(spacing)}): Prometheus is not scraping these targets, or a federation gap`,
    );
    return problems;
  }
  for (const name of ["canary", "stable"] as const) {
    const own = newest[name];
    if (own !== undefined && all - own > staleMs)
      problems.push(
        `the ${name}'s newest sample is ${seconds(all - own)} older than the other version's (scrape interval ${seconds(spacing)}): its scrape target is down or its series are stale`,
      );
  }
  const stuck = stuckFor(input.canary, input.canaryStart);
  if (stuckBeyondChance(stuck, staleMs, input.canaryHistory))
    problems.push(
      `the canary's counters have not moved for ${seconds(stuck ?? 0)} although it served ${input.canaryHistory?.requests} requests in the ${seconds(input.canaryHistory?.ms ?? 0)} before: a stuck exporter or lost samples, not a lack of traffic`,
    );
  else {
    // Both versions flat (at 100 % stable serves nothing, so a stuck canary leaves every counter
    // still): judged against the traffic both served before, whatever the weight.
    const stableStuck = input.stableStart ? stuckFor(input.stable, input.stableStart) : undefined;
    const both = stuck !== undefined && stableStuck !== undefined ? Math.min(stuck, stableStuck) : undefined;
    if (stuckBeyondChance(both, staleMs, input.allHistory))
      problems.push(
        `no counter of either version has moved for ${seconds(both ?? 0)} although they served ${input.allHistory?.requests} requests in the ${seconds(input.allHistory?.ms ?? 0)} before: a stuck exporter or lost samples, not a lack of traffic`,
      );
  }
  return problems;
}

/** log of (H / (H + D))^N: the chance that N requests at a constant rate all fell before D. */
function stuckBeyondChance(
  flatMs: number | undefined,
  staleMs: number,
  history: { requests: number; ms: number } | undefined,
): boolean {
  if (flatMs === undefined || flatMs <= staleMs || !history || history.ms <= 0 || history.requests <= 0)
    return false;
  return history.requests * Math.log(history.ms / (history.ms + flatMs)) <= STUCK_LOG_CHANCE;
}

function newestOf(read: SeriesSamples): number | undefined {
  const latest = latestTimes(read);
  return latest.length > 0 ? Math.max(...latest) : undefined;
}

/**
 * How long every request counter of the version has stayed flat up to its newest sample: from the
 * last sample that moved (or the range's first sample when none did) to the newest.
 */
function stuckFor(read: SeriesSamples, start: Map<string, number>): number | undefined {
  const times = read.times;
  if (!times || times.size === 0) return undefined;
  let lastMove = -Infinity;
  let first = Infinity;
  for (const [key, values] of read.requests) {
    const at = times.get(key);
    if (!at) return undefined;
    first = Math.min(first, at[0] ?? Infinity);
    let previous = start.get(key);
    values.forEach((value, i) => {
      if (previous === undefined || value !== previous) lastMove = Math.max(lastMove, at[i] ?? -Infinity);
      previous = value;
    });
  }
  const newest = newestOf(read);
  if (newest === undefined) return undefined;
  return newest - Math.max(lastMove, first);
}
