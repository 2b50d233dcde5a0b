/**
 * The rollout engine: the commands (rollout, promote, rollback, status, and the post step's
 * abandon) as a state machine that only decides (as Flagger's scheduler). It talks to the mesh, the
 * metrics backend, time and the reporters through the ports in ./ports.ts, so the same code runs in
 * real time in the action and in virtual time in tests and benchmarks. The run of stages is in
 * ./stage-runner.ts; one stage's analysis in ./stage-analysis.ts; the ending policy in ./ending.ts.
 */

import {
  allOnCanary,
  allOnCanaryRefusal,
  continuation,
  restartReason,
  type SplitFound,
} from "./adopt-split.ts";
import {
  EngineContext,
  type EngineIdentity,
  type EngineOutcome,
  type EnginePorts,
  type EngineSettings,
} from "./context.ts";
import { dryRun } from "./dry-run.ts";
import { leftBehind } from "./ending.ts";
import { rollbackBlocked } from "./finalize.ts";
import { FinalizeCommands } from "./finalize-commands.ts";
import { takeOverDeadLease } from "./lease-takeover.ts";
import { isLive, LeaseHeldError, leaseBlocks, type RolloutState } from "./model/state.ts";
import type { TrafficView } from "./ports.ts";
import { countFromPreview, previewNote, runPreview } from "./preview.ts";
import { promoteUnanalysed } from "./promote-unanalysed.ts";
import { checkRecord } from "./record-check.ts";
import { StageRunner } from "./stage-runner.ts";
import { freshState, TrafficWrites } from "./traffic-writes.ts";
import { CommandError, guarded, PersonEditError } from "./transitions.ts";

export type {
  EngineIdentity,
  EngineOutcome,
  EnginePorts,
  EngineSettings,
} from "./context.ts";
export { CommandError } from "./transitions.ts";

export class RolloutEngine {
  private readonly context: EngineContext;
  private readonly stages: StageRunner;
  private readonly writes: TrafficWrites;
  private readonly finalization: FinalizeCommands;

  constructor(settings: EngineSettings, identity: EngineIdentity, ports: EnginePorts, where: string) {
    this.context = new EngineContext(settings, identity, ports, where);
    this.stages = new StageRunner(this.context);
    this.writes = new TrafficWrites(this.context);
    this.finalization = new FinalizeCommands(this.context, (state, from, weight) =>
      this.started(state, from, weight),
    );
  }

  async run(): Promise<EngineOutcome> {
    switch (this.context.settings.command) {
      case "status":
        return this.status();
      case "rollback":
        return this.requestedRollback();
      case "preview":
        return runPreview(this.context, this.context.settings.rolloutId ?? this.context.id.newRolloutId);
      case "promote":
        await takeOverDeadLease(this.context);
        return this.promote();
      default:
        await takeOverDeadLease(this.context);
        return this.rollout();
    }
  }

  private read(): Promise<TrafficView> {
    return this.context.ports.traffic.read(this.context.ports.signal);
  }

  /**
   * The state, or the reason it cannot be used for anything but a rollback: unreadable, or a record
   * that disagrees with the inputs or the routes (./record-check.ts). Evidence recorded by another
   * run is not carried: this run's stages gather their own.
   */
  private async usableState(view: TrafficView): Promise<RolloutState | undefined> {
    if (view.stateProblem)
      throw new CommandError(`${view.stateProblem}; nothing was changed. command: rollback works without it`);
    const state = view.state;
    const check = checkRecord(state, {
      command: this.context.settings.command,
      stages: this.context.settings.stages,
      holder: this.context.holder,
      commit: this.context.id.commit,
      rolloutId: this.context.settings.rolloutId,
      weights: view.weights,
    });
    if (check.refusal)
      throw new CommandError(
        `${this.context.where}: ${check.refusal}. command: rollback works without the record`,
      );
    if (!state?.evidence || check.ownRun) return state;
    // A finished rollout's evidence would not be continued anyway: say so only for a live one.
    const live = isLive(state);
    if (!live) return { ...state, evidence: undefined };
    await this.context.emit({
      type: "warning",
      at: this.context.now(),
      message: `The analysis evidence recorded on the VirtualService (by ${check.writer ?? "an unnamed writer"}) is not carried into this run: anyone who can edit the VirtualService can write it. The stages this run analyses gather their own`,
    });
    return { ...state, evidence: undefined };
  }

