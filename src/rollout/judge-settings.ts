/**
 * What the run of stages hands the judge: the analysis inputs with the engine's own limits, and
 * the evidence an earlier run left when it was gathered under the same inputs.
 */
import { type Evidence, emptyEvidence } from "../analysis/evidence.ts";
import type { JudgeSettings } from "../analysis/types.ts";
import type { EngineContext } from "./context.ts";

/** A chance of 1 in 100 that a p99 latency limit is passed: the latency signal's limit. */
const MAX_SLOW_FRACTION = 0.01;
/** Chance of promoting a canary whose rate sits at a limit. */
const BETA = 0.05;

export function judgeSettings(c: EngineContext): JudgeSettings {
  return {
    ...c.settings.analysis,
    // A stage never passes before settle-time either (proxies take a moment to get the new weights).
    minStageDurationMs: Math.max(c.settings.analysis.minStageDurationMs, c.settings.settleMs),
    maxSlowFraction: MAX_SLOW_FRACTION,
    beta: BETA,
  };
}

/** The evidence an earlier run left, if it was gathered under the same analysis inputs. */
export function carriedEvidence(carried: Evidence | undefined, c: EngineContext): Evidence {
  const fresh = emptyEvidence(c.settings.analysis.latencyThresholdMs !== undefined, evidenceInputs(c));
  if (!carried) return fresh;
  return JSON.stringify(carried.inputs ?? null) === JSON.stringify(fresh.inputs) ? carried : fresh;
}

function evidenceInputs(c: EngineContext): NonNullable<Evidence["inputs"]> {
  const { maxErrorRate, maxRatioToStable, latencyThresholdMs } = c.settings.analysis;
  // Saved in the state annotation under the name it has always had there (maxRatio), so the
  // evidence of a rollout started by an earlier version still parses.
  return {
    maxErrorRate,
    maxRatio: maxRatioToStable,
    ...(latencyThresholdMs !== undefined ? { latencyThresholdMs } : {}),
  };
}
