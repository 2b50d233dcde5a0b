/**
 * How a run of stages ends (./stage-runner.ts): a promotion or a pause after a passed stage, an
 * ending the policies chose, a cancellation, a person's edit, or a weight write that failed. Traffic comes first: the rollback
 * (or the record of a pause) is written before the outcome is reported.
 */
import type { Verdict } from "../analysis/judge.ts";
import { errorMessage } from "../error-message.ts";
import type { EngineContext, EngineOutcome } from "./context.ts";
import { type Ending, ending, type StageDecision } from "./ending.ts";
import { Finalizer } from "./finalize.ts";
import { LeaseHeldError, type RolloutState } from "./model/state.ts";
import type { TrafficWrites } from "./traffic-writes.ts";
import { CommandError } from "./transitions.ts";

/** One stage of the run, before its analysis. */
export interface StagePlan {
  index: number;
  weight: number;
  final: boolean;
}

/** How a stage's analysis came out. */
export interface StageJudgement {
  verdict?: Verdict;
  decision: StageDecision;
  reason: string;
}

export class StageEndings {
  private readonly context: EngineContext;
  private readonly writes: TrafficWrites;

  constructor(context: EngineContext, writes: TrafficWrites) {
    this.context = context;
    this.writes = writes;
  }

  /** Carries out an ending: the traffic change first, then the outcome to report. */
  async end(
    end: Ending,
    state: RolloutState,
    weight: number,
    saved: Partial<RolloutState>,
  ): Promise<EngineOutcome> {
    switch (end.action) {
      case "rollback": {
        const written = await this.writes.rollBackOrExplain(end.why, state, weight, saved);
        return { result: "rolled-back", weight: 0, reason: end.why, failed: true, state: written };
      }
      case "pause": {
        const paused = await this.writes.record(
          state,
          weight,
          { status: "paused", reason: end.why, lease: undefined, ...saved },
          "paused",
          end.why,
        );
        return { result: "paused", weight, reason: end.why, failed: end.failed, state: paused };
      }
      case "leave":
        return { result: "paused", weight, reason: end.why, failed: true, state };
      case "halted":
        return this.writes.halt(state, weight, end.why, saved);
    }
  }

  /** The job was cancelled: roll back (or leave, as rollback-on-cancel says), unless nothing moved. */
  async cancelled(state: RolloutState, weight: number, reason: string): Promise<EngineOutcome> {
    const end = ending("aborted", undefined, weight, reason, this.context.settings) as Ending;
    if (weight === 0 && end.action === "rollback")
      return this.context.finish({
        result: "unchanged",
        weight: 0,
        reason: `${reason}; no traffic had moved`,
        failed: true,
        state,
      });
    return this.context.finish(await this.end(end, state, weight, {}));
  }

  /** A person changed the weights: theirs win, and the run stops. */
  async halted(state: RolloutState, weight: number, why: string): Promise<EngineOutcome> {
    return this.context.finish(await this.writes.halt(state, weight, why, {}));
  }

  /**
   * A stage's weight write failed for good: another run's lease and refusals are thrown; otherwise
   * hold (on-unreachable: hold) or roll back, unless the routes show that nothing moved.
   */
  async writeFailed(
    error: unknown,
    state: RolloutState,
    index: number,
    weightNow: number,
  ): Promise<EngineOutcome> {
    const { context } = this;
    if (error instanceof LeaseHeldError || error instanceof CommandError) throw error;
    const why = `Could not set stage ${index + 1} (${state.stages[index]} %): ${errorMessage(error)}`;
    // A write that failed may still have been applied: only routes read at 0 % mean nothing moved.
    if (weightNow === 0) {
      const found = await context.ports.traffic.read().catch(() => undefined);
      if (found?.weights.every((w) => w === 0))
        return context.finish({ result: "unchanged", weight: 0, reason: why, failed: true, state });
    }
    if (context.settings.onUnreachable === "hold") {
      await context.emit({
        type: "warning",
        at: context.now(),
        message: `${why}; holding at ${weightNow} % (on-unreachable: hold)`,
      });
      return context.finish({
        result: "paused",
        weight: weightNow,
        reason: `${why}; held at ${weightNow} %`,
        failed: true,
        state,
      });
    }
    const written = await this.writes.rollBackOrExplain(
      why,
      state,
      Math.max(weightNow, state.stages[index] ?? 0),
    );
    return context.finish({ result: "rolled-back", weight: 0, reason: why, failed: true, state: written });
  }

  /** The last stage passed (or was inconclusive with on-inconclusive: promote): finalize, or record the promotion. */
  async promote(
    state: RolloutState,
    weight: number,
    judgement: StageJudgement,
    saved: Partial<RolloutState>,
  ): Promise<EngineOutcome> {
    const { context } = this;
    const { decision, reason } = judgement;
    const inconclusive = decision === "inconclusive";
    const passed = inconclusive
      ? `Promoted with no harm shown (on-inconclusive: promote), but without proof that it is within the limits: ${reason}`
      : `All ${state.stages.length} stages passed`;
    await context.emit({
      type: "passed",
      at: context.now(),
      rolloutId: state.rolloutId,
      reason: passed,
      finalize: context.finalizing,
    });
    if (context.finalizing && context.ports.workloads)
      return new Finalizer(context, context.ports.workloads).run(state, passed, saved);
    const promoted = await this.writes.record(
      state,
      weight,
      {
        status: "promoted",
        reason: inconclusive
          ? `Promoted without proof (on-inconclusive: promote): ${reason}`
          : "All stages passed",
        lease: undefined,
        ...saved,
      },
      "promoted",
    );
    return context.finish({
      result: "promoted",
      weight,
      reason: inconclusive
        ? `Promoted to 100 % with no harm shown (on-inconclusive: promote), but without proof that it is within the limits: ${reason}`
        : `All ${state.stages.length} stages passed; the canary gets 100 %`,
      failed: false,
      state: promoted,
    });
  }

  /** The stage passed at the pause-after weight: record the pause; command: promote continues. */
  async pausedAsAsked(
    state: RolloutState,
    plan: StagePlan,
    saved: Partial<RolloutState>,
  ): Promise<EngineOutcome> {
    const { index, weight } = plan;
    const paused = await this.writes.record(
      state,
      weight,
      {
        status: "paused",
        reason: `Stage ${index + 1} (${weight} %) passed; paused as pause-after asks`,
        lease: undefined,
        ...saved,
      },
      "paused",
    );
    return this.context.finish({
      result: "paused",
      weight,
      reason: `Paused at ${weight} % after the stage passed; continue with command: promote`,
      failed: false,
      state: paused,
    });
  }
}
