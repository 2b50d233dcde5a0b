/**
 * The state annotation is a record, not an order (issue 20). Anyone who may edit the VirtualService
 * can write it, so what the action writes (weights, stages, Deployments) and where it reports (a
 * commit, a pull request) come from the inputs, this run's context and the cluster as they are now.
 * The record supplies progress (which stage was reached) and evidence, and only where it agrees with
 * them: a live record that contradicts the inputs or the routes is refused before any forward write
 * (a rollback never needs it), and evidence or a claimed pass is only believed from this very run.
 *
 * Pure: the caller passes what it read.
 */

import type { Command } from "./command.ts";
import { isLaterAttemptOf, isLive, type RolloutState } from "./model/state.ts";

/** What this run knows without the record. */
export interface RunFacts {
  command: Command;
  /** The `stages` input. */
  stages: readonly number[];
  /** This run's lease holder ("acme/shop run 123 attempt 1"). */
  holder: string;
  /** The commit this run is at. */
  commit: string;
  /** The `rollout-id` input: a person naming the rollout they act on. */
  rolloutId?: string;
  /** Each managed route's canary weight now, read from the cluster. */
  weights: readonly number[];
}

export interface RecordCheck {
  /** Why the record may not steer a forward write (rollout, promote); undefined when it agrees. */
  refusal?: string;
  /** Written by this run, or by an earlier attempt of it (a re-run): its evidence and passes are this run's own. */
  ownRun: boolean;
  /** Who last wrote the record, as it says (unverified). */
  writer?: string;
  /** The record's commit may be reported on (the run's own, or the one a person named by rollout-id). */
  commitAttested: boolean;
}

/** Who wrote the record last, as it says: the last history entry's holder, else the lease's. */
export function writerOf(state: RolloutState): string | undefined {
  return state.history.findLast((h) => h.holder !== undefined)?.holder ?? state.lease?.holder;
}

/** Whether `holder` is the run that wrote `state`, or a later attempt of it. */
export function writtenByThisRun(state: RolloutState, holder: string): boolean {
  const writer = writerOf(state);
  return writer !== undefined && (writer === holder || isLaterAttemptOf(holder, writer));
}

const list = (xs: readonly number[]) => xs.join(",") || "none";

/** The first disagreement between a live record and the inputs or the routes, if any. */
function disagreement(state: RolloutState, facts: RunFacts, ownRun: boolean): string | undefined {
  const id = `rollout ${state.rolloutId}`;
  if (list(state.stages) !== list(facts.stages))
    return `the record of ${id} says stages ${list(state.stages)}, but this run's stages input is ${list(facts.stages)}: a record never chooses the stages. Run with the stages the rollout started with, or command: rollback`;
  if (state.stageIndex >= state.stages.length)
    return `the record of ${id} says stage ${state.stageIndex + 1} of ${state.stages.length}, which does not exist`;
  const bad = (state.stageResults ?? []).find((r) => state.stages[r.stage] !== r.weight);
  if (bad)
    return `the record of ${id} has a result for stage ${bad.stage + 1} at ${bad.weight} %, but that stage is ${state.stages[bad.stage] ?? "not one of the stages"}`;
  const routes = `${list(facts.weights)} %`;
  if (state.status === "progressing") {
    const at = state.stageIndex < 0 ? 0 : (state.stages[state.stageIndex] as number);
    const before = state.stageIndex < 1 ? 0 : (state.stages[state.stageIndex - 1] as number);
    if (state.weight !== at)
      return `the record of ${id} says ${state.weight} % at stage ${state.stageIndex + 1}, whose weight is ${at} %`;
    // A write of the next stage may have reached some VirtualServices and not others.
    if (facts.weights.some((w) => w !== at && w !== before))
      return `the record of ${id} says the canary is at ${at} % (stage ${state.stageIndex + 1}), but the routes carry ${routes}`;
  }
  if (state.status === "finalizing") {
    if (facts.weights.length === 0 || facts.weights.some((w) => w !== 100))
      return `the record of ${id} says every stage passed and the canary carries all traffic while it is finalized, but the routes carry ${routes}`;
    // Another commit's run is refused by the finalization itself (it would copy that commit's canary).
    if (facts.command === "rollout" && !ownRun && state.commit === facts.commit)
      return `the record says ${id} of this commit passed every stage and is being finalized, but it was written by ${writerOf(state) ?? "an unnamed writer"}, not by this run: a record is not proof that the canary passed, so this run copies nothing onto the stable Deployment and leaves the traffic on the canary. A person who knows it passed runs command: promote (rollout-id: ${state.rolloutId}) to finish the finalization; otherwise run command: rollback`;
  }
  return undefined;
}

/**
 * What of `state` this run may act on. Only live records (progressing, paused, finalizing) steer a
 * command; a finished one only tells where the routes came from (which a rollback checks anyway).
 */
export function checkRecord(state: RolloutState | undefined, facts: RunFacts): RecordCheck {
  if (!state) return { ownRun: false, commitAttested: false };
  const ownRun = writtenByThisRun(state, facts.holder);
  const named =
    facts.rolloutId !== undefined &&
    facts.rolloutId === state.rolloutId &&
    state.commit.length >= 7 &&
    state.rolloutId.startsWith(state.commit.slice(0, 7));
  const live = isLive(state);
  const refusal =
    live && (facts.command === "rollout" || facts.command === "promote")
      ? disagreement(state, facts, ownRun)
      : undefined;
  return {
    refusal: refusal && `${refusal}; nothing was changed`,
    ownRun,
    writer: writerOf(state),
    commitAttested: state.commit === facts.commit || named,
  };
}

/**
 * The next configured stage above `weight`: the most one write may give the canary on a route that
 * has `weight` now. Above the last stage below 100, that is 100.
 */
export function nextStageAbove(stages: readonly number[], weight: number): number {
  return stages.find((s) => s > weight) ?? 100;
}

/** A route that `target` would move by more than one configured stage, as "20 % → 100 %", or undefined. */
export function moreThanOneStage(
  stages: readonly number[],
  weights: readonly number[],
  target: number,
): string | undefined {
  const from = weights.find((w) => target > w && target > nextStageAbove(stages, w));
  return from === undefined ? undefined : `${from} % → ${target} %`;
}
