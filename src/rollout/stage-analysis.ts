/**
 * One stage's analysis: from the weight change, read the counts every interval, add each interval's
 * window to the canary's evidence, ask the judge, and watch that nobody else changed the weights.
 * Returns how the stage ended; the engine acts on it.
 */
import type { Evidence } from "../analysis/evidence.ts";
import { judgeCheck, splitCheck, type Verdict } from "../analysis/judge.ts";
import type { EvidenceSettings, JudgeSettings, VersionCounts } from "../analysis/types.ts";
import { errorMessage } from "../error-message.ts";
import { abortable } from "./abortable.ts";
import type { StageDecision } from "./ending.ts";
import type {
  Clock,
  EventSink,
  MetricsMark,
  MetricsPort,
  TrafficPort,
  TrafficView,
  UnmanagedRoute,
} from "./ports.ts";
import { StepBack, type StepBackOption } from "./step-back.ts";
import { describeEdit, PersonEditError, weightsOtherThan } from "./transitions.ts";

/** A split this far outside chance means traffic is not going where the weights say. */
const SPLIT_Z_ALARM = 5;
/** Metrics failing for this many intervals, counted from the last good read, is an outage. */
const UNREACHABLE_INTERVALS = 3;

export interface StageAnalysisPorts {
  metrics: MetricsPort;
  traffic: TrafficPort;
  clock: Clock;
  events: EventSink;
  signal?: AbortSignal;
}

export interface StageAnalysisInput {
  index: number;
  weight: number;
  /**
   * An adopted split's weights, route by route as found: each route must keep its own (a person's
   * split made meanwhile wins). Unset: every route at `weight`.
   */
  foundWeights?: readonly number[];
  final: boolean;
  /** When the weight was written: counting and stage time start here. */
  changedAt: number;
  /** Counters taken just before the weight change; undefined when they could not be read. */
  mark?: MetricsMark;
  evidence: Evidence;
  intervalMs: number;
  /** Proxies' propagation plus one scrape: counts before it mix in requests at the old weight. */
  settleMs: number;
  judge: JudgeSettings;
  evidenceSettings: EvidenceSettings;
  /**
   * At 100 %: the weight to step back to when the canary crosses the limit with no stable to compare
   * (the stage before), and the write that moves the weights (it throws PersonEditError on a
   * person's edit). Absent: no step back (a single stage, or a stage below 100).
   */
  stepBack?: StepBackOption;
}

export interface StageAnalysis {
  verdict?: Verdict;
  decision: StageDecision;
  reason: string;
  evidence: Evidence;
  /** For `halted`: the weights found. */
  found?: TrafficView;
  /** The weight on the routes when the stage ended (below the stage's after a step back). */
  weight: number;
}

/**
 * Routes the action does not manage that send traffic to stable lower the canary's share below its
 * weight (at 100 % stable still serves them); to the canary, raise it. A share off in that
 * direction is what the routes say, not a fault.
 */
function shareExplained(zScore: number, unmanaged: readonly UnmanagedRoute[]): boolean {
  const side = zScore < 0 ? "stable" : "canary";
  return unmanaged.some((r) => r.to.includes(side));
}

function shareWarning(
  split: { observedShare: number; zScore: number },
  weight: number,
  unmanaged: readonly UnmanagedRoute[],
): string {
  const share = `The canary got ${(split.observedShare * 100).toFixed(1)} % of the requests both versions served at weight ${weight} %, far outside chance (z = ${split.zScore.toFixed(1)})`;
  const others =
    unmanaged.length > 0
      ? `; routes the action does not manage also send traffic: ${unmanaged.map((r) => `${r.route} (to ${r.to.join(" and ")})`).join(", ")}`
      : "";
  const why =
    split.zScore > 0
      ? "does a mirror, another VirtualService or a caller outside the mesh send the canary requests the weights do not?"
      : "is the VirtualService applied to this traffic (its hosts and gateways), and do the pods have their sidecar?";
  return `${share}${others}: ${why}`;
}

