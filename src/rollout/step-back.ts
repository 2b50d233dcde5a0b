/**
 * The last stage's step back from 100 % (see docs/analysis.md, "Stepping back at 100 %"): when the
 * canary crosses the limit with no stable traffic to compare, the routes go back to the stage
 * before, so that stable serves beside the canary and shows whether everything is failing (an
 * incident) or the canary alone; when that judgement passes, they go back up. This keeps the
 * weight on the routes and when it changed, which windows are evidence, and the streak to settle.
 */
import { addWindow, type Evidence, settleStreak, type WindowCounts } from "../analysis/evidence.ts";
import type { Verdict } from "../analysis/judge.ts";
import type { EvidenceSettings } from "../analysis/types.ts";

/**
 * Step-backs in one stage: each costs a minute or more, and a canary that fails only at 100 %
 * would otherwise go up and down for ever. After them, harm at 100 % must persist instead.
 */
export const MAX_STEP_BACKS = 2;

export interface StepBackOption {
  /** The weight to step back to (the stage before). */
  to: number;
  /** Moves the routes (throws PersonEditError on a person's edit, which is never overwritten). */
  write: (weight: number, evidence: Evidence, why: string) => Promise<void>;
}

export class StepBack {
  /** The weight on the routes: the stage's, or the one stepped back to. */
  weight: number;
  /** When the weight last changed: the stage's time counts from here (it restarts after a move). */
  changedAt: number;
  /** Stepped back below the stage's weight: judged as a stage below the last until it goes back up. */
  below = false;
  private readonly stageWeight: number;
  private readonly option: StepBackOption | undefined;
  private readonly settleMs: number;
  private readonly settings: EvidenceSettings;
  private count = 0;
  /**
   * After a step back, windows read before settle-time are not evidence: their canary requests
   * were served at 100 % (the samples lag), with no stable requests at the same moments.
   */
  private absorbUntil = 0;
  /**
   * The first window after a step back may be a moment long (counting starts from the first samples
   * after the move): too few of stable's requests to settle anything, it is passed over, once.
   */
  private passedOver: "no" | "now" | "done" = "no";
  /** The streak that caused a step back, until stable's first window beside the canary settles it. */
  private streakToSettle = false;
  /** The canary's requests in the latest window: how much stable would serve after a step back. */
  private lastCanaryWindow = 0;

  constructor(
    stage: { weight: number; changedAt: number; settleMs: number },
    settings: EvidenceSettings,
    option?: StepBackOption,
  ) {
    this.weight = stage.weight;
    this.stageWeight = stage.weight;
    this.changedAt = stage.changedAt;
    this.settleMs = stage.settleMs;
    this.settings = settings;
    this.option = option;
  }

  /** Whether a read at `t` is judged (after a step back, not before settle-time). */
  judges(t: number): boolean {
    return t >= this.absorbUntil && this.passedOver !== "now";
  }

  /** The evidence after a window read at `t`: a streak waiting to be settled is settled first. */
  add(evidence: Evidence, window: WindowCounts, t: number): Evidence {
    // A read before any series was scraped since the move counts nothing: it neither spends the
    // pass-over nor says what stable would serve.
    if (window.canary.requests === 0 && (window.stable?.requests ?? 0) === 0) return evidence;
    this.lastCanaryWindow = window.canary.requests;
    if (this.passedOver === "now") this.passedOver = "done";
    if (!this.judges(t)) return evidence;
    const limit = Math.min(this.settings.maxErrorRate, this.settings.maxSlowFraction);
    if (this.streakToSettle && this.passedOver === "no" && (window.stable?.requests ?? 0) * limit < 1) {
      this.passedOver = "now";
      return evidence;
    }
    let next = evidence;
    if (this.streakToSettle && (window.stable?.requests ?? 0) > 0) {
      next = settleStreak(next, window, this.settings);
      this.streakToSettle = false;
    }
    return addWindow(next, window, this.settings);
  }

  /**
   * The weight to offer the judge to step back to, if a step back is left and would show
   * something: stable, at that weight, serving at least 1/L requests in a window (one bad request
   * expected at the limit). At lower traffic harm at 100 % must persist instead.
   */
  offer(): number | undefined {
    if (!this.option || this.weight !== 100 || this.count >= MAX_STEP_BACKS) return undefined;
    const limit = Math.min(this.settings.maxErrorRate, this.settings.maxSlowFraction);
    const stableWindow = this.lastCanaryWindow * (1 - this.option.to / 100);
    return stableWindow * limit >= 1 ? this.option.to : undefined;
  }

  /** The move a verdict asks for: a step back, or back up when the judgement below passed. */
  moveFor(verdict: Verdict): number | undefined {
    if (!this.option) return undefined;
    if (verdict.rule === "step-back") return this.option.to;
    if (this.below && verdict.decision === "pass") return this.stageWeight;
    return undefined;
  }

  /** Writes the move, then counts from it. */
  async move(to: number, evidence: Evidence, why: string, now: number): Promise<void> {
    if (!this.option) return;
    await this.option.write(to, evidence, why);
    const back = to < this.weight;
    if (back) this.count += 1;
    this.streakToSettle = back;
    this.below = to < this.stageWeight;
    this.weight = to;
    this.changedAt = now;
    this.absorbUntil = this.below ? now + this.settleMs : 0;
    this.passedOver = "no";
  }
}