  /**
   * For the post step: when rollout `rolloutId` is still progressing (main stopped mid-stage), or
   * any of several VirtualServices still carries it while another records its end (a rollback one
   * of them refused), restore 100 % stable and record why, unless someone else's weights are on
   * the routes. `reason` gets the VirtualServices found still on the canary. `ended`: main ended
   * the rollout (its in-flight record is cleared), so only the rollback it recorded on some
   * VirtualService is finished on the others. Undefined when there is nothing to do.
   */
  async abandon(
    rolloutId: string,
    reason: string | ((left: string) => string),
    weights: number[],
    ended = false,
  ): Promise<EngineOutcome | undefined> {
    const view = await this.context.ports.traffic.read();
    const state = view.state;
    if (!ended && state?.status === "finalizing" && state.rolloutId === rolloutId) {
      // Every stage passed: the canary keeps the traffic whatever the stable's state.
      return this.context.finish({
        result: "unchanged",
        weight: view.weight,
        reason: `The job stopped while rollout ${rolloutId} was being finalized; the post step leaves the traffic on the canary, which passed every stage. A re-run of this job, or command: promote, resumes the finalization`,
        failed: false,
        finalized: false,
        state,
      });
    }
    const rolledBack = (view.parts ?? [view]).some(
      (p) => p.state?.rolloutId === rolloutId && p.state.status === "rolled-back",
    );
    const left = ended && !rolledBack ? undefined : leftBehind(view, rolloutId, weights);
    if (left === undefined) return undefined;
    const why = typeof reason === "string" ? reason : reason(left);
    const written = await this.writes.rollBack(why, state, {}, true);
    return this.context.finish({
      result: "rolled-back",
      weight: 0,
      reason: why,
      failed: false,
      state: written,
    });
  }

  /** The post step after the last stage passed: records the pass, never rolls back (./finalize-commands.ts). */
  recordPass(rolloutId: string, passed: string, finalize: boolean): Promise<EngineOutcome | undefined> {
    return this.finalization.recordPass(rolloutId, passed, finalize);
  }

  /** Tells the reporters what earlier runs of this rollout found, so every report shows every stage. */
  private async replay(state: RolloutState | undefined): Promise<void> {
    for (const result of state?.stageResults ?? [])
      await this.context.emit({ type: "recorded-stage", at: result.at, result });
  }

  private async started(state: RolloutState, fromStage: number, weight: number): Promise<void> {
    await this.context.emit({
      type: "started",
      at: this.context.now(),
      command: this.context.settings.command,
      rolloutId: state.rolloutId,
      commit: state.commit,
      ...(state.promotedCommit ? { promotedCommit: state.promotedCommit } : {}),
      stages: state.stages,
      fromStage,
      weight,
    });
    await this.replay(state);
  }

  private async status(): Promise<EngineOutcome> {
    const view = await this.read();
    const state = view.state;
    if (state) await this.started(state, state.stageIndex, view.weight);
    const reason = state
      ? `Rollout ${state.rolloutId} of ${state.commit.slice(0, 7)} is ${state.status} at ${view.weight} % canary${state.reason ? `: ${state.reason}` : ""}`
      : `${view.stateProblem ? `${view.stateProblem}. ` : "No rollout recorded; "}the canary gets ${view.weights.join(", ") || 0} %`;
    const outcome = { result: "unchanged" as const, weight: view.weight, failed: false, state };
    return this.context.finish({ ...outcome, reason: reason + previewNote(view) });
  }