const zero = (slow: boolean): VersionCounts => ({ requests: 0, errors: 0, ...(slow ? { slow: 0 } : {}) });

/** What `now` adds to `before`, never negative (replicas of an HA pair may answer a little behind). */
function delta(now: VersionCounts | undefined, before: VersionCounts): VersionCounts {
  const d = (a: number | undefined, b: number | undefined) => Math.max(0, (a ?? 0) - (b ?? 0));
  return {
    requests: d(now?.requests, before.requests),
    errors: d(now?.errors, before.errors),
    ...(now?.slow !== undefined ? { slow: d(now.slow, before.slow) } : {}),
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

export async function analyseStage(
  ports: StageAnalysisPorts,
  input: StageAnalysisInput,
): Promise<StageAnalysis> {
  const { metrics, traffic, clock, signal } = ports;
  const { index, intervalMs } = input;
  const at = new StepBack(input, input.evidenceSettings, input.stepBack);
  const slow = input.evidence.latency !== undefined;
  let evidence = input.evidence;
  let mark = input.mark;
  let seen = { canary: zero(slow), stable: zero(slow) };
  let failingSince: number | undefined;
  let alarmed = false;
  /**
   * The counts at the first read after settle-time: the traffic-share check counts from here. What
   * came before mixes requests served at the previous weight (the mark's sample is up to one
   * scrape old, and proxies take a moment to get the new weights) into this stage's share.
   */
  let splitFrom: { canary: VersionCounts; stable: VersionCounts } | undefined;
  let unmanaged: UnmanagedRoute[] = [];
  let check = 0;
  let lastRead = input.changedAt;
  /** When the metrics last answered with data: an outage began after it. */
  let lastGood = input.changedAt;
  for (;;) {
    // After a failed read the next one comes sooner, so an outage is declared on time.
    const wait =
      failingSince === undefined
        ? intervalMs
        : Math.max(
            0,
            Math.min(intervalMs, failingSince + UNREACHABLE_INTERVALS * intervalMs - clock.now().getTime()),
          );
    await clock.sleep(wait, signal);
    const issuedAt = clock.now().getTime();
    check += 1;
    const { weight } = at;
    const elapsedMs = issuedAt - at.changedAt;

    const found = await abortable(traffic.read(signal), signal).catch((error: unknown) => {
      if (signal?.aborted) throw error;
      return undefined; // a failed read is retried at the next interval; it says nothing of the canary
    });
    if (found && edited(found, weight, input.foundWeights))
      return { decision: "halted", reason: describeEdit(found, weight), evidence, found, weight };

    let verdict: Verdict;
    if (!mark) {
      try {
        mark = await abortable(metrics.start(clock.now(), signal), signal);
        verdict = { decision: "continue", rule: "waiting", reason: "Counting from now", signals: [] };
        failingSince = undefined;
      } catch (error) {
        if (signal?.aborted) throw error;
        const message = errorMessage(error);
        const problem = (error as { problem?: string }).problem ?? "unreachable";
        verdict = judgeCheck(
          {
            weight,
            final: input.final && !at.below,
            elapsedMs,
            observation: { ok: false, problem, message },
            evidence,
            stableServed: false,
          },
          input.judge,
        );
      }
    } else {
      const observation = await abortable(metrics.observeSince(mark, clock.now(), signal), signal);
      let stableServed = false;
      let stableAboveLimit = false;
      if (observation.ok && observation.partial.length === 0) {
        // At 100 % stable serves nothing: what a read still counts for it was served before the
        // weight change, not at the same moments as the canary's requests, so it is no comparison.
        const stable = weight < 100 ? delta(observation.stable, seen.stable) : undefined;
        const window = { canary: delta(observation.canary, seen.canary), stable, ms: issuedAt - lastRead };
        // Partial latency data leaves the error counts usable: judge errors, skip latency.
        if (observation.partialLatency?.length) {
          delete window.canary.slow;
          delete window.stable?.slow;
        }
        lastRead = issuedAt;
        stableServed = (stable?.requests ?? 0) > 0;
        stableAboveLimit = aboveLimit(stable, input.evidenceSettings.maxErrorRate);
        evidence = at.add(evidence, window, issuedAt);
        seen = {
          canary: highest(observation.canary, seen.canary),
          stable: highest(observation.stable, seen.stable),
        };
      }
      const stepBackTo = at.offer();
      verdict = !at.judges(issuedAt)
        ? {
            decision: "continue",
            rule: "waiting",
            reason: `Stepped back to ${weight} %: judging beside stable from settle-time on`,
            signals: [],
          }
        : judgeCheck(
            {
              weight,
              final: input.final && !at.below,
              elapsedMs,
              observation,
              evidence,
              stableServed,
              check,
              stableAboveLimit,
              ...(stepBackTo !== undefined ? { stepBackTo } : {}),
            },
            input.judge,
          );
    }
    await ports.events.emit({
      type: "analysis",
      at: clock.now().toISOString(),
      stage: index,
      weight,
      elapsedMs,
      verdict,
    });

    // An outage is timed from when it began: after the last read that answered with data. No
    // series at all from a Prometheus that answers, or partial data, is no data, the same as no
    // answer.
    if (verdict.rule === "metrics-error" || verdict.rule === "no-series" || verdict.rule === "partial-data") {
      failingSince ??= lastGood;
      const downMs = clock.now().getTime() - failingSince;
      if (downMs >= UNREACHABLE_INTERVALS * intervalMs && verdict.decision === "continue") {
        return {
          verdict,
          decision: "unreachable",
          reason: `${verdict.reason} (failing for ${Math.round(downMs / 1000)} s)`,
          evidence,
          weight,
        };
      }
    } else {
      failingSince = undefined;
      lastGood = issuedAt;
    }

    if (found) unmanaged = found.unmanaged;
    let split: ReturnType<typeof splitCheck>;
    // Routes at different weights (an adopted split) have no one share to expect.
    if (splitFrom && !input.foundWeights?.some((w) => w !== weight))
      split = splitCheck(weight, delta(seen.canary, splitFrom.canary), delta(seen.stable, splitFrom.stable));
    else if (elapsedMs >= input.settleMs && mark) splitFrom = seen;
    if (
      !alarmed &&
      split &&
      Math.abs(split.zScore) > SPLIT_Z_ALARM &&
      !shareExplained(split.zScore, unmanaged) &&
      (splitFrom
        ? delta(seen.canary, splitFrom.canary).requests + delta(seen.stable, splitFrom.stable).requests
        : 0) >= 200
    ) {
      alarmed = true;
      await ports.events.emit({
        type: "warning",
        at: clock.now().toISOString(),
        message: shareWarning(split, weight, unmanaged),
      });
    }
    // A step back, or back up after one: the weight changes and the stage's time starts again.
    const move = at.moveFor(verdict);
    if (move !== undefined) {
      try {
        await at.move(move, evidence, verdict.reason, clock.now().getTime());
      } catch (error) {
        if (error instanceof PersonEditError)
          return { decision: "halted", reason: error.message, evidence, found: error.view, weight };
        throw error;
      }
      check = 0;
      splitFrom = undefined;
      continue;
    }
    if (verdict.decision !== "continue")
      return { verdict, decision: verdict.decision, reason: verdict.reason, evidence, weight };
  }
}

/** Someone else's edit: a route at another weight than this run's, or than the one found on it. */
function edited(view: TrafficView, weight: number, foundWeights: readonly number[] | undefined): boolean {
  if (!foundWeights) return weightsOtherThan(view, [weight]);
  return view.weights.length !== foundWeights.length || view.weights.some((w, i) => w !== foundWeights[i]);
}

/** A window in which stable's own rate was above the limit, over enough requests to mean it. */
function aboveLimit(stable: VersionCounts | undefined, limit: number): boolean {
  return stable !== undefined && stable.requests * limit >= 1 && stable.errors > stable.requests * limit;
}
