/**
 * The run of stages: for each, take the counters, write the weight (the post step learns of it
 * before the write is sent), analyse, then act on the ending policy. Traffic comes first: a
 * rollback is written before anything is reported, and after a cancellation the rollback is the
 * only write.
 */
import type { Evidence } from "../analysis/evidence.ts";
import { evidenceSettings } from "../analysis/judge.ts";
import { stageMinimumMs } from "../analysis/rules.ts";
import { abortable } from "./abortable.ts";
import type { EngineContext, EngineOutcome } from "./context.ts";
import { ending } from "./ending.ts";
import { carriedEvidence, judgeSettings } from "./judge-settings.ts";
import { nextIsFinal100, type RolloutState, type StageResult } from "./model/state.ts";
import type { MetricsMark, MetricsPort, TrafficView } from "./ports.ts";
import { analyseStage } from "./stage-analysis.ts";
import { StageEndings, type StageJudgement, type StagePlan } from "./stage-endings.ts";
import { judgeAdoptedSplit, stepWrite } from "./stage-moves.ts";
import { TrafficWrites } from "./traffic-writes.ts";
import { guarded, PersonEditError } from "./transitions.ts";

/** What a run of stages carries from one stage to the next. */
interface StageProgress {
  state: RolloutState;
  /** The weight on the routes now: what the next write expects to find. */
  weightNow: number;
  /** A stage analysed again (a run that continues an interrupted one) replaces its earlier result. */
  results: StageResult[];
  evidence: Evidence;
}

/** What every write of the run saves with the progress: the results and evidence so far. */
const progressRecord = (progress: StageProgress): Partial<RolloutState> => ({
  stageResults: [...progress.results],
  evidence: progress.evidence,
});

export class StageRunner {
  private readonly context: EngineContext;
  private readonly writes: TrafficWrites;
  private readonly endings: StageEndings;
  constructor(context: EngineContext) {
    this.context = context;
    this.writes = new TrafficWrites(context);
    this.endings = new StageEndings(context, this.writes);
  }

  private get aborted(): boolean {
    return this.context.ports.signal?.aborted ?? false;
  }

  /** When set, the first stage counts the canary's requests from then (the preview's start), not from its write. */
  countFrom?: Date;

  /** The metrics to judge each stage by; undefined when analysis is skipped (or there is no Prometheus). */
  private get judgingMetrics(): MetricsPort | undefined {
    return this.context.settings.skipAnalysis ? undefined : this.context.ports.metrics;
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
    const progress = await this.startProgress(initial, from, current);
    // An adopted split is judged at the weights found, beside stable, before any write raises it.
    if (this.judgingMetrics && found) {
      const judged = await this.judgeAdopted(progress.state, from, current, found, progress.evidence);
      if ("result" in judged) return judged;
      progress.state = judged.state;
      progress.evidence = judged.evidence;
      progress.results.push(judged.stageResult);
    }
    for (let index = from; index < progress.state.stages.length; index++) {
      const plan: StagePlan = {
        index,
        weight: progress.state.stages[index] as number,
        final: index === progress.state.stages.length - 1,
      };
      const outcome = await this.runStage(progress, plan, pauseAfter, index === from ? found : undefined);
      if (outcome) return outcome;
    }
    // Only reached when `from` is past the last stage (a promote of a rollout already at its end).
    return this.context.finish({
      result: "promoted",
      weight: progress.state.weight,
      reason: "No stages left",
      failed: false,
      state: progress.state,
    });
  }

  /** The results before `from` and the evidence an earlier run left, when the analysis inputs are the same. */
  private async startProgress(initial: RolloutState, from: number, current: number): Promise<StageProgress> {
    const { context } = this;
    const evidence = carriedEvidence(initial.evidence, context);
    if (initial.evidence && evidence !== initial.evidence)
      await context.emit({
        type: "warning",
        at: context.now(),
        message:
          "The analysis inputs changed since the evidence was gathered (max-error-rate, max-ratio-to-stable or latency-threshold): the evidence starts afresh",
      });
    const results = (initial.stageResults ?? []).filter((r) => r.stage < from);
    return { state: initial, weightNow: current, results, evidence };
  }

