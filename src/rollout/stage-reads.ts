/**
 * The arithmetic of a stage's reads (src/rollout/stage-analysis.ts): the window each read adds to
 * the counts before it, and the clock of a metrics outage.
 */
import type { WindowCounts } from "../analysis/evidence.ts";
import { meaningfullyAbove } from "../analysis/incident-edges.ts";
import type { Observation, Verdict } from "../analysis/judge.ts";
import type { VersionCounts } from "../analysis/types.ts";
import type { Clock } from "./ports.ts";

/** Metrics failing for this many intervals, counted from the last good read, is an outage. */
const UNREACHABLE_INTERVALS = 3;

/** Each version's highest counts read so far in a stage (counted from the stage's mark). */
export interface CountedSoFar {
  canary: VersionCounts;
  stable: VersionCounts;
}

export function nothingCounted(latency: boolean): CountedSoFar {
  const zero = (): VersionCounts => ({ requests: 0, errors: 0, ...(latency ? { slow: 0 } : {}) });
  return { canary: zero(), stable: zero() };
}

/** What `now` adds to `before`, never negative (replicas of an HA pair may answer a little behind). */
export function delta(now: VersionCounts | undefined, before: VersionCounts): VersionCounts {
  const gain = (after: number | undefined, prior: number | undefined) =>
    Math.max(0, (after ?? 0) - (prior ?? 0));
  return {
    requests: gain(now?.requests, before.requests),
    errors: gain(now?.errors, before.errors),
    ...(now?.slow !== undefined ? { slow: gain(now.slow, before.slow) } : {}),
  };
}

function highest(now: VersionCounts | undefined, before: VersionCounts): VersionCounts {
  if (!now) return before;
  return {
    requests: Math.max(now.requests, before.requests),
    errors: Math.max(now.errors, before.errors),
    ...(now.slow !== undefined || before.slow !== undefined
      ? { slow: Math.max(now.slow ?? 0, before.slow ?? 0) }
      : {}),
  };
}

/** The counts so far once a read is taken in (a replica behind never lowers them). */
export function countedAfter(
  observation: { canary?: VersionCounts; stable?: VersionCounts },
  before: CountedSoFar,
): CountedSoFar {
  return {
    canary: highest(observation.canary, before.canary),
    stable: highest(observation.stable, before.stable),
  };
}

/** The window a complete read adds to the counts before it, lasting `ms`. */
export function windowOf(
  observation: Extract<Observation, { ok: true }>,
  before: CountedSoFar,
  weight: number,
  ms: number,
): WindowCounts {
  // At 100 % stable serves nothing: what a read still counts for it was served before the
  // weight change, not at the same moments as the canary's requests, so it is no comparison.
  const stable = weight < 100 ? delta(observation.stable, before.stable) : undefined;
  const stableAhead =
    stable && observation.stableAhead ? delta(observation.stableAhead, before.stable) : undefined;
  const window: WindowCounts = {
    canary: delta(observation.canary, before.canary),
    ...(stable ? { stable } : {}),
    ...(stableAhead ? { stableAhead } : {}),
    ms,
  };
  // Partial latency data leaves the error counts usable: judge errors, skip latency.
  if (observation.partialLatency?.length) {
    delete window.canary.slow;
    delete window.stable?.slow;
    delete window.stableAhead?.slow;
  }
  return window;
}

/** A window in which stable's own rate was above the limit, over enough requests to mean it. */
export function stableAboveLimit(stable: VersionCounts | undefined, limit: number): boolean {
  return stable !== undefined && meaningfullyAbove({ n: stable.requests, k: stable.errors }, limit);
}

/**
 * When the metrics began failing, timed from the last read that answered with data. No series at
 * all from a Prometheus that answers, or partial data, is no data, the same as no answer.
 */
export class MetricsOutage {
  private failingSince: number | undefined;
  /** When the metrics last answered with data: an outage began after it. */
  private lastGood: number;
  private readonly clock: Clock;
  private readonly intervalMs: number;

  constructor(clock: Clock, intervalMs: number, changedAt: number) {
    this.clock = clock;
    this.intervalMs = intervalMs;
    this.lastGood = changedAt;
  }

  /** The wait before the next read: after a failed read it comes sooner, so an outage is declared on time. */
  nextWaitMs(): number {
    if (this.failingSince === undefined) return this.intervalMs;
    const declaredAt = this.failingSince + UNREACHABLE_INTERVALS * this.intervalMs;
    return Math.max(0, Math.min(this.intervalMs, declaredAt - this.clock.now().getTime()));
  }

  /** After a read issued at `issuedAt`: how long the metrics have been down when that is an outage. */
  downMsAfter(verdict: Verdict, issuedAt: number): number | undefined {
    if (verdict.rule !== "metrics-error" && verdict.rule !== "no-series" && verdict.rule !== "partial-data") {
      this.failingSince = undefined;
      this.lastGood = issuedAt;
      return undefined;
    }
    this.failingSince ??= this.lastGood;
    const downMs = this.clock.now().getTime() - this.failingSince;
    const outage = downMs >= UNREACHABLE_INTERVALS * this.intervalMs && verdict.decision === "continue";
    return outage ? downMs : undefined;
  }
}
