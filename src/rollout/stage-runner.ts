/**
 * The run of stages: for each, take the counters, write the weight (the post step learns of it
 * before the write is sent), analyse, then act on the ending policy. Traffic comes first: a
 * rollback is written before anything is reported, and after a cancellation the rollback is the
 * only write.
 */
import { type Evidence, emptyEvidence } from "../analysis/evidence.ts";
import { evidenceSettings, type Verdict } from "../analysis/judge.ts";
import type { JudgeSettings } from "../analysis/types.ts";
import { errorMessage } from "../error-message.ts";
import { abortable } from "./abortable.ts";
import type { EngineContext, EngineOutcome } from "./context.ts";
import { type Ending, ending, type StageDecision } from "./ending.ts";
import { Finalizer } from "./finalize.ts";
import { LeaseHeldError, type RolloutState, type StageResult } from "./model/state.ts";
import type { MetricsMark, TrafficView } from "./ports.ts";
import { analyseStage } from "./stage-analysis.ts";
import { judgeAdoptedSplit, stepWrite } from "./stage-moves.ts";
import { TrafficWrites } from "./traffic-writes.ts";
import { CommandError, guarded, PersonEditError } from "./transitions.ts";

/** A chance of 1 in 100 that a p99 latency limit is passed: the latency signal's limit. */
const MAX_SLOW_FRACTION = 0.01;
/** Chance of promoting a canary whose rate sits at a limit. */
const BETA = 0.05;

export function judgeSettings(c: EngineContext): JudgeSettings {
  return {
    ...c.s.analysis,
    // A stage never passes before settle-time either (proxies take a moment to get the new weights).
    minStageDurationMs: Math.max(c.s.analysis.minStageDurationMs, c.s.settleMs),
    maxSlowFraction: MAX_SLOW_FRACTION,
    beta: BETA,
  };
}

/** The evidence an earlier run left, if it was gathered under the same analysis inputs. */
function carriedEvidence(carried: Evidence | undefined, c: EngineContext): Evidence {
  const fresh = emptyEvidence(c.s.analysis.latencyThresholdMs !== undefined, evidenceInputs(c));
  if (!carried) return fresh;
  return JSON.stringify(carried.inputs ?? null) === JSON.stringify(fresh.inputs) ? carried : fresh;
}

function evidenceInputs(c: EngineContext): NonNullable<Evidence["inputs"]> {
  const { maxErrorRate, maxRatioToStable, latencyThresholdMs } = c.s.analysis;
  // Saved in the state annotation under the name it has always had there (maxRatio), so the
  // evidence of a rollout started by an earlier version still parses.
  return {
    maxErrorRate,
    maxRatio: maxRatioToStable,
    ...(latencyThresholdMs !== undefined ? { latencyThresholdMs } : {}),
  };
}

export class StageRunner {
  private readonly c: EngineContext;
  private readonly writes: TrafficWrites;
  constructor(context: EngineContext) {
    this.c = context;
    this.writes = new TrafficWrites(context);
  }

  private get aborted(): boolean {
    return this.c.ports.signal?.aborted ?? false;
  }

