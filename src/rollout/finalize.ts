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
import type { CopiedTemplate, WorkloadPort, WorkloadStatus } from "./ports.ts";
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
      `the canary Deployment ${scaled ? "was scaled back up for this release but " : ""}did not roll out with its pods ready with their istio-proxy sidecar: ${describeStatus(status)}; no weight was written, all traffic stays on stable`,
    );
  return { status, scaled };
}

export class Finalizer {
  private readonly c: EngineContext;
  private readonly workloads: WorkloadPort;

  constructor(context: EngineContext, workloads: WorkloadPort) {
    this.c = context;
    this.workloads = workloads;
  }

  private emit(step: FinalizeStep, message: string): Promise<void> {
    return this.c.emit({ type: "finalize", at: this.c.now(), step, message });
  }

  /** Long enough for the stable's rollout: the stage lease plus the finalize timeout (or 10 min, the Deployment default). */
  private leaseUntil(): string {
    const extra = this.c.s.finalize.timeoutMs ?? DEPLOYMENT_PROGRESS_DEADLINE_DEFAULT_S * 1000;
    return new Date(Date.parse(this.c.leaseUntil()) + extra).toISOString();
  }

  /**
   * From a state whose canary carries 100 % (the last stage just passed, a `finalizing` state to
   * resume, or a promotion made before finalization): record `finalizing`, copy, wait, move the
   * traffic back, scale the canary down. `passed` is how the promotion was won, for the report.
   */
  async run(state: RolloutState, passed: string, saved: Partial<RolloutState> = {}): Promise<EngineOutcome> {
    const { c } = this;
    const { traffic, signal } = c.ports;
    const resuming = state.status === "finalizing";
    await this.emit(
      "started",
      resuming
        ? `Resuming the finalization of rollout ${state.rolloutId}: the stable Deployment gets the canary's pod template`
        : "Finalizing: the stable Deployment gets the canary's pod template; traffic stays on the canary until it is ready",
    );
    // Nothing here may throw before `finalizing` is recorded: a step failing with the state still
    // `progressing` would let the post step roll back a canary that passed.
    let imagesBefore = state.stableImagesBefore;
    if (!imagesBefore) {
      const before = await this.workloads.stableStatus(signal).catch(() => undefined);
      imagesBefore = before?.images;
    }
    let current: RolloutState;
    try {
      current = await this.recordFinalizing(state, passed, saved, imagesBefore, resuming);
    } catch (error) {
      if (error instanceof CommandError || error instanceof LeaseHeldError) throw error;
      return this.unrecorded(state, passed, error);
    }

    let status: WorkloadStatus;
    let deployments: { stable: string; canary: string } | undefined;
    let copied: CopiedTemplate;
    try {
      deployments = await this.workloads.resolve(signal);
      // A no-op when the stable already runs the canary's template (a retry after the copy).
      copied = await this.workloads.copyCanaryToStable(signal);
      await this.emit("copied", "Copied the canary's pod template onto the stable Deployment");
      status = await this.workloads.waitStable(c.s.finalize.timeoutMs, signal);
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

    // Both versions run the same code now: a promotion, recorded as one, not a rollback.
    current = await traffic.write(
      0,
      guarded(
        {
          holder: c.holder,
          now: () => c.ports.clock.now(),
          rolloutId: undefined,
          expectWeight: 100,
          targetWeight: 0,
        },
        (previous) =>
          c.after(
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
      signal,
    );
    await this.emit(
      "traffic-on-stable",
      "All traffic is back on the stable Deployment, which runs the promoted version",
    );

    let scaled = "";
    if (c.s.finalize.scaleDownCanary) {
      try {
        await this.workloads.scaleCanary(0, signal);
        current = await traffic.record(
          (previous) => c.after(previous ?? current, { canaryScaledDown: true }, "canary-scaled-down"),
          signal,
        );
        await this.emit("canary-scaled-down", "The canary Deployment was scaled to zero replicas");
        scaled = "; the canary was scaled to zero";
      } catch (error) {
        // The stable carries the traffic: an idle canary costs resources, not availability.
        await c.emit({
          type: "warning",
          at: c.now(),
          message: `Could not scale the canary Deployment to zero: ${errorMessage(error)}. The next rollout scales it as it needs`,
        });
      }
    }
    return c.finish({
      result: "promoted",
      weight: 0,
      reason: `${passed}; promoted and finalized: the stable Deployment runs the promoted version (${status.summary}) and carries all traffic${scaled}`,
      failed: false,
      finalized: true,
      state: current,
    });
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
    const { c } = this;
    const { clock, signal } = c.ports;
    // A promoted state is this run's to take over (no rollout id guard: that guard refuses to touch
    // a finished rollout).
    const next = guarded(
      {
        holder: c.holder,
        now: () => clock.now(),
        rolloutId: state.status === "promoted" ? undefined : state.rolloutId,
        expectWeight: 100,
      },
      (previous) =>
        c.after(
          previous ?? state,
          {
            status: "finalizing",
            reason: passed,
            lease: { holder: c.holder, expiresAt: this.leaseUntil() },
            ...(imagesBefore ? { stableImagesBefore: imagesBefore } : {}),
            ...saved,
          },
          resuming ? "finalize-retry" : "finalizing",
        ),
    );
    return retry(() => c.ports.traffic.write(100, next, signal), {
      budgetMs: ROLLBACK_RETRY_BUDGET_MS,
      signal,
      sleep: (ms, s) => clock.sleep(ms, s),
      now: () => clock.now().getTime(),
      retryAlso: (error) => !(error instanceof CommandError || error instanceof LeaseHeldError),
    });
  }

  /** The pass could not be recorded: the traffic stays on the canary that passed, never rolled back. */
  private async unrecorded(state: RolloutState, passed: string, error: unknown): Promise<EngineOutcome> {
    const why = `${passed}, but the record of it could not be written to ${this.c.where} (${errorMessage(error)})`;
    await this.emit("failed", `Not finalized: ${why}`);
    return this.c.finish({
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
    const { c } = this;
    await this.emit("failed", `Not finalized: ${why}`);
    let written = state;
    try {
      written = await c.ports.traffic.record((previous) =>
        c.after(
          previous ?? state,
          { lease: undefined, finalizeProblem: why, ...(deployments ? { deployments } : {}) },
          "finalize-stopped",
          why,
        ),
      );
    } catch (error) {
      await c.emit({
        type: "warning",
        at: c.now(),
        message: `Could not record why the finalization stopped: ${errorMessage(error)}`,
      });
    }
    return c.finish({
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
 */
export async function rollbackBlocked(
  workloads: WorkloadPort | undefined,
  state: RolloutState,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const stays = `traffic stays on the canary, which passed every stage of rollout ${state.rolloutId}`;
  if (!workloads)
    return `rollout ${state.rolloutId} is being finalized and the stable Deployment cannot be checked (finalize: none); ${stays}. Set finalize: copy to let the action check it`;
  const status = await workloads.stableStatus(signal);
  // A Deployment scaled to zero is "rolled out" to kubectl, and serves nothing.
  if (status.ready && status.readyPods > 0) return undefined;
  return `rollout ${state.rolloutId} is being finalized and the stable Deployment is not ready, so routing to it would be an outage: ${describeStatus(status)}; ${stays}. Run command: promote to retry the finalization`;
}