  private async requestedRollback(): Promise<EngineOutcome> {
    const view = await this.read();
    const state = view.state;
    if (this.context.settings.rolloutId && state && state.rolloutId !== this.context.settings.rolloutId) {
      throw new CommandError(
        `rollback of rollout ${this.context.settings.rolloutId} refused: ${this.context.where} records rollout ${state.rolloutId} (${state.commit.slice(0, 7)}); nothing was changed`,
      );
    }
    if (view.weights.every((w) => w === 0) && state?.status !== "progressing") {
      // A preview route alone (no rollout began): removing it is this rollback's whole work.
      const removed = view.preview
        ? await this.context.ports.traffic.removePreview?.(this.context.ports.signal)
        : [];
      if (removed && removed.length > 0)
        return this.context.finish({
          result: "rolled-back",
          weight: 0,
          reason: `All traffic already goes to stable; the preview route (${removed.join(", ")}) was removed`,
          failed: false,
          state,
        });
      return this.context.finish({
        result: "rolled-back",
        weight: 0,
        reason: "All traffic already goes to stable; nothing to roll back",
        failed: false,
        state,
      });
    }
    if (state?.status === "finalizing") {
      const warn = (message: string) =>
        this.context.emit({ type: "warning", at: this.context.now(), message });
      const blocked = await rollbackBlocked(
        this.context.ports.workloads,
        state,
        warn,
        this.context.ports.signal,
      );
      if (blocked)
        return this.context.finish({
          result: "unchanged",
          weight: view.weight,
          reason: `Rollback refused: ${blocked}`,
          failed: true,
          finalized: false,
          state,
        });
    }
    const reason = `Rollback requested by ${this.context.holder}`;
    const written = await this.writes.rollBack(reason, state, {}, true);
    return this.context.finish({ result: "rolled-back", weight: 0, reason, failed: false, state: written });
  }

  private async promote(): Promise<EngineOutcome> {
    const view = await this.read();
    const state = await this.usableState(view);
    if (state && this.finalization.finalizable(state, view)) return this.finalization.finalize(state);
    if (state?.status !== "paused") {
      const live = state?.status === "progressing";
      const split = !live && view.weights.some((w) => w > 0) && !allOnCanary(view.weights);
      throw new CommandError(
        `nothing to promote: ${this.context.where} ${state ? `records rollout ${state.rolloutId} as ${state.status}` : "records no rollout"}, not a paused one; nothing was changed${split ? `. The routes already send ${view.weights.join(", ")} % to the canary: command: rollout adopts that split and continues from the next stage above it` : ""}`,
      );
    }
    if (this.context.settings.rolloutId && state.rolloutId !== this.context.settings.rolloutId) {
      throw new CommandError(
        `promote of rollout ${this.context.settings.rolloutId} refused: the paused rollout is ${state.rolloutId} (${state.commit.slice(0, 7)}); nothing was changed`,
      );
    }
    const lease = leaseBlocks(state, this.context.holder, this.context.ports.clock.now());
    if (lease) throw new LeaseHeldError(this.context.where, lease);
    if (view.weights.some((w) => w !== state.weight)) {
      throw new CommandError(
        `the weights were changed by hand since the rollout paused (it recorded ${state.weight} %, the routes carry ${view.weights.join(", ")} %); nothing was changed. Run command: rollback, or start a new rollout`,
      );
    }
    await this.started(state, state.stageIndex + 1, view.weight);
    if (this.context.settings.skipAnalysis) return promoteUnanalysed(this.context, state);
    // A promote is the same run of stages, from the one after the pause, without stopping again.
    return this.stages.run(state, state.stageIndex + 1, state.weight, undefined);
  }

