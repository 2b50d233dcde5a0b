/**
 * Finalizing a promotion (issue 14, as Flagger promotes its primary): after the last stage passes,
 * the stable Deployment gets the canary's pod template, all traffic moves back to it once it is
 * ready, and the canary is scaled to zero, so the next release runs the same workflow unchanged.
 * The safety rule (Flagger PR #1931): routing "back" to a stable that is not ready is an outage, so
 * until it is ready the traffic stays on the canary that passed and the state says `finalizing`.
 * "Ready" is checked by content (issue 20): the stable must still run the template that was copied,
 * with at least as many ready pods as the canary, whatever kubectl's rollout status says. And a pass
 * is never undone: the write that records `finalizing` moves no traffic, so it is retried as long as
 * a rollback would be, and when it still fails the traffic stays on the canary.
 */
import { DEPLOYMENT_PROGRESS_DEADLINE_DEFAULT_S, ROLLBACK_RETRY_BUDGET_MS } from "../constants.ts";
import { errorMessage } from "../error-message.ts";
import { retry } from "../retry.ts";
import type { EngineContext, EngineOutcome } from "./context.ts";
import type { FinalizeStep } from "./events.ts";
import type { FinalizeConfig } from "./model/settings.ts";
import { LeaseHeldError, type RolloutState } from "./model/state.ts";
import type { WorkloadPort, WorkloadStatus } from "./ports.ts";
import { CommandError, guarded } from "./transitions.ts";

/** What a person reads when finalization stops: where the traffic is, and how to go on. */
export function notFinalizedReason(why: string): string {
  return `Promoted, but not finalized: ${why}. Traffic stays on the canary, which passed every stage; run command: promote to retry the finalization once the stable Deployment can start`;
}

/** `3/3 ready ...; problems: a; b` */
function describeStatus(status: WorkloadStatus): string {
  const problems = status.problems.length > 0 ? `: ${status.problems.join("; ")}` : "";
  return `${status.name} is not ready (${status.summary})${problems}`;
}

/** The last promotion was finalized and scaled the canary to zero: the next rollout scales it back up. */
export function canaryScaledDown(previous: RolloutState | undefined): boolean {
  return previous?.finalized === true && previous.canaryScaledDown === true;
}

/**
 * Before stage 1 of a new rollout with finalize: copy: scale the canary back up when the last
 * finalization scaled it to zero (to canary-replicas, or the stable's count), then wait until the
 * canary Deployment has rolled out (a release just updated it) with its pods ready with their
 * sidecar, so no stage judges a mix of the old and new canary. Throws before any weight is written
 * when it does not get ready. Idempotent: the action calls it before preflight, the engine again.
 */
export async function readyCanary(
  workloads: WorkloadPort,
  settings: FinalizeConfig,
  previous: RolloutState | undefined,
  signal?: AbortSignal,
): Promise<{ status: WorkloadStatus; scaled: boolean } | undefined> {
  if (settings.policy === "none") return undefined;
  const scaled = canaryScaledDown(previous);
  if (scaled) await workloads.scaleCanary(settings.canaryReplicas ?? "stable", signal);
  const status = await workloads.waitCanary(settings.timeoutMs, signal);
  if (!status.ready)
    throw new CommandError(
      `the canary Deployment ${scaled ? "was scaled back up for this release but " : ""}did not roll out with its pods ready with their sidecar (or, in ambient mode, ready and captured by ztunnel): ${describeStatus(status)}; no weight was written, all traffic stays on stable`,
    );
  return { status, scaled };
}

export class Finalizer {
  private readonly context: EngineContext;
  private readonly workloads: WorkloadPort;

  constructor(context: EngineContext, workloads: WorkloadPort) {
    this.context = context;
    this.workloads = workloads;
  }

  private emit(step: FinalizeStep, message: string): Promise<void> {
    return this.context.emit({ type: "finalize", at: this.context.now(), step, message });
  }

  /** Long enough for the stable's rollout: the stage lease plus the finalize timeout (or 10 min, the Deployment default). */
  private leaseUntil(): string {
    const extra = this.context.settings.finalize.timeoutMs ?? DEPLOYMENT_PROGRESS_DEADLINE_DEFAULT_S * 1000;
    return new Date(Date.parse(this.context.leaseUntil()) + extra).toISOString();
  }