  /**
   * One stage: mark the counters, write the weight, analyse, record the result, then end the run
   * or go on. Undefined to go on to the next stage; otherwise the outcome the run ends with.
   */
  private async runStage(
    progress: StageProgress,
    plan: StagePlan,
    pauseAfter: number | undefined,
    found: TrafficView | undefined,
  ): Promise<EngineOutcome | undefined> {
    const { context } = this;
    const { clock, signal } = context.ports;
    const { index, weight } = plan;
    const metrics = this.judgingMetrics;
    const before = `The job was cancelled before stage ${index + 1}`;
    if (this.aborted) return this.endings.cancelled(progress.state, progress.weightNow, before);
    // Count from the weight change: requests are labelled by the version that served them.
    let mark: MetricsMark | undefined;
    // Stage 1 of a rollout that follows its preview counts from the preview: its requests are the canary's.
    const from = this.countFrom && index === 0 ? this.countFrom : clock.now();
    this.countFrom = undefined;
    if (metrics) mark = await abortable(metrics.start(from, signal), signal).catch(() => undefined);
    if (this.aborted) return this.endings.cancelled(progress.state, progress.weightNow, before);
    await context.emit({
      type: "moving",
      at: context.now(),
      rolloutId: progress.state.rolloutId,
      stage: index,
      weight,
    });
    const unwritten = await this.writeStage(progress, plan, found);
    if (unwritten) return unwritten;
    const changedAt = clock.now().getTime();
    await context.emit({ type: "weight", at: context.now(), stage: index, weight });

    const judgement = await this.judgeStage(progress, plan, changedAt, mark);
    const durationMs = clock.now().getTime() - changedAt;
    return this.afterJudgement(progress, plan, judgement, durationMs, pauseAfter);
  }

  /**
   * Records the stage's result, then ends the run as the policies say (the traffic change before
   * the stage's report), or promotes after the last stage, or pauses as pause-after asks.
   * Undefined to go on to the next stage.
   */
  private async afterJudgement(
    progress: StageProgress,
    plan: StagePlan,
    judgement: StageJudgement,
    durationMs: number,
    pauseAfter: number | undefined,
  ): Promise<EngineOutcome | undefined> {
    const { context } = this;
    const { index, weight } = plan;
    const { verdict, decision, reason } = judgement;
    progress.results.push({
      stage: index,
      weight,
      decision,
      reason,
      at: context.now(),
      durationMs,
      ...(verdict?.canary ? { canary: verdict.canary } : {}),
      ...(verdict?.stable ? { stable: verdict.stable } : {}),
    });
    const stageEnd = () =>
      context.emit({
        type: "stage-end",
        at: context.now(),
        stage: index,
        weight,
        durationMs,
        verdict,
        decision,
        reason,
      });
    const end = ending(decision, verdict?.rule, progress.weightNow, reason, context.settings);
    if (end) {
      const outcome = await this.endings.end(
        end,
        progress.state,
        progress.weightNow,
        progressRecord(progress),
      );
      await stageEnd();
      return context.finish(outcome);
    }
    await stageEnd();
    // After a signal the only write allowed is the rollback.
    if (this.aborted)
      return this.endings.cancelled(
        progress.state,
        weight,
        `The job was cancelled at the end of stage ${index + 1}`,
      );
    if (plan.final) return this.endings.promote(progress.state, weight, judgement, progressRecord(progress));
    if (pauseAfter === weight)
      return this.endings.pausedAsAsked(progress.state, plan, progressRecord(progress));
    return undefined;
  }