  /**
   * Runs `from` onwards; `current` is the weight on the routes now (what this run expects to find).
   * `found`: the routes of an adopted split, whose first write expects each route at the weight
   * found on it (not merely at any weight found on any route).
   */
  async run(
    initial: RolloutState,
    from: number,
    current: number,
    pauseAfter?: number,
    found?: TrafficView,
  ): Promise<EngineOutcome> {
    const { c } = this;
    const { traffic, metrics, clock, signal } = c.ports;
    let state = initial;
    let weightNow = current;
    // A stage analysed again (a run that continues an interrupted one) replaces its earlier result.
    const results: StageResult[] = (initial.stageResults ?? []).filter((r) => r.stage < from);
    let evidence: Evidence = carriedEvidence(initial.evidence, c);
    if (initial.evidence && evidence !== initial.evidence)
      await c.emit({
        type: "warning",
        at: c.now(),
        message:
          "The analysis inputs changed since the evidence was gathered (max-error-rate, max-ratio-to-stable or latency-threshold): the evidence starts afresh",
      });
    const saved = () => ({ stageResults: [...results], evidence });
    const analysing = !c.s.skipAnalysis && metrics !== undefined;
    // An adopted split is judged at the weights found, beside stable, before any write raises it.
    if (analysing && found) {
      const judged = await this.judgeAdopted(state, from, current, found, evidence);
      if ("result" in judged) return judged;
      ({ state, evidence } = judged);
      results.push(judged.stageResult);
    }

    for (let index = from; index < state.stages.length; index++) {
      const weight = state.stages[index] as number;
      const final = index === state.stages.length - 1;
      if (this.aborted)
        return this.cancelled(state, weightNow, `The job was cancelled before stage ${index + 1}`);
      // Count from the weight change: requests are labelled by the version that served them.
      let mark: MetricsMark | undefined;
      if (analysing)
        mark = await abortable(metrics.start(clock.now(), signal), signal).catch(() => undefined);
      if (this.aborted)
        return this.cancelled(state, weightNow, `The job was cancelled before stage ${index + 1}`);
      await c.emit({ type: "moving", at: c.now(), rolloutId: state.rolloutId, stage: index, weight });
      try {
        const rolloutId = state.rolloutId;
        const base = state;
        state = await traffic.write(
          weight,
          guarded(
            {
              holder: c.holder,
              now: () => clock.now(),
              rolloutId,
              expectWeight: weightNow,
              targetWeight: weight,
              found: index === from ? found : undefined,
              stages: c.s.stages,
            },
            (previous, view) =>
              c.after(
                previous && previous.rolloutId === rolloutId
                  ? previous
                  : { ...base, original: base.original.length > 0 ? base.original : view.original },
                {
                  weight,
                  stageIndex: index,
                  status: "progressing",
                  reason: undefined,
                  lease: { holder: c.holder, expiresAt: c.leaseUntil() },
                  ...saved(),
                },
                `stage ${index + 1}`,
              ),
          ),
          signal,
        );
      } catch (error) {
        if (error instanceof PersonEditError) return this.halted(state, weightNow, error.message);
        if (this.aborted)
          return this.cancelled(
            state,
            weight,
            `The job was cancelled while stage ${index + 1} was being set`,
          );
        return this.onWriteFailure(error, state, index, weightNow);
      }
      weightNow = weight;
      const changedAt = clock.now().getTime();
      await c.emit({ type: "weight", at: c.now(), stage: index, weight });

      let verdict: Verdict | undefined;
      let decision: StageDecision;
      let reason: string;
      try {
        if (analysing) {
          const analysis = await analyseStage(
            { metrics, traffic, clock, events: c.ports.events, signal },
            {
              index,
              weight,
              final,
              changedAt,
              mark,
              evidence,
              intervalMs: c.s.intervalMs,
              settleMs: c.s.settleMs,
              judge: judgeSettings(c),
              evidenceSettings: evidenceSettings(judgeSettings(c)),
              ...(final && weight === 100 && index > 0
                ? {
                    stepBack: {
                      to: state.stages[index - 1] as number,
                      write: async (to: number, now: Evidence, why: string) => {
                        state = await stepWrite(
                          c,
                          state,
                          index,
                          { from: weightNow, to, why },
                          { stageResults: [...results], evidence: now },
                        );
                        weightNow = to;
                      },
                    },
                  }
                : {}),
            },
          );
          ({ verdict, decision, reason, evidence } = analysis);
          weightNow = analysis.weight;
        } else {
          await clock.sleep(c.s.analysis.minStageDurationMs, signal);
          decision = "skipped";
          reason = "analysis skipped (skip-analysis)";
        }
      } catch (error) {
        if (!this.aborted) throw error;
        decision = "aborted";
        reason = `The job was cancelled during stage ${index + 1} (${weight} %)`;
      }
      const durationMs = clock.now().getTime() - changedAt;
      results.push({
        stage: index,
        weight,
        decision,
        reason,
        at: c.now(),
        durationMs,
        ...(verdict?.canary ? { canary: verdict.canary } : {}),
        ...(verdict?.stable ? { stable: verdict.stable } : {}),
      });
      const end = ending(decision, verdict?.rule, weightNow, reason, c.s);
      const stageEnd = () =>
        c.emit({
          type: "stage-end",
          at: c.now(),
          stage: index,
          weight,
          durationMs,
          verdict,
          decision,
          reason,
        });

      if (end) {
        const outcome = await this.end(end, state, weightNow, saved());
        await stageEnd();
        return c.finish(outcome);
      }
      await stageEnd();
      // After a signal the only write allowed is the rollback.
      if (this.aborted)
        return this.cancelled(state, weight, `The job was cancelled at the end of stage ${index + 1}`);
      if (final) {
        const passed =
          decision === "inconclusive"
            ? `Promoted with no harm shown (on-inconclusive: promote), but without proof that it is within the limits: ${reason}`
            : `All ${state.stages.length} stages passed`;
        await c.emit({
          type: "passed",
          at: c.now(),
          rolloutId: state.rolloutId,
          reason: passed,
          finalize: c.finalizing,
        });
        if (c.finalizing && c.ports.workloads)
          return new Finalizer(c, c.ports.workloads).run(state, passed, saved());
      }
      if (final) {
        const promoted = await this.writes.record(
          state,
          weight,
          {
            status: "promoted",
            reason:
              decision === "inconclusive"
                ? `Promoted without proof (on-inconclusive: promote): ${reason}`
                : "All stages passed",
            lease: undefined,
            ...saved(),
          },
          "promoted",
        );
        return c.finish({
          result: "promoted",
          weight,
          reason:
            decision === "inconclusive"
              ? `Promoted to 100 % with no harm shown (on-inconclusive: promote), but without proof that it is within the limits: ${reason}`
              : `All ${state.stages.length} stages passed; the canary gets 100 %`,
          failed: false,
          state: promoted,
        });
      }
      if (pauseAfter === weight) {
        const paused = await this.writes.record(
          state,
          weight,
          {
            status: "paused",
            reason: `Stage ${index + 1} (${weight} %) passed; paused as pause-after asks`,
            lease: undefined,
            ...saved(),
          },
          "paused",
        );
        return c.finish({
          result: "paused",
          weight,
          reason: `Paused at ${weight} % after the stage passed; continue with command: promote`,
          failed: false,
          state: paused,
        });
      }
    }
    // Only reached when `from` is past the last stage (a promote of a rollout already at its end).
    return c.finish({
      result: "promoted",
      weight: state.weight,
      reason: "No stages left",
      failed: false,
      state,
    });
  }

