/**
 * The evidence about one canary version, carried across stages and across runs (pause, then
 * promote): pure, windows of exact counts in, e-values out. See docs/analysis.md.
 *
 * Every test here is an e-process: a non-negative supermartingale under its null hypothesis, so by
 * Ville's inequality the chance it EVER reaches 1/α is at most α, however often it is consulted,
 * however long a stage or a pause lasts, and whatever the traffic does. Per signal (errors; slow
 * requests when a latency threshold is set) three tests run side by side:
 *
 * - harm by the limit ("abs"): H0 "the canary's rate ≤ the limit L". A mixture of likelihood ratios
 *   of alternatives above L (1.5·L … 20·L), on the canary's counts in *clean* windows: windows in
 *   which the stable version, serving at the same moments, was within the limit too. An incident
 *   that raises both versions above the limit is therefore not counted against the canary; with no
 *   stable traffic (weight 100) every window counts.
 * - harm against stable ("rel"): H0 "the canary's rate ≤ R·stable's rate" (R: max-ratio-to-stable).
 *   Conditional on the errors both versions saw in a window, the canary's share of them is
 *   Binomial(E, q) with q = n_c·r / (n_c·r + n_s), where r is the ratio of their rates: no nuisance
 *   rate is estimated or plugged in, and an incident that multiplies both rates leaves q unchanged.
 *   A mixture over alternatives r = 1.5·R … 16·R.
 * Both harm tests are mixtures over the window a change began in (./change-point.ts), so a canary
 * that goes bad after minutes of health is caught as fast as one bad from the start.
 * - safety ("safe"): H0 "the canary's rate ≥ L", on the same clean windows. A likelihood ratio of an alternative below L chosen
 *   from the windows before (a predictable plug-in, which keeps the supermartingale property), so
 *   the proof adapts to the canary's actual rate. Promotion needs it at 1/β.
 */
import { type ChangePointState, changePointStep, limitChangeLogE } from "./change-point.ts";
import { incidentEdge, incidentEdgeAround, meaningfullyAbove } from "./incident-edges.ts";
import { aboveLimitLogE, bernoulliLlr, usableAbsAlternatives } from "./likelihood.ts";
import type { EvidenceSettings, VersionCounts } from "./types.ts";

/** One interval's exact counts: what each version served between two reads. */
export interface WindowCounts {
  canary: VersionCounts;
  stable?: VersionCounts;
  /** Stable's counts from the window's start through its latest samples, past the window's end (see Observation). */
  stableAhead?: VersionCounts;
  /** How long the window lasted. */
  ms: number;
}

export interface SignalEvidence {
  /** The canary's requests and bad requests (errors or slow) over every window. */
  n: number;
  k: number;
  /** The canary's counts in clean windows (the absolute-harm test's data). */
  cleanN: number;
  cleanK: number;
  /** Both versions' counts in windows where both served (the relative test's data). */
  pairedCanaryN: number;
  pairedCanaryK: number;
  pairedStableN: number;
  pairedStableK: number;
  /** Log likelihood ratio of each relative-test alternative. */
  rel: number[];
  /**
   * The change-point e-processes of each limit alternative (usableAbsAlternatives) and of each
   * relative alternative (./change-point.ts): S, and D (what decides). Absent in records written
   * before them: they start afresh, which only lowers the evidence.
   */
  absCp?: ChangePointState;
  relCp?: ChangePointState;
  /** absCp as it was before the current streak above the limit: restored when the streak is forgiven. */
  streakAbsCp?: ChangePointState;
  /** Log likelihood ratio of the safety test. */
  safe: number;
  /**
   * Consecutive latest windows that did not show the canary below the limit, and the time they span
   * (persistence at 100 %).
   */
  aboveWindows: number;
  aboveMs: number;
  /** The current streak's contributions to the limit's test and to the safety proof (to forgive a blip). */
  streakN: number;
  streakK: number;
  streakSafe: number;
  /** Blips forgiven so far. */
  forgiven: number;
  /** Whether stable was above the limit in the latest window where it served (an incident's edge follows a change). */
  stableAbove?: boolean;
}

