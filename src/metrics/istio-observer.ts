/**
 * The metrics port's Prometheus adapter (as Flagger has an observer per metrics backend): each
 * version's counter values at the start of a stage, and the exact counts since then, turned into
 * the judge's `Observation`. A failed read becomes an observation that says which failure it was,
 * never an exception, so the engine decides what a missing read means.
 */
import * as core from "@actions/core";
import type { Observation } from "../analysis/judge.ts";
import { PREFLIGHT_METRICS_BUDGET_MS, START_LOOKBACK_MS } from "../constants.ts";
import { errorMessage } from "../error-message.ts";
import { retry } from "../retry.ts";
import type { MetricsMark, MetricsPort } from "../rollout/ports.ts";
import {
  commonInstant,
  countsSince,
  firstCommonSample,
  grewLately,
  type SeriesSamples,
  type StartValues,
  sampleSpacing,
  samplesAfter,
  seriesSamples,
  startValues,
} from "./counts.ts";
import { freshnessProblems, STALE_SCRAPES } from "./freshness.ts";
import { latencyQuery, requestsQuery } from "./istio-queries.ts";
import { type PrometheusClient, PrometheusError } from "./prometheus-client.ts";
import { targetProblems, unionOfTargets, upQuery } from "./targets.ts";

/**
 * Counting from the first samples since a move at `movedAt`, lined up now that they are read: the
 * start values are set at that instant, and each read keeps the samples after it. Undefined while
 * nothing can be counted yet: within two intervals of the move no series may have been scraped
 * twice since (later, no sample since the move is stale data, as in any read).
 */
function lineUpAfterMove(
  start: MetricsStart,
  movedAt: number,
  read: [SeriesSamples, SeriesSamples],
  now: number,
  spacingMs: number | undefined,
): { from: number; canary: SeriesSamples; stable: SeriesSamples } | undefined {
  const t0 = spacingMs === undefined ? undefined : firstCommonSample(spacingMs, movedAt, read);
  const from = t0 ?? now;
  const [canary, stable] = read;
  const after = { canary: samplesAfter(canary, from), stable: samplesAfter(stable, from) };
  const scraped = [after.canary, after.stable].some((r) =>
    [...(r.times?.values() ?? [])].some((t) => t.length > 0),
  );
  if (!scraped && now - movedAt < 2 * (spacingMs ?? 0)) return undefined;
  const begin = (r: SeriesSamples) => (t0 === undefined ? startValues(r) : startValues(r, t0));
  start.canary = begin(canary);
  start.stable = begin(stable);
  return { from, ...after };
}

/** Nothing counted yet, in the shape a read's counts take. */
function zeroCounts(latencyThresholdMs: number | undefined) {
  return { requests: 0, errors: 0, ...(latencyThresholdMs !== undefined ? { slow: 0 } : {}) };
}

/** Where counting starts: each version's counters at one instant. */
export interface MetricsStart extends MetricsMark {
  canary: StartValues;
  stable: StartValues;
  /**
   * The instant (ms) both versions count from, when their samples were lined up at the start: each
   * series' value there is interpolated between its samples around it, so the first window covers
   * the same moments of each version (the range reads start here, to hold those samples).
   */
  countFrom?: number;
  /**
   * After a move of the weights (a step back): count from the first samples taken after this
   * instant (ms), lined up when they are read (see counts.ts, firstCommonSample); the start values
   * are empty until then.
   */
  firstSamplesAfter?: number;
}

export interface IstioSelectors {
  /** Full label matchers for the canary and the stable version (reporter and service included). */
  canary: string;
  stable: string;
}

export class IstioPrometheusObserver implements MetricsPort {
  private readonly client: PrometheusClient;
  private readonly selectors: IstioSelectors;
  private readonly latencyThresholdMs?: number;
  /** The scrape interval as the last read's samples showed it (a short range may show none). */
  private spacingMs?: number;
  /** The canary's requests over the reads so far, and the time up to the last that grew, for "stuck" counters. */
  private readonly canaryGrowth = new GrowthHistory();
  /** The same for both versions together. */
  private readonly allGrowth = new GrowthHistory();
  /** Which versions had series in a read of this rollout: series that vanish since are no data. */
  private hadSeries = { canary: false, stable: false };

  /** Count both versions up to one instant (off only to measure what it changes: npm run bench -- --no-align). */
  private readonly align: boolean;

  constructor(
    client: PrometheusClient,
    selectors: IstioSelectors,
    latencyThresholdMs?: number,
    options: { align?: boolean } = {},
  ) {
    this.client = client;
    this.selectors = selectors;
    this.latencyThresholdMs = latencyThresholdMs;
    this.align = options.align ?? true;
  }

