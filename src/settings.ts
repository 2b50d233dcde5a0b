/**
 * Each layer's settings from the validated Config, built once by src/action.ts (the core never sees
 * the Config), under the inputs' own names. Apart from action.ts so that tests and the benchmark
 * build the engine's settings without loading every adapter.
 */
import type { AnalysisSettings } from "./analysis/types.ts";
import { splitBudget } from "./checks/budget.ts";
import type { Config } from "./inputs/types.ts";
import type { EngineSettings } from "./rollout/engine.ts";

/** The analysis inputs, under their input names, handed down whole: engine, judge, evidence. */
export function analysisSettings(config: Config): AnalysisSettings {
  return {
    maxErrorRate: config.maxErrorRate,
    latencyThresholdMs: config.latencyThresholdMs,
    maxRatioToStable: config.maxRatioToStable,
    minRequests: config.minRequests,
    // Shared with the custom checks (src/checks/budget.ts): the built-in tests get their share.
    falseRollbackBudget: splitBudget(
      config.falseRollbackBudget,
      config.latencyThresholdMs !== undefined,
      config.checks ?? [],
    ).builtIn,
    minStageDurationMs: config.minStageDurationMs,
    maxStageDurationMs: config.maxStageDurationMs,
  };
}

/** The engine's settings from the validated Config: the core never sees the Config itself. */
export function engineSettings(config: Config): EngineSettings {
  return {
    command: config.command,
    stages: config.stages,
    pauseAfter: config.pauseAfter,
    skipAnalysis: config.skipAnalysis,
    analysis: analysisSettings(config),
    intervalMs: config.intervalMs,
    settleMs: config.settleMs,
    onInconclusive: config.onInconclusive,
    onUnreachable: config.onUnreachable,
    onSplit: config.onSplit,
    rollbackOnCancel: config.rollbackOnCancel,
    rolloutId: config.rolloutId,
    dryRun: config.dryRun,
    finalize: config.finalize,
    preview: config.preview,
  };
}
