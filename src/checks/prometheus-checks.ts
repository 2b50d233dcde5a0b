/**
 * The custom checks port over Prometheus (issue 23): at every read of a stage, each counter check's
 * counts since the latest weight change (the stage's, or a step back or the return up inside it; so
 * each read's window is what each version served since the read before, at one weight), added to
 * the check's own evidence; each threshold check's value now. The evidence lives for this run: a
 * later run (`command: promote` after a pause) starts it afresh.
 */

import { errorMessage } from "../error-message.ts";
import type { VersionPlaceholders } from "../inputs/checks.ts";
import type { CustomCheckDefinition } from "../inputs/types.ts";
import {
  commonInstant,
  grewLately,
  type SeriesSamples,
  type StartValues,
  sampleSpacing,
} from "../metrics/counts.ts";
import type { PrometheusClient } from "../metrics/prometheus-client.ts";
import type { CustomCheckResult, CustomChecksPort, CustomChecksRead } from "../rollout/custom-checks.ts";
import {
  addCounterWindow,
  addThresholdRead,
  type CounterCheck,
  type CounterCounts,
  type CounterState,
  emptyCounterState,
  judgeCounter,
  judgeThreshold,
  type ThresholdCheck,
  type ThresholdState,
} from "./judge.ts";
import { counterCounts, counterStart, readCounter, readValue } from "./reads.ts";

export interface CheckVersions {
  canary: VersionPlaceholders;
  stable: VersionPlaceholders;
}

/** Where counting starts: each counter check's values at the latest weight change. */
interface StageMark {
  changedAt: number;
  starts: Map<string, { canary: StartValues; stable: StartValues }>;
}

/** What a counter check had counted since the mark, as of the last read. */
interface Counted {
  canary: CounterCounts;
  stable: CounterCounts;
}

const zero = (): Counted => ({ canary: { bad: 0, total: 0 }, stable: { bad: 0, total: 0 } });

/** The part of `now` not counted before (a count never goes back: a dip is another replica's lag). */
function since(before: CounterCounts, now: CounterCounts | undefined): CounterCounts {
  return {
    bad: Math.max(0, (now?.bad ?? before.bad) - before.bad),
    total: Math.max(0, (now?.total ?? before.total) - before.total),
  };
}

function atLeast(before: CounterCounts, now: CounterCounts | undefined): CounterCounts {
  return { bad: Math.max(before.bad, now?.bad ?? 0), total: Math.max(before.total, now?.total ?? 0) };
}

export class PrometheusChecks implements CustomChecksPort {
  private mark?: StageMark;
  private readonly counted = new Map<string, Counted>();
  private readonly counters = new Map<string, CounterState>();
  private readonly thresholds = new Map<string, ThresholdState>();
  private lastReadAt = 0;
  /** Each counter check's last common instant in this stage (counts never go back before it). */
  private readonly instants = new Map<string, number>();

  private readonly client: PrometheusClient;
  private readonly checks: readonly CustomCheckDefinition[];
  private readonly versions: CheckVersions;
  /** α of each fail-mode test (./budget.ts); report-only checks are judged at the same level. */
  private readonly alpha: number;

  constructor(
    client: PrometheusClient,
    checks: readonly CustomCheckDefinition[],
    versions: CheckVersions,
    alpha: number,
  ) {
    this.client = client;
    this.checks = checks;
    this.versions = versions;
    this.alpha = alpha;
  }

  async judge(read: CustomChecksRead, signal?: AbortSignal): Promise<CustomCheckResult[]> {
    // A new weight (a stage's, or a move inside one) restarts the counting, as the built-in counts
    // restart. The evidence (`counters`) and the threshold streaks carry on across it, as the
    // built-in evidence does: each window is judged against stable at the same moments whatever the
    // weight, and the tests are anytime-valid over the run's windows; starting them afresh would
    // forget harm already shown, and a canary that fails a check at 100 % would start over clean.
    if (this.mark?.changedAt !== read.changedAt) {
      this.mark = { changedAt: read.changedAt, starts: new Map() };
      this.counted.clear();
      this.instants.clear();
      this.lastReadAt = read.changedAt;
    }
    const windowMs = Math.max(0, read.now.getTime() - this.lastReadAt);
    this.lastReadAt = read.now.getTime();
    const results: CustomCheckResult[] = [];
    for (const check of this.checks) {
      try {
        results.push(
          check.kind === "counter"
            ? await this.judgeCounter(check, this.mark, read.now, windowMs, signal)
            : await this.judgeThreshold(check, read.now, signal),
        );
      } catch (error) {
        if (signal?.aborted) throw error;
        results.push(this.unread(check, errorMessage(error)));
      }
    }
    return results;
  }