export interface Evidence {
  errors: SignalEvidence;
  latency?: SignalEvidence;
  windows: number;
  /** The analysis inputs it was gathered under: carried to a later run only when they are the same. */
  inputs?: { maxErrorRate: number; maxRatio: number; latencyThresholdMs?: number };
}

/** Alternatives of the relative-harm mixture, as multiples of max-ratio-to-stable. */
export const REL_ALTERNATIVES = [1.5, 2, 4, 8, 16] as const;

function emptySignal(): SignalEvidence {
  return {
    n: 0,
    k: 0,
    cleanN: 0,
    cleanK: 0,
    pairedCanaryN: 0,
    pairedCanaryK: 0,
    pairedStableN: 0,
    pairedStableK: 0,
    rel: REL_ALTERNATIVES.map(() => 0),
    absCp: { s: [], d: [] },
    relCp: { s: [], d: [] },
    safe: 0,
    aboveWindows: 0,
    aboveMs: 0,
    streakN: 0,
    streakK: 0,
    streakSafe: 0,
    forgiven: 0,
  };
}

export function emptyEvidence(latency: boolean, inputs?: Evidence["inputs"]): Evidence {
  return {
    errors: emptySignal(),
    ...(latency ? { latency: emptySignal() } : {}),
    windows: 0,
    ...(inputs ? { inputs } : {}),
  };
}

/** The canary's rate alternative for the safety test, from the windows seen so far. */
function safetyAlternative(signal: SignalEvidence, limit: number): number {
  const estimate = signal.cleanN > 0 ? (signal.cleanK + 0.5) / (signal.cleanN + 1) : limit / 2;
  return Math.min(0.9 * limit, Math.max(limit / 20, estimate));
}

/** The signal with its streak above the limit ended: forgiven if the limit's test rejected on it. */
function endStreak(signal: SignalEvidence, limit: number, settings: EvidenceSettings): SignalEvidence {
  const forgive = signal.streakN > 0 && limitChangeLogE(signal.absCp, limit) >= settings.harmLogE;
  const { streakAbsCp, ...rest } = signal;
  return {
    ...rest,
    ...(forgive
      ? {
          cleanN: signal.cleanN - signal.streakN,
          cleanK: signal.cleanK - signal.streakK,
          safe: signal.safe - signal.streakSafe,
          absCp: streakAbsCp ?? { s: [], d: [] },
          forgiven: signal.forgiven + 1,
        }
      : {}),
    streakN: 0,
    streakK: 0,
    streakSafe: 0,
    aboveWindows: 0,
    aboveMs: 0,
  };
}

/**
 * After a step back from 100 %, the first window in which stable serves beside the canary again
 * settles the streak that caused it (per signal): stable within the limit while the canary's counts
 * in that window alone reject the limit confirms the streak as the canary's own (its windows stay in
 * the evidence); anything else (stable above the limit too: an incident everything shares; or the
 * canary not clearly above it, when the change-point tests judge it afresh in a window or two)
 * forgives it: taken out, as if not served, and the canary is judged afresh beside stable. Which it
 * is only ever decides after the limit's test or the streak's own rejected, and forgiving only
 * lowers the chance of a rollback, so the false-rollback promise stands.
 */