  queries() {
    return { canary: requestsQuery(this.selectors.canary), stable: requestsQuery(this.selectors.stable) };
  }

  private async read(
    selector: string,
    at: Date,
    windowMs?: number,
    signal?: AbortSignal,
  ): Promise<SeriesSamples> {
    const requests = await this.client.querySeries(requestsQuery(selector, windowMs), at, signal);
    const latency =
      this.latencyThresholdMs !== undefined
        ? await this.client.querySeries(latencyQuery(selector, this.latencyThresholdMs, windowMs), at, signal)
        : undefined;
    return seriesSamples(requests.series, latency?.series, requests.warnings, latency?.warnings ?? []);
  }

  async start(at: Date, signal?: AbortSignal, options: { afterMove?: boolean } = {}): Promise<MetricsStart> {
    if (options.afterMove) {
      const none = startValues(seriesSamples([]));
      return { at, canary: none, stable: none, firstSamplesAfter: at.getTime() };
    }
    // Each series' latest sample over Prometheus' lookback, read as a range: an instant query
    // drops a series for one interval after a failed scrape (its staleness marker), and that
    // series would then count in full, as if born after the start.
    const [canary, stable] = await Promise.all([
      this.read(this.selectors.canary, at, START_LOOKBACK_MS, signal),
      this.read(this.selectors.stable, at, START_LOOKBACK_MS, signal),
    ]);
    // A start with unusable request counters would make every later read partial: refuse it, so
    // the engine takes the mark again at its next read instead of judging nothing for a stage.
    const problems = [...canary.problems, ...stable.problems];
    if (problems.length > 0)
      throw Object.assign(
        new Error(`the counters to count from were partial (${[...new Set(problems)].join("; ")})`),
        {
          problem: "partial",
        },
      );
    this.spacingMs = sampleSpacing(canary, stable) ?? this.spacingMs;
    // Each series' latest sample was taken at its own phase: counting from each would make the
    // first window of each version start at different moments. Both count from one instant
    // instead, the earliest latest-sample of the series scraped on time (as every later read).
    const countFrom =
      this.align && this.spacingMs !== undefined
        ? commonInstant(this.spacingMs, [canary, stable])
        : undefined;
    return {
      at,
      canary: startValues(canary, countFrom),
      stable: startValues(stable, countFrom),
      ...(countFrom !== undefined ? { countFrom } : {}),
    };
  }

  async observeSince(mark: MetricsMark, now: Date, signal?: AbortSignal): Promise<Observation> {
    const start = mark as MetricsStart;
    let from = start.firstSamplesAfter ?? start.countFrom ?? start.at.getTime();
    const windowMs = now.getTime() - from;
    try {
      const read = await Promise.all([
        this.read(this.selectors.canary, now, windowMs, signal),
        this.read(this.selectors.stable, now, windowMs, signal),
      ]);
      const spacingMs = sampleSpacing(...read) ?? this.spacingMs;
      this.spacingMs = spacingMs;
      let [canary, stable] = read;
      if (start.firstSamplesAfter !== undefined) {
        const lined = lineUpAfterMove(start, start.firstSamplesAfter, read, now.getTime(), spacingMs);
        if (!lined) {
          const zero = zeroCounts(this.latencyThresholdMs);
          return { ok: true, canary: zero, stable: { ...zero }, partial: [] };
        }
        ({ from, canary, stable } = lined);
      }
      const stale = freshnessProblems({
        now: now.getTime(),
        spacingMs,
        canary,
        stable,
        hadSeries: {
          canary: start.canary.requests.size > 0 || this.hadSeries.canary,
          stable: start.stable.requests.size > 0 || this.hadSeries.stable,
        },
        canaryStart: start.canary.requests,
        canaryHistory: this.canaryGrowth.history,
        allHistory: this.allGrowth.history,
        stableStart: start.stable.requests,
      });
      if (stale.length === 0 && spacingMs !== undefined)
        stale.push(...(await this.targetsDown(start, { canary, stable }, spacingMs, now, signal)));
      if (stale.length > 0) return { ok: false, problem: "stale", message: stale.join("; ") };
      this.hadSeries = {
        canary: this.hadSeries.canary || canary.series > 0,
        stable: this.hadSeries.stable || stable.series > 0,
      };
      const partial = distinctProblems("problems", start.canary, start.stable, canary, stable);
      const partialLatency = distinctProblems("latencyProblems", start.canary, start.stable, canary, stable);
      // While both versions serve, both are counted up to one instant, so each read's window covers
      // the same moments of each. When stable serves nothing (the canary at 100 %) there is nothing
      // to line up with: each series counts to its latest sample, exactly, rather than spreading
      // its last increment over the scrape interval, which would make a short incident look longer.
      const instant =
        spacingMs === undefined || !this.align || !grewLately(stable, start.stable.requests)
          ? undefined
          : commonInstant(
              spacingMs,
              [canary, stable],
              Math.max(from, this.canaryGrowth.lastInstant(mark) ?? from),
            );
      const at =
        instant === undefined || spacingMs === undefined ? undefined : { instant, spacingMs, startAt: from };
      const counts = {
        canary: countsSince(start.canary, canary, at),
        stable: countsSince(start.stable, stable, at),
      };
      const stableAhead = at ? countsSince(start.stable, stable) : undefined;
      const readAt = instant ?? now.getTime();
      this.canaryGrowth.add(mark, counts.canary?.requests ?? 0, readAt);
      this.allGrowth.add(mark, (counts.canary?.requests ?? 0) + (counts.stable?.requests ?? 0), readAt);
      core.debug(
        `counts over ${windowMs} ms since ${start.at.toISOString()}${instant === undefined ? "" : ` up to ${new Date(instant).toISOString()}`}: ${JSON.stringify(counts)}`,
      );
      return {
        ok: true,
        ...counts,
        ...(stableAhead ? { stableAhead } : {}),
        partial,
        ...(partialLatency.length > 0 ? { partialLatency } : {}),
      };
    } catch (error) {
      return failedObservation(error);
    }
  }

