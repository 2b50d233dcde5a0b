/**
 * The judge as the engine consults it, for tests that feed observations by hand: each cumulative
 * observation since a stage's start adds the window since the previous one to the evidence.
 */
import { addWindow, type Evidence, emptyEvidence } from "../../src/analysis/evidence.ts";
import {
  type CheckInput,
  evidenceSettings,
  judgeCheck,
  type Observation,
  type Verdict,
} from "../../src/analysis/judge.ts";
import type { JudgeSettings, VersionCounts } from "../../src/analysis/types.ts";

export const judgeDefaults: JudgeSettings = {
  maxErrorRate: 0.01,
  maxSlowFraction: 0.01,
  maxRatioToStable: 2,
  minRequests: 100,
  minStageDurationMs: 60_000,
  maxStageDurationMs: 600_000,
  falseRollbackBudget: 0.05,
  beta: 0.05,
};

const minus = (a: VersionCounts | undefined, b: VersionCounts | undefined): VersionCounts => ({
  requests: Math.max(0, (a?.requests ?? 0) - (b?.requests ?? 0)),
  errors: Math.max(0, (a?.errors ?? 0) - (b?.errors ?? 0)),
  ...(a?.slow !== undefined ? { slow: Math.max(0, a.slow - (b?.slow ?? 0)) } : {}),
});

/** One stage's judging: `check` takes each cumulative observation since the stage began. */
export class StageJudging {
  evidence: Evidence;
  private seen: { canary?: VersionCounts; stable?: VersionCounts } = {};
  private lastElapsed = 0;
  private latest?: CheckInput["latest"];
  private readonly settings: JudgeSettings;
  private readonly weight: number;
  private readonly final: boolean;

  constructor(settings: Partial<JudgeSettings> = {}, weight = 10, final = false, evidence?: Evidence) {
    this.settings = { ...judgeDefaults, ...settings };
    this.weight = weight;
    this.final = final;
    this.evidence = evidence ?? emptyEvidence(this.settings.latencyThresholdMs !== undefined);
  }

  check(observation: Observation, elapsedMs: number): Verdict {
    let stableServed = false;
    if (observation.ok && observation.partial.length === 0) {
      const window = {
        canary: minus(observation.canary, this.seen.canary),
        stable: minus(observation.stable, this.seen.stable),
        ms: elapsedMs - this.lastElapsed,
      };
      this.lastElapsed = elapsedMs;
      stableServed = window.stable.requests > 0;
      this.evidence = addWindow(this.evidence, window, evidenceSettings(this.settings));
      this.latest = { canary: window.canary, stable: window.stable };
      this.seen = { canary: observation.canary, stable: observation.stable };
    }
    return judgeCheck(
      {
        weight: this.weight,
        final: this.final,
        elapsedMs,
        observation,
        evidence: this.evidence,
        stableServed,
        latest: this.latest,
      },
      this.settings,
    );
  }
}

/** A single observation judged as a stage's only window. */
export function judgeOnce(
  observation: Observation,
  elapsedMs: number,
  settings: Partial<JudgeSettings> = {},
  final = false,
): Verdict {
  return new StageJudging(settings, 10, final).check(observation, elapsedMs);
}