  /**
   * An adopted split, judged at its current weights as a stage below the last (stable serves beside
   * the canary): a canary failing there is rolled back (a write to 0, never one that raises it);
   * one that passes goes on to the next stage with this evidence.
   */
  private async judgeAdopted(
    initial: RolloutState,
    from: number,
    weight: number,
    found: TrafficView,
    evidence: Evidence,
  ): Promise<EngineOutcome | { state: RolloutState; evidence: Evidence; stageResult: StageResult }> {
    const { c } = this;
    let judged: Awaited<ReturnType<typeof judgeAdoptedSplit>>;
    try {
      judged = await judgeAdoptedSplit(c, initial, {
        from,
        weight,
        found,
        evidence,
        judge: judgeSettings(c),
      });
    } catch (error) {
      if (error instanceof PersonEditError) return this.halted(initial, weight, error.message);
      if (!this.aborted) throw error;
      const why = `The job was cancelled while the adopted split (${weight} %) was judged`;
      return this.cancelled(initial, weight, why);
    }
    const { state, analysis, stageResult, stageEnd } = judged;
    const end = ending(analysis.decision, analysis.verdict?.rule, weight, analysis.reason, c.s);
    if (end) {
      const saved = { evidence: analysis.evidence, stageResults: [stageResult] };
      const outcome = await this.end(end, state, weight, saved);
      await stageEnd();
      return c.finish(outcome);
    }
    await stageEnd();
    return { state, evidence: analysis.evidence, stageResult };
  }

  /** Carries out an ending: the traffic change first, then the outcome to report. */
  private async end(
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

  private async cancelled(state: RolloutState, weight: number, reason: string): Promise<EngineOutcome> {
    const end = ending("aborted", undefined, weight, reason, this.c.s) as Ending;
    if (weight === 0 && end.action === "rollback")
      return this.c.finish({
        result: "unchanged",
        weight: 0,
        reason: `${reason}; no traffic had moved`,
        failed: true,
        state,
      });
    return this.c.finish(await this.end(end, state, weight, {}));
  }

  private async halted(state: RolloutState, weight: number, why: string): Promise<EngineOutcome> {
    return this.c.finish(await this.writes.halt(state, weight, why, {}));
  }

  private async onWriteFailure(
    error: unknown,
    state: RolloutState,
    index: number,
    weightNow: number,
  ): Promise<EngineOutcome> {
    if (error instanceof LeaseHeldError || error instanceof CommandError) throw error;
    const why = `Could not set stage ${index + 1} (${state.stages[index]} %): ${errorMessage(error)}`;
    // A write that failed may still have been applied: only routes read at 0 % mean nothing moved.
    if (weightNow === 0) {
      const found = await this.c.ports.traffic.read().catch(() => undefined);
      if (found?.weights.every((w) => w === 0))
        return this.c.finish({ result: "unchanged", weight: 0, reason: why, failed: true, state });
    }
    if (this.c.s.onUnreachable === "hold") {
      await this.c.emit({
        type: "warning",
        at: this.c.now(),
        message: `${why}; holding at ${weightNow} % (on-unreachable: hold)`,
      });
      return this.c.finish({
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
    return this.c.finish({ result: "rolled-back", weight: 0, reason: why, failed: true, state: written });
  }
}