  /**
   * Each version's scrape targets (at the start and in this read) against their `up` samples over
   * the last STALE_SCRAPES intervals: a target down, or a version whose targets are all gone, is no
   * data (see targets.ts).
   */
  private async targetsDown(
    start: MetricsStart,
    reads: Record<"canary" | "stable", SeriesSamples>,
    spacingMs: number,
    now: Date,
    signal?: AbortSignal,
  ): Promise<string[]> {
    const targets = {
      canary: unionOfTargets(start.canary.targets ?? [], reads.canary.targets ?? []),
      stable: unionOfTargets(start.stable.targets ?? [], reads.stable.targets ?? []),
    };
    const query = upQuery([...targets.canary, ...targets.stable], STALE_SCRAPES * spacingMs);
    if (query === undefined) return [];
    const up = await this.client.querySeries(query, now, signal);
    return targetProblems(targets, up.series);
  }

  /**
   * Preflight: one slow or lost answer is no reason to refuse a rollout, so what is transient is
   * tried again, three times at most within PREFLIGHT_METRICS_BUDGET_MS.
   */
  async checkReady(): Promise<void> {
    const stable = await retry(() => this.read(this.selectors.stable, new Date()), {
      budgetMs: PREFLIGHT_METRICS_BUDGET_MS,
      maxAttempts: 3,
    });
    if (stable.series === 0) {
      throw new Error(
        `Prometheus has no istio_requests_total series for the stable version {${this.selectors.stable}}: check the reporter, the selectors, and that Prometheus scrapes Istio's metrics`,
      );
    }
  }
}

/** The problems under `key` of every read, each once, in the order they were first named. */
function distinctProblems(
  key: "problems" | "latencyProblems",
  ...reads: Array<Pick<StartValues, "problems" | "latencyProblems">>
): string[] {
  return [...new Set(reads.flatMap((read) => read[key]))];
}

export function failedObservation(error: unknown): Observation {
  if (error instanceof PrometheusError) return { ok: false, problem: error.problem, message: error.message };
  return {
    ok: false,
    problem: "unreachable",
    message: errorMessage(error),
  };
}

/**
 * Requests read over a rollout, and the time up to the last read in which they grew (the flat
 * time since is what "stuck" counters are judged on).
 */
class GrowthHistory {
  readonly history = { requests: 0, ms: 0 };
  private flatMs = 0;
  private last?: { mark: MetricsMark; requests: number; at: number };

  /** The instant of the last read since `mark`, if any (counts never go back before it). */
  lastInstant(mark: MetricsMark): number | undefined {
    return this.last?.mark === mark ? this.last.at : undefined;
  }

  /** A read's cumulative requests since `mark`, counted up to `at`. */
  add(mark: MetricsMark, requests: number, at: number): void {
    const last = this.last?.mark === mark ? this.last : { requests: 0, at: mark.at.getTime() };
    this.flatMs += Math.max(0, at - last.at);
    if (requests > last.requests) {
      this.history.requests += requests - last.requests;
      this.history.ms += this.flatMs;
      this.flatMs = 0;
    }
    this.last = { mark, requests: Math.max(requests, last.requests), at: Math.max(at, last.at) };
  }
}
