/**
 * Where the commands meet finalization (./finalize.ts): a `promote` retries or resumes one, and a
 * `rollout` resumes one of its own commit, refuses to copy another commit's canary, refuses a
 * promotion never finalized, and readies the canary Deployment before stage 1.
 */
import { errorMessage } from "../error-message.ts";
import { allOnCanary } from "./adopt-split.ts";
import type { EngineContext, EngineOutcome } from "./context.ts";
import { Finalizer, readyCanary } from "./finalize.ts";
import { LeaseHeldError, leaseBlocks, type RolloutState } from "./model/state.ts";
import type { TrafficView } from "./ports.ts";
import { CommandError, guarded } from "./transitions.ts";

/** Tells the reporters a run started (the engine's `started`). */
export type Started = (state: RolloutState, fromStage: number, weight: number) => Promise<void>;

export class FinalizeCommands {
  private readonly context: EngineContext;
  private readonly started: Started;

  constructor(context: EngineContext, started: Started) {
    this.context = context;
    this.started = started;
  }

  /**
   * A finalization to retry or resume (`finalizing`), or a promotion left at 100 % canary from
   * before finalization existed (or from finalize: none) that a promote finalizes now.
   */
  finalizable(state: RolloutState, view: TrafficView): boolean {
    if (state.status === "finalizing") {
      if (!this.context.finalizing)
        throw new CommandError(
          `rollout ${state.rolloutId} is being finalized (the stable Deployment gets the canary's pod template), but this run has finalize: none; nothing was changed. Run with finalize: copy to finish it`,
        );
      return true;
    }
    return (
      this.context.settings.command === "promote" &&
      this.context.finalizing &&
      state.status === "promoted" &&
      !state.finalized &&
      allOnCanary(view.weights)
    );
  }

  async finalize(state: RolloutState): Promise<EngineOutcome> {
    if (this.context.settings.rolloutId && state.rolloutId !== this.context.settings.rolloutId)
      throw new CommandError(
        `${this.context.settings.command} of rollout ${this.context.settings.rolloutId} refused: ${this.context.where} records rollout ${state.rolloutId} (${state.commit.slice(0, 7)}) as ${state.status}; nothing was changed`,
      );
    const lease = leaseBlocks(state, this.context.holder, this.context.ports.clock.now());
    if (lease) throw new LeaseHeldError(this.context.where, lease);
    const workloads = this.context.ports.workloads;
    if (!workloads) throw new CommandError("finalization needs the Deployments (finalize: copy)");
    await workloads.resolve(this.context.ports.signal);
    await this.started(state, state.stages.length, state.weight);
    if (this.context.settings.dryRun)
      return this.context.finish({
        result: "unchanged",
        weight: state.weight,
        reason: `Dry run: rollout ${state.rolloutId} would be finalized (the stable Deployment gets the canary's pod template); nothing written`,
        failed: false,
        state,
      });
    const passed =
      state.status === "promoted"
        ? `Rollout ${state.rolloutId} was promoted before it could be finalized`
        : (state.reason ?? `All ${state.stages.length} stages passed`);
    return new Finalizer(this.context, workloads).run(state, passed);
  }

  /**
   * The post step after main stopped once the last stage had passed (killed, or the write that
   * records the pass failed): never a rollback. While the state still says `progressing` with all
   * traffic on the canary, it records the pass, changing no route: `finalizing` (no lease, so a
   * `promote` resumes it at once) or, without finalization, `promoted`. Undefined when there is
   * nothing to record (main recorded it, or someone else has acted since).
   */
  async recordPass(rolloutId: string, passed: string, finalize: boolean): Promise<EngineOutcome | undefined> {
    const { context } = this;
    const view = await context.ports.traffic.read();
    const state = view.state;
    const stays = `the post step leaves all traffic on the canary of rollout ${rolloutId}, which passed every stage`;
    if (!(state?.rolloutId === rolloutId && state.status === "progressing" && allOnCanary(view.weights)))
      return undefined;
    const why = finalize
      ? "the job stopped before the finalization began; run command: promote to finalize"
      : undefined;
    try {
      const written = await context.ports.traffic.record(
        guarded(
          { holder: context.holder, now: () => context.ports.clock.now(), rolloutId, expectWeight: 100 },
          (previous) =>
            context.after(
              previous ?? state,
              {
                status: finalize ? "finalizing" : "promoted",
                reason: passed,
                lease: undefined,
                ...(why ? { finalizeProblem: why } : {}),
              },
              "pass-recorded",
              `${passed}; recorded by the post step`,
            ),
        ),
      );
      return context.finish({
        result: "promoted",
        weight: 100,
        reason: `The job stopped after the last stage passed; ${stays} and recorded the pass${finalize ? ". Run command: promote to finalize it" : ""}`,
        failed: false,
        finalized: false,
        state: written,
      });
    } catch (error) {
      return context.finish({
        result: "promoted",
        weight: 100,
        reason: `The job stopped after the last stage passed; ${stays}, but could not record the pass (${errorMessage(error)}). Run this rollout again (it analyses the last stage again) or command: rollback`,
        failed: false,
        finalized: false,
        state,
      });
    }
  }

  /** A rollout's part: undefined to go on with the stages, or the outcome the run ends with. */
  async beforeRollout(
    state: RolloutState | undefined,
    view: TrafficView,
  ): Promise<EngineOutcome | undefined> {
    if (state?.status === "finalizing") {
      if (state.commit !== this.context.id.commit)
        throw new CommandError(
          `rollout ${state.rolloutId} of ${state.commit.slice(0, 7)} passed every stage but is not finalized yet (${state.finalizeProblem ?? "the stable Deployment is getting the canary's pod template"}); traffic stays on its canary. This run of ${this.context.id.commit.slice(0, 7)} changed nothing: the canary Deployment may already run this commit's version, and copying it onto stable would promote it without analysis. Run command: promote (rollout-id: ${state.rolloutId}) while the canary still runs the promoted version, or command: rollback once the stable is ready`,
        );
      return this.finalize(state);
    }
    if (
      this.context.finalizing &&
      state?.status === "promoted" &&
      !state.finalized &&
      allOnCanary(view.weights)
    )
      throw new CommandError(
        `rollout ${state.rolloutId} was promoted to 100 % canary but never finalized (it ran before finalize: copy existed, or with finalize: none); nothing was changed. If the canary Deployment still runs that promoted version, run command: promote to finalize it (the stable Deployment gets its pod template and the traffic); then every release runs this workflow unchanged`,
      );
    if (this.context.finalizing && !this.context.settings.dryRun) {
      const workloads = this.context.ports.workloads;
      // Ambiguous or missing Deployments are refused before any write.
      await workloads?.resolve(this.context.ports.signal);
      if (workloads && !(state?.status === "progressing" || state?.status === "paused")) {
        const ready = await readyCanary(
          workloads,
          this.context.settings.finalize,
          state,
          this.context.ports.signal,
        );
        if (ready?.scaled)
          await this.context.emit({
            type: "finalize",
            at: this.context.now(),
            step: "canary-scaled-up",
            message: `The canary Deployment was scaled back up for this release: ${ready.status.summary}`,
          });
      }
    }
    return undefined;
  }
}