export function settleStreak(evidence: Evidence, window: WindowCounts, settings: EvidenceSettings): Evidence {
  const settle = (
    signal: SignalEvidence,
    limit: number,
    bad: (counts: VersionCounts | undefined) => number | undefined,
  ): SignalEvidence => {
    const above = (counts: VersionCounts | undefined) => {
      const k = bad(counts);
      return counts !== undefined && k !== undefined && meaningfullyAbove({ n: counts.requests, k }, limit);
    };
    const canaryBad = bad(window.canary);
    // The canary's own only when its counts beside stable alone reject the limit, and stable is
    // within it in the window and just after: an incident ending at the step back leaves its last
    // seconds in the canary's first window in another proportion than in stable's.
    const canaryOwn =
      (window.stable?.requests ?? 0) * limit >= 1 &&
      !above(window.stable) &&
      !above(window.stableAhead) &&
      canaryBad !== undefined &&
      aboveLimitLogE(window.canary.requests, canaryBad, limit) >= settings.harmLogE;
    const { streakAbsCp: _confirmed, ...rest } = signal;
    return canaryOwn
      ? { ...rest, streakN: 0, streakK: 0, streakSafe: 0, aboveWindows: 0, aboveMs: 0 }
      : endStreak(signal, limit, settings);
  };
  return {
    ...evidence,
    errors: settle(evidence.errors, settings.maxErrorRate, (counts) => counts?.errors),
    ...(evidence.latency
      ? { latency: settle(evidence.latency, settings.maxSlowFraction, (counts) => counts?.slow) }
      : {}),
  };
}

/** One signal's counts in one window: the canary's, and stable's when it served. */
interface SignalWindow {
  canaryN: number;
  canaryK: number;
  stable: { n: number; k: number } | undefined;
  /** Stable through its latest samples (the window and just after it). */
  stableAhead?: { n: number; k: number } | undefined;
  ms: number;
  /** The window's index in the evidence (1-based): where a change beginning in it is weighted. */
  index: number;
}

function addToSignal(
  signal: SignalEvidence,
  window: SignalWindow,
  limit: number,
  settings: EvidenceSettings,
): SignalEvidence {
  const { canaryN, canaryK, stable } = window;
  if (canaryN <= 0) return signal;
  const next: SignalEvidence = { ...signal, rel: [...signal.rel] };
  const stableServed = stable !== undefined && stable.n > 0;
  // A window breaks a streak above the limit only when it shows the canary below it with enough
  // requests to mean something (at least one bad request expected at the limit); a window of a few
  // requests at 1 req/s says nothing either way and leaves the streak as it was.
  const below = canaryK / canaryN <= limit && canaryN * limit >= 1;
  if (stableServed || below) {
    // A blip forgiven: with no stable traffic to compare, the limit's test rejected on a streak
    // that did not last, or the rollout stepped back from 100 % so that stable serves beside the
    // canary again and judges it (stable served in this window). The streak's windows are taken
    // out of the limit's and the safety proof's evidence, as if they had not been served. This only
    // ever happens after that test rejected, which for a canary within the limit has probability at
    // most α, so the promises stand (see docs/analysis.md).
    Object.assign(next, endStreak(signal, limit, settings));
    delete next.streakAbsCp;
  }
  const stableRate = stableServed ? stable.k / stable.n : undefined;
  const edge = stableServed && incidentEdge(signal.stableAbove, window, limit);
  const edgeForRatio = stableServed && incidentEdgeAround(signal.stableAbove, window, limit);
  if (stableServed) next.stableAbove = meaningfullyAbove(stable, limit);
  else delete next.stableAbove;
  const clean = stableRate === undefined || (stableRate <= limit && !edge);
  // Safety, on clean windows too (an incident everything shares says nothing about the canary),
  // with the alternative chosen before this window's data is looked at. Which windows are clean
  // depends on stable's counts only, so the choice keeps the test valid.
  const safeGain = clean ? bernoulliLlr(canaryN, canaryK, limit, safetyAlternative(signal, limit)) : 0;
  next.safe += safeGain;
  next.n += canaryN;
  next.k += canaryK;
  // Persistence is only asked where there is no stable traffic: a streak counts those windows only.
  const streak = !stableServed && !below;
  next.aboveWindows = streak ? signal.aboveWindows + 1 : 0;
  next.aboveMs = streak ? signal.aboveMs + window.ms : 0;
  if (clean) {
    next.cleanN += canaryN;
    next.cleanK += canaryK;
  }
  if (streak && next.streakN === 0) next.streakAbsCp = next.absCp ?? { s: [], d: [] };
  const absLlrs = usableAbsAlternatives(limit).map((alternative) =>
    clean ? bernoulliLlr(canaryN, canaryK, limit, alternative.rate) : 0,
  );
  // From the state after a forgiven streak (endStreak above restored it), not the one before.
  next.absCp = changePointStep(next.absCp?.s ?? [], window.index, absLlrs);
  if (streak) {
    next.streakN += canaryN;
    next.streakK += canaryK;
    next.streakSafe += safeGain;
  }
  const relLlrs =
    stable && stable.n > 0 && !edgeForRatio
      ? addPairedWindow(next, canaryN, canaryK, stable, settings.maxRatioToStable)
      : [];
  next.relCp = changePointStep(
    signal.relCp?.s ?? [],
    window.index,
    REL_ALTERNATIVES.map((_, index) => relLlrs[index] ?? 0),
  );
  return next;
}