  /**
   * From a state whose canary carries 100 % (the last stage just passed, a `finalizing` state to
   * resume, or a promotion made before finalization): record `finalizing`, copy, wait, move the
   * traffic back, scale the canary down. `passed` is how the promotion was won, for the report.
   */
  async run(state: RolloutState, passed: string, saved: Partial<RolloutState> = {}): Promise<EngineOutcome> {
    const resuming = state.status === "finalizing";
    await this.emit(
      "started",
      resuming
        ? `Resuming the finalization of rollout ${state.rolloutId}: the stable Deployment gets the canary's pod template`
        : "Finalizing: the stable Deployment gets the canary's pod template; traffic stays on the canary until it is ready",
    );
    // Nothing here may throw before `finalizing` is recorded: a step failing with the state still
    // `progressing` would let the post step roll back a canary that passed.
    const imagesBefore = state.stableImagesBefore ?? (await this.stableImages());
    let current: RolloutState;
    try {
      current = await this.recordFinalizing(state, passed, saved, imagesBefore, resuming);
    } catch (error) {
      if (error instanceof CommandError || error instanceof LeaseHeldError) throw error;
      return this.unrecorded(state, passed, error);
    }
    const stable = await this.promoteStable(current);
    if ("result" in stable) return stable;
    current = await this.routeToStable(current, stable.deployments);
    const scaled = await this.scaleCanaryDown(current);
    return this.context.finish({
      result: "promoted",
      weight: 0,
      reason: `${passed}; promoted and finalized: the stable Deployment runs the promoted version (${stable.status.summary}) and carries all traffic${scaled.note}`,
      failed: false,
      finalized: true,
      state: scaled.state,
    });
  }

  /** The stable's images before the copy, for the report; undefined when they cannot be read (never a failure). */
  private async stableImages(): Promise<Record<string, string> | undefined> {
    const before = await this.workloads.stableStatus(this.context.ports.signal).catch(() => undefined);
    return before?.images;
  }

  /**
   * Copies the canary's template onto the stable and waits until the stable serves it. The
   * stable's status and its Deployments when it does; otherwise the outcome of the stopped
   * finalization, with the traffic left on the canary.
   */
  private async promoteStable(
    current: RolloutState,
  ): Promise<EngineOutcome | { status: WorkloadStatus; deployments: { stable: string; canary: string } }> {
    const { signal } = this.context.ports;
    let status: WorkloadStatus;
    let deployments: { stable: string; canary: string } | undefined;
    try {
      deployments = await this.workloads.resolve(signal);
      // A no-op when the stable already runs the canary's template (a retry after the copy).
      const copied = await this.workloads.copyCanaryToStable(signal);
      await this.emit("copied", "Copied the canary's pod template onto the stable Deployment");
      status = await this.workloads.waitStable(this.context.settings.finalize.timeoutMs, signal);
      if (status.ready) {
        // kubectl's "rolled out" is not enough: a Deployment scaled to 0 is complete, and another
        // writer may have put another template on it while we waited.
        const unfit = await this.workloads.servesPromoted(copied, signal);
        if (unfit) return this.stopped(current, unfit, deployments);
      }
    } catch (error) {
      const why = signal?.aborted
        ? "the job was cancelled during the finalization"
        : `the stable Deployment could not be updated: ${errorMessage(error)}`;
      return this.stopped(current, why, deployments);
    }
    if (!status.ready) return this.stopped(current, describeStatus(status), deployments);
    await this.emit("stable-ready", `The stable Deployment is ready: ${status.summary}`);
    return { status, deployments };
  }

  /** All traffic back to the stable, which runs the promoted version now: recorded as a promotion, not a rollback. */
  private async routeToStable(
    current: RolloutState,
    deployments: { stable: string; canary: string },
  ): Promise<RolloutState> {
    const { context } = this;
    const written = await context.ports.traffic.write(
      0,
      guarded(
        {
          holder: context.holder,
          now: () => context.ports.clock.now(),
          rolloutId: undefined,
          expectWeight: 100,
          targetWeight: 0,
        },
        (previous) =>
          context.after(
            previous ?? current,
            {
              weight: 0,
              status: "promoted",
              finalized: true,
              deployments,
              finalizeProblem: undefined,
              canaryScaledDown: undefined,
              lease: undefined,
            },
            "finalized",
            "The stable Deployment runs the promoted version and carries all traffic",
          ),
      ),
      context.ports.signal,
    );
    await this.emit(
      "traffic-on-stable",
      "All traffic is back on the stable Deployment, which runs the promoted version",
    );
    return written;
  }

  /**
   * Scales the idle canary to zero when finalize asks to, and records it. The state after, and a
   * note for the reason ("" when it was not scaled).
   */
  private async scaleCanaryDown(current: RolloutState): Promise<{ state: RolloutState; note: string }> {
    const { context } = this;
    if (!context.settings.finalize.scaleDownCanary) return { state: current, note: "" };
    const { traffic, signal } = context.ports;
    try {
      await this.workloads.scaleCanary(0, signal);
      const recorded = await traffic.record(
        (previous) => context.after(previous ?? current, { canaryScaledDown: true }, "canary-scaled-down"),
        signal,
      );
      await this.emit("canary-scaled-down", "The canary Deployment was scaled to zero replicas");
      return { state: recorded, note: "; the canary was scaled to zero" };
    } catch (error) {
      // The stable carries the traffic: an idle canary costs resources, not availability.
      await context.emit({
        type: "warning",
        at: context.now(),
        message: `Could not scale the canary Deployment to zero: ${errorMessage(error)}. The next rollout scales it as it needs`,
      });
      return { state: current, note: "" };
    }
  }