  private async judgeCounter(
    check: CounterCheck,
    mark: StageMark,
    now: Date,
    windowMs: number,
    signal?: AbortSignal,
  ): Promise<CustomCheckResult> {
    const state = this.counters.get(check.name) ?? emptyCounterState();
    let start = mark.starts.get(check.name);
    if (!start) {
      // Taken at the weight change itself (Prometheus answers for a past instant), so requests
      // served between the change and this read count.
      const at = new Date(mark.changedAt);
      const [canary, stable] = await Promise.all([
        counterStart(this.client, check, this.versions.canary, at, signal),
        counterStart(this.client, check, this.versions.stable, at, signal),
      ]);
      start = { canary, stable };
      mark.starts.set(check.name, start);
    }
    const rangeMs = now.getTime() - mark.changedAt;
    const [canaryRead, stableRead] = await Promise.all([
      readCounter(this.client, check, this.versions.canary, now, rangeMs, signal),
      readCounter(this.client, check, this.versions.stable, now, rangeMs, signal),
    ]);
    const at = this.commonInstant(check.name, mark, canaryRead, stableRead, start.stable);
    const canary = counterCounts(start.canary, canaryRead, at);
    const stable = counterCounts(start.stable, stableRead, at);
    const before = this.counted.get(check.name) ?? zero();
    if (canaryRead.problems.length > 0 || stableRead.problems.length > 0) {
      const partial = judgeCounter(check, state, this.alpha);
      return { ...partial, summary: `${partial.summary}; this read was partial and adds nothing` };
    }
    const next = addCounterWindow(
      check,
      state,
      {
        canary: since(before.canary, canary),
        ...(stable ? { stable: since(before.stable, stable) } : {}),
        ms: windowMs,
      },
      this.alpha,
    );
    this.counted.set(check.name, {
      canary: atLeast(before.canary, canary),
      stable: atLeast(before.stable, stable),
    });
    this.counters.set(check.name, next);
    return judgeCounter(check, next, this.alpha);
  }

  /**
   * While stable's events grow, both versions are counted up to one instant (as the built-in
   * reader does, src/metrics/counts.ts), so the ratio test compares the same moments of each:
   * the targets are scraped at their own offsets. Never before the previous read's instant.
   */
  private commonInstant(
    name: string,
    mark: StageMark,
    canary: SeriesSamples,
    stable: SeriesSamples,
    stableStart: StartValues,
  ): { instant: number; spacingMs: number; startAt: number } | undefined {
    const spacingMs = sampleSpacing(canary, stable);
    if (spacingMs === undefined || !grewLately(stable, stableStart.requests)) return undefined;
    const instant = commonInstant(spacingMs, [canary, stable], this.instants.get(name));
    if (instant === undefined) return undefined;
    this.instants.set(name, instant);
    return { instant, spacingMs, startAt: mark.changedAt };
  }

  private async judgeThreshold(
    check: ThresholdCheck,
    now: Date,
    signal?: AbortSignal,
  ): Promise<CustomCheckResult> {
    const [canary, stable] = await Promise.all([
      readValue(this.client, check.query, this.versions.canary, now, signal),
      readValue(this.client, check.query, this.versions.stable, now, signal),
    ]);
    const state = addThresholdRead(check, this.thresholds.get(check.name) ?? { breaches: 0 }, {
      ...(canary.value !== undefined ? { value: canary.value } : {}),
      ...(stable.value !== undefined ? { stableValue: stable.value } : {}),
    });
    this.thresholds.set(check.name, state);
    const result = judgeThreshold(check, state);
    return canary.series > 1
      ? {
          ...result,
          summary: `${result.summary}; the query returned ${canary.series} series for the canary (aggregate it to one)`,
        }
      : result;
  }

  /** A check whose read failed: its standing as of the reads before, and why this one added nothing. */
  private unread(check: CustomCheckDefinition, why: string): CustomCheckResult {
    const result =
      check.kind === "counter"
        ? judgeCounter(check, this.counters.get(check.name) ?? emptyCounterState(), this.alpha)
        : judgeThreshold(check, this.thresholds.get(check.name) ?? { breaches: 0 });
    return {
      ...result,
      status: result.status === "failing" ? "failing" : "no-data",
      summary: `${result.summary}; not read: ${why}`,
    };
  }
}
