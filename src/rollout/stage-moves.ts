/**
 * Writes in the run of stages that are not a stage's own weight change: a step back from 100 %
 * and back up again (the last stage's analysis asks for them), and the record that takes an
 * adopted split over, without moving it, while it is judged at its current weights.
 */
import { type Evidence, emptyEvidence } from "../analysis/evidence.ts";
import { evidenceSettings } from "../analysis/judge.ts";
import type { JudgeSettings } from "../analysis/types.ts";
import { abortable } from "./abortable.ts";
import type { EngineContext } from "./context.ts";
import { nextIsFinal100, type RolloutState, type StageResult } from "./model/state.ts";
import type { TrafficView } from "./ports.ts";
import { analyseStage, type StageAnalysis } from "./stage-analysis.ts";
import { guarded } from "./transitions.ts";

/**
 * Moves the routes from `from` to `to` within stage `index`, recorded with why: the same guarded
 * write as a stage's (a person's edit throws PersonEditError and is never overwritten).
 */
export async function stepWrite(
  c: EngineContext,
  state: RolloutState,
  index: number,
  move: { from: number; to: number; why: string },
  saved: Partial<RolloutState>,
): Promise<RolloutState> {
  const { clock, signal } = c.ports;
  const { from, to, why } = move;
  const back = to < from;
  const message = back
    ? `Stepped back from ${from} % to ${to} %: ${why}`
    : `Back to ${to} % after the step back`;
  await c.emit({ type: "warning", at: c.now(), message });
  // The post step learns of the write before it is sent, as for a stage's.
  await c.emit({ type: "moving", at: c.now(), rolloutId: state.rolloutId, stage: index, weight: to });
  const written = await c.ports.traffic.write(
    to,
    guarded(
      {
        holder: c.holder,
        now: () => clock.now(),
        rolloutId: state.rolloutId,
        expectWeight: from,
        targetWeight: to,
      },
      (previous) =>
        c.after(
          previous && previous.rolloutId === state.rolloutId ? previous : state,
          {
            weight: to,
            stageIndex: index,
            status: "progressing",
            lease: { holder: c.holder, expiresAt: c.leaseUntil() },
            ...saved,
          },
          back ? "stepped-back" : "stepped-up",
          message,
        ),
    ),
    signal,
  );
  await c.emit({ type: "weight", at: c.now(), stage: index, weight: to });
  return written;
}

/**
 * Takes an adopted split over (this run's rollout and lease on the VirtualService) and moves no
 * route: it is judged at the weights found before anything raises it.
 */
async function recordAdopted(
  c: EngineContext,
  state: RolloutState,
  weight: number,
  found: TrafficView,
): Promise<RolloutState> {
  const { clock, signal } = c.ports;
  const reason = `Judging the adopted split at its current weights (${found.weights.join(", ")} %) beside stable before raising it`;
  return c.ports.traffic.record(
    guarded(
      {
        holder: c.holder,
        now: () => clock.now(),
        rolloutId: state.rolloutId,
        expectWeight: weight,
        // Each route must still carry the weight found on it: a person's split made meanwhile wins.
        found,
      },
      (previous, view) =>
        c.after(
          previous && previous.rolloutId === state.rolloutId
            ? previous
            : { ...state, original: state.original.length > 0 ? state.original : view.original },
          { status: "progressing", lease: { holder: c.holder, expiresAt: c.leaseUntil() } },
          "judging",
          reason,
        ),
    ),
    signal,
  );
}

/**
 * An adopted split, taken over and judged at its current weights as a stage below the last (stable
 * serves beside the canary; each route must keep the weight found on it). Reported as
 * the stage before the next one, at the weight it was judged at. The caller acts on the verdict
 * (a failing canary is rolled back: a write to 0, never one that raises it) and then sends
 * `stageEnd`. Throws PersonEditError on a person's edit, and what a cancelled analysis throws.
 */
export async function judgeAdoptedSplit(
  c: EngineContext,
  initial: RolloutState,
  split: {
    from: number;
    weight: number;
    found: TrafficView;
    evidence?: Evidence;
    judge: JudgeSettings;
  },
): Promise<{
  state: RolloutState;
  analysis: StageAnalysis;
  stageResult: StageResult;
  stageEnd: () => Promise<void>;
}> {
  const { traffic, metrics, clock, signal } = c.ports;
  if (!metrics) throw new Error("judging an adopted split needs the metrics port");
  const { from, weight, found } = split;
  const state = await recordAdopted(c, initial, weight, found);
  const mark = await abortable(metrics.start(clock.now(), signal), signal).catch(() => undefined);
  const index = Math.max(0, from - 1);
  const changedAt = clock.now().getTime();
  const { judge } = split;
  // Taken over below a final 100 % stage, the split is the last weight where stable serves beside
  // the canary: it holds as long as that stage would (rules.ts, LAST_BESIDE_STABLE_HOLD).
  const lastBesideStable = nextIsFinal100(initial.stages, from);
  const analysis = await analyseStage(
    { metrics, checks: c.ports.checks, traffic, clock, events: c.ports.events, signal },
    {
      index,
      weight,
      foundWeights: found.weights,
      final: false,
      ...(lastBesideStable ? { lastBesideStable } : {}),
      changedAt,
      mark,
      evidence: split.evidence ?? emptyEvidence(c.settings.analysis.latencyThresholdMs !== undefined),
      intervalMs: c.settings.intervalMs,
      settleMs: 0,
      judge,
      evidenceSettings: evidenceSettings(judge),
    },
  );
  const { verdict, decision, reason } = analysis;
  const durationMs = clock.now().getTime() - changedAt;
  const stageResult: StageResult = {
    stage: index,
    weight,
    decision,
    reason,
    at: c.now(),
    durationMs,
    ...(verdict?.canary ? { canary: verdict.canary } : {}),
    ...(verdict?.stable ? { stable: verdict.stable } : {}),
  };
  const stageEnd = () =>
    c.emit({ type: "stage-end", at: c.now(), stage: index, weight, durationMs, verdict, decision, reason });
  return { state, analysis, stageResult, stageEnd };
}