  /**
   * Records `finalizing` with the pass, the lease kept while the stable rolls out. It moves no
   * traffic, so it is retried as long as a rollback (an outage of minutes, an admission webhook's
   * passing refusal); only another run's lease or someone else's ending stops it at once.
   */
  private recordFinalizing(
    state: RolloutState,
    passed: string,
    saved: Partial<RolloutState>,
    imagesBefore: Record<string, string> | undefined,
    resuming: boolean,
  ): Promise<RolloutState> {
    const { context } = this;
    const { clock, signal } = context.ports;
    // A promoted state is this run's to take over (no rollout id guard: that guard refuses to touch
    // a finished rollout).
    const next = guarded(
      {
        holder: context.holder,
        now: () => clock.now(),
        rolloutId: state.status === "promoted" ? undefined : state.rolloutId,
        expectWeight: 100,
      },
      (previous) =>
        context.after(
          previous ?? state,
          {
            status: "finalizing",
            reason: passed,
            lease: { holder: context.holder, expiresAt: this.leaseUntil() },
            ...(imagesBefore ? { stableImagesBefore: imagesBefore } : {}),
            ...saved,
          },
          resuming ? "finalize-retry" : "finalizing",
        ),
    );
    return retry(() => context.ports.traffic.write(100, next, signal), {
      budgetMs: ROLLBACK_RETRY_BUDGET_MS,
      signal,
      sleep: (ms, s) => clock.sleep(ms, s),
      now: () => clock.now().getTime(),
      retryAlso: (error) => !(error instanceof CommandError || error instanceof LeaseHeldError),
    });
  }

  /** The pass could not be recorded: the traffic stays on the canary that passed, never rolled back. */
  private async unrecorded(state: RolloutState, passed: string, error: unknown): Promise<EngineOutcome> {
    const why = `${passed}, but the record of it could not be written to ${this.context.where} (${errorMessage(error)})`;
    await this.emit("failed", `Not finalized: ${why}`);
    return this.context.finish({
      result: "promoted",
      weight: 100,
      reason: `Promoted, but not finalized: ${why}. All traffic stays on the canary, which passed every stage; nothing rolls it back. Run command: promote (or this rollout again) once the Kubernetes API answers`,
      failed: true,
      finalized: false,
      state,
    });
  }

  /** Traffic stays on the canary; the state stays `finalizing` with why, and no lease (a promote may retry at once). */
  private async stopped(
    state: RolloutState,
    why: string,
    deployments: RolloutState["deployments"],
  ): Promise<EngineOutcome> {
    const { context } = this;
    await this.emit("failed", `Not finalized: ${why}`);
    let written = state;
    try {
      written = await context.ports.traffic.record((previous) =>
        context.after(
          previous ?? state,
          { lease: undefined, finalizeProblem: why, ...(deployments ? { deployments } : {}) },
          "finalize-stopped",
          why,
        ),
      );
    } catch (error) {
      await context.emit({
        type: "warning",
        at: context.now(),
        message: `Could not record why the finalization stopped: ${errorMessage(error)}`,
      });
    }
    return context.finish({
      result: "promoted",
      weight: 100,
      reason: notFinalizedReason(why),
      failed: true,
      finalized: false,
      state: written,
    });
  }
}

/**
 * Whether a rollback (a person's, or the post step's) may route to stable while a promotion is
 * being finalized: only when the stable Deployment is ready. The reason why not, or undefined.
 * The `finalizing` record is not an order (issue 20): the stable is checked only once the port has
 * found it by the inputs and the versions' labels; a Deployment named by the record alone that
 * does not run the stable subset (or does not exist) could be anyone's, so it is ignored with
 * `warn` and the rollback goes on: a forged record must never block or steer a rollback.
 */
export async function rollbackBlocked(
  workloads: WorkloadPort | undefined,
  state: RolloutState,
  warn: (message: string) => Promise<void>,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const stays = `traffic stays on the canary, which passed every stage of rollout ${state.rolloutId}`;
  if (!workloads) {
    // With finalize: none this workflow never finalizes, so the record is not its own (forged, or
    // left by another configuration): like any record it cannot block a rollback, which goes to
    // the stable subset as an ordinary rollback does.
    await warn(
      `Rollout ${state.rolloutId} is recorded as being finalized, but this workflow has finalize: none, so the stable Deployment is not checked; the rollback routes all traffic to the stable subset as any rollback does`,
    );
    return undefined;
  }
  try {
    await workloads.resolve(signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    await warn(
      `Rollout ${state.rolloutId} is recorded as being finalized, but the stable Deployment could not be found to check it before the rollback (${errorMessage(error)}); the Deployment names in the record are not used, and the rollback routes all traffic to the stable subset`,
    );
    return undefined;
  }
  const status = await workloads.stableStatus(signal);
  // A Deployment scaled to zero is "rolled out" to kubectl, and serves nothing.
  if (status.ready && status.readyPods > 0) return undefined;
  return `rollout ${state.rolloutId} is being finalized and the stable Deployment is not ready, so routing to it would be an outage: ${describeStatus(status)}; ${stays}. Run command: promote to retry the finalization`;
}