/**
 * The relative test's step, in place on `next`: conditional on the bad requests both versions saw,
 * the canary's share of them is Binomial(E, q); q0 is that share at the null's ratio R
 * (max-ratio-to-stable), q1 at each alternative's. Returns each alternative's log likelihood ratio
 * in this window (none when neither version saw a bad request).
 */
function addPairedWindow(
  next: SignalEvidence,
  canaryN: number,
  canaryK: number,
  stable: { n: number; k: number },
  maxRatio: number,
): number[] {
  next.pairedCanaryN += canaryN;
  next.pairedCanaryK += canaryK;
  next.pairedStableN += stable.n;
  next.pairedStableK += stable.k;
  if (canaryK + stable.k <= 0) return [];
  const q0 = (canaryN * maxRatio) / (canaryN * maxRatio + stable.n);
  return REL_ALTERNATIVES.map((multiple, index) => {
    const ratio = maxRatio * multiple;
    const q1 = (canaryN * ratio) / (canaryN * ratio + stable.n);
    const llr = bernoulliLlr(canaryK + stable.k, canaryK, q0, q1);
    next.rel[index] = (next.rel[index] ?? 0) + llr;
    return llr;
  });
}

/** The evidence after one more window. Windows without canary requests change nothing. */
export function addWindow(evidence: Evidence, window: WindowCounts, settings: EvidenceSettings): Evidence {
  const { canary, stable } = window;
  if (canary.requests <= 0) return evidence;
  const errors = addToSignal(
    evidence.errors,
    {
      canaryN: canary.requests,
      canaryK: Math.min(canary.errors, canary.requests),
      stable: stable ? { n: stable.requests, k: Math.min(stable.errors, stable.requests) } : undefined,
      stableAhead: window.stableAhead
        ? {
            n: window.stableAhead.requests,
            k: Math.min(window.stableAhead.errors, window.stableAhead.requests),
          }
        : undefined,
      ms: window.ms,
      index: evidence.windows + 1,
    },
    settings.maxErrorRate,
    settings,
  );
  const latency =
    evidence.latency && canary.slow !== undefined
      ? addToSignal(
          evidence.latency,
          {
            canaryN: canary.requests,
            canaryK: Math.min(canary.slow, canary.requests),
            stable:
              stable && stable.slow !== undefined
                ? { n: stable.requests, k: Math.min(stable.slow, stable.requests) }
                : undefined,
            stableAhead:
              window.stableAhead?.slow !== undefined
                ? {
                    n: window.stableAhead.requests,
                    k: Math.min(window.stableAhead.slow, window.stableAhead.requests),
                  }
                : undefined,
            ms: window.ms,
            index: evidence.windows + 1,
          },
          settings.maxSlowFraction,
          settings,
        )
      : evidence.latency;
  return {
    errors,
    ...(latency ? { latency } : {}),
    windows: evidence.windows + 1,
    ...(evidence.inputs ? { inputs: evidence.inputs } : {}),
  };
}