  private async rollout(): Promise<EngineOutcome> {
    const view = await this.read();
    let state = await this.usableState(view);
    const ended = await this.finalization.beforeRollout(state, view);
    if (ended) return ended;
    const live = state && (state.status === "progressing" || state.status === "paused");
    if (live && state) {
      const lease = leaseBlocks(state, this.context.holder, this.context.ports.clock.now());
      if (lease) throw new LeaseHeldError(this.context.where, lease);
    }
    if (live && state && state.commit === this.context.id.commit) {
      if (state.status === "paused") {
        const reason = `Rollout ${state.rolloutId} is paused at ${view.weight} %; continue it with command: promote, or end it with command: rollback`;
        return this.context.finish({ result: "paused", weight: view.weight, reason, failed: false, state });
      }
      // A run that died mid-stage (its lease expired, or an earlier attempt of this run): continue
      // where it was, analysing that stage again.
      await this.context.emit({
        type: "warning",
        at: this.context.now(),
        message: `Continuing rollout ${state.rolloutId} from stage ${state.stageIndex + 1}, where an earlier run stopped`,
      });
      return this.start(state, Math.max(state.stageIndex, 0), view);
    }
    if (!live && view.weights.some((w) => w > 0)) return this.adopt(view, state);
    const fresh = freshState(this.context, view.weight, view.original, state);
    if (live && state) {
      fresh.history.push({
        at: this.context.now(),
        weight: view.weight,
        event: "superseded",
        reason: `rollout ${state.rolloutId} of ${state.commit.slice(0, 7)} replaced by a rollout of ${this.context.id.commit.slice(0, 7)}`,
      });
      // Keep what the routes looked like before the superseded rollout began.
      fresh.original = state.original;
      state = undefined;
    }
    this.stages.countFrom = countFromPreview(fresh, view, this.context.ports.clock.now());
    return this.start(fresh, 0, view);
  }

  private async start(state: RolloutState, from: number, view: TrafficView): Promise<EngineOutcome> {
    await this.started(state, from, view.weight);
    if (this.context.settings.dryRun) return dryRun(this.context, state, from);
    return this.stages.run(state, from, view.weight, this.context.settings.pauseAfter);
  }

  /**
   * The routes already send traffic to the canary and no rollout is live (a split made by hand, or
   * a finished rollout's): continue from the next stage above it, or (on-split: restart) move every
   * route back to 100 % stable and run from stage 1. All of it on the canary is refused.
   */
  private async adopt(view: TrafficView, finished: RolloutState | undefined): Promise<EngineOutcome> {
    const found: SplitFound = {
      stages: this.context.settings.stages,
      weights: view.weights,
      routes: view.original,
      state: finished,
      kind: view.object.kind,
    };
    if (allOnCanary(view.weights)) throw new CommandError(allOnCanaryRefusal(found));
    if (this.context.settings.onSplit === "restart") return this.restart(found, view);
    const { from, weight, message } = continuation(found);
    const fresh = freshState(this.context, weight, view.original, finished);
    fresh.history.push({
      at: this.context.now(),
      weight,
      event: "adopted",
      reason: message,
      holder: this.context.holder,
    });
    await this.context.emit({ type: "warning", at: this.context.now(), message });
    await this.started(fresh, from, weight);
    if (this.context.settings.dryRun) return dryRun(this.context, fresh, from);
    return this.stages.run(fresh, from, weight, this.context.settings.pauseAfter, view);
  }

  /** on-split: restart: the rollback write (recorded as this new rollout's, with why), then stage 1. */
  private async restart(found: SplitFound, view: TrafficView): Promise<EngineOutcome> {
    const reason = restartReason(found);
    const fresh = freshState(this.context, view.weight, view.original, found.state);
    await this.context.emit({ type: "warning", at: this.context.now(), message: `Restarting: ${reason}` });
    await this.started(fresh, 0, view.weight);
    if (this.context.settings.dryRun) return dryRun(this.context, fresh, 0, true);
    const { context } = this;
    let restarted: RolloutState;
    try {
      // Not a rollback but a move like any other: each route must still carry the weight found on
      // it (a person's split made since wins), and no VirtualService is moved when any refuses.
      restarted = await context.ports.traffic.write(
        0,
        guarded(
          { holder: context.holder, now: () => context.ports.clock.now(), found: view, targetWeight: 0 },
          (_previous, now) =>
            context.after(
              { ...fresh, original: now.original },
              {
                weight: 0,
                status: "progressing",
                lease: { holder: context.holder, expiresAt: context.leaseUntil() },
              },
              "restarted",
              reason,
            ),
        ),
        context.ports.signal,
        { allOrNothing: true },
      );
    } catch (error) {
      if (!(error instanceof PersonEditError)) throw error;
      return context.finish({
        result: "unchanged",
        weight: error.view.weight,
        reason: `Stopped before the restart: ${error.message}`,
        failed: true,
        state: found.state,
      });
    }
    return this.stages.run(restarted, 0, 0, context.settings.pauseAfter);
  }
}