  /**
   * The stage's weight write, guarded as every write is (a person's edit throws PersonEditError and
   * is never overwritten). Undefined once written; otherwise the outcome of the failed write.
   */
  private async writeStage(
    progress: StageProgress,
    plan: StagePlan,
    found: TrafficView | undefined,
  ): Promise<EngineOutcome | undefined> {
    const { context } = this;
    const { clock, signal } = context.ports;
    const { index, weight } = plan;
    const base = progress.state;
    const rolloutId = base.rolloutId;
    const guard = {
      holder: context.holder,
      now: () => clock.now(),
      rolloutId,
      expectWeight: progress.weightNow,
      targetWeight: weight,
      found,
      stages: context.settings.stages,
    };
    try {
      progress.state = await context.ports.traffic.write(
        weight,
        guarded(guard, (previous, view) =>
          context.after(
            previous && previous.rolloutId === rolloutId
              ? previous
              : { ...base, original: base.original.length > 0 ? base.original : view.original },
            {
              weight,
              stageIndex: index,
              status: "progressing",
              reason: undefined,
              lease: { holder: context.holder, expiresAt: context.leaseUntil() },
              ...progressRecord(progress),
            },
            `stage ${index + 1}`,
          ),
        ),
        signal,
      );
    } catch (error) {
      if (error instanceof PersonEditError)
        return this.endings.halted(progress.state, progress.weightNow, error.message);
      if (this.aborted)
        return this.endings.cancelled(
          progress.state,
          weight,
          `The job was cancelled while stage ${index + 1} was being set`,
        );
      return this.endings.writeFailed(error, progress.state, index, progress.weightNow);
    }
    progress.weightNow = weight;
    return undefined;
  }

  /**
   * The stage's analysis (or, with analysis skipped, its minimum duration). The last stage at 100 %
   * may step back to the stage below and up again; those writes update the progress as they land.
   */
  private async judgeStage(
    progress: StageProgress,
    plan: StagePlan,
    changedAt: number,
    mark: MetricsMark | undefined,
  ): Promise<StageJudgement> {
    const { context } = this;
    const { traffic, clock, signal } = context.ports;
    const { index, weight, final } = plan;
    const metrics = this.judgingMetrics;
    const { stages } = progress.state;
    const lastBesideStable = nextIsFinal100(stages, index + 1);
    try {
      if (!metrics) {
        await clock.sleep(stageMinimumMs(context.settings.analysis, lastBesideStable), signal);
        return { decision: "skipped", reason: "analysis skipped (skip-analysis)" };
      }
      const stepBack = final && weight === 100 && index > 0 ? this.stepBackFor(progress, index) : undefined;
      const analysis = await analyseStage(
        { metrics, checks: context.ports.checks, traffic, clock, events: context.ports.events, signal },
        {
          index,
          weight,
          final,
          lastBesideStable,
          changedAt,
          mark,
          evidence: progress.evidence,
          intervalMs: context.settings.intervalMs,
          settleMs: context.settings.settleMs,
          judge: judgeSettings(context),
          evidenceSettings: evidenceSettings(judgeSettings(context)),
          ...(stepBack ? { stepBack } : {}),
        },
      );
      progress.evidence = analysis.evidence;
      progress.weightNow = analysis.weight;
      return { verdict: analysis.verdict, decision: analysis.decision, reason: analysis.reason };
    } catch (error) {
      if (!this.aborted) throw error;
      return { decision: "aborted", reason: `The job was cancelled during stage ${index + 1} (${weight} %)` };
    }
  }

  /** The last stage's step back to the stage below (and up again), written with the evidence of the moment. */
  private stepBackFor(progress: StageProgress, index: number) {
    return {
      to: progress.state.stages[index - 1] as number,
      write: async (to: number, now: Evidence, why: string) => {
        progress.state = await stepWrite(
          this.context,
          progress.state,
          index,
          { from: progress.weightNow, to, why },
          { stageResults: [...progress.results], evidence: now },
        );
        progress.weightNow = to;
      },
    };
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
    const { context } = this;
    let judged: Awaited<ReturnType<typeof judgeAdoptedSplit>>;
    try {
      judged = await judgeAdoptedSplit(context, initial, {
        from,
        weight,
        found,
        evidence,
        judge: judgeSettings(context),
      });
    } catch (error) {
      if (error instanceof PersonEditError) return this.endings.halted(initial, weight, error.message);
      if (!this.aborted) throw error;
      const why = `The job was cancelled while the adopted split (${weight} %) was judged`;
      return this.endings.cancelled(initial, weight, why);
    }
    const { state, analysis, stageResult, stageEnd } = judged;
    const end = ending(analysis.decision, analysis.verdict?.rule, weight, analysis.reason, context.settings);
    if (end) {
      const saved = { evidence: analysis.evidence, stageResults: [stageResult] };
      const outcome = await this.endings.end(end, state, weight, saved);
      await stageEnd();
      return context.finish(outcome);
    }
    await stageEnd();
    return { state, evidence: analysis.evidence, stageResult };
  }
}
