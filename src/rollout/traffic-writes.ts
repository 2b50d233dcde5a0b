/**
 * The engine's writes that end or hold a rollout: record a state without moving weights, roll
 * back to 100 % stable (overriding leases when a person asked), and say where traffic was left when
 * even a rollback fails. The traffic port retries what is transient; these only decide the state.
 */

import { errorMessage } from "../error-message.ts";
import type { EngineContext, EngineOutcome } from "./context.ts";
import { rolledBackByHand } from "./ending.ts";
import type { RolloutState } from "./model/state.ts";
import { describeObject } from "./model/virtual-service.ts";
import { CommandError, guarded } from "./transitions.ts";

export class TrafficWrites {
  private readonly context: EngineContext;
  constructor(context: EngineContext) {
    this.context = context;
  }

  /** Saves the state without moving any weight (the weights must still be this run's). */
  async record(
    state: RolloutState,
    weight: number,
    patch: Partial<RolloutState>,
    event: string,
    reason?: string,
  ): Promise<RolloutState> {
    const { context } = this;
    return context.ports.traffic.write(
      weight,
      guarded(
        {
          holder: context.holder,
          now: () => context.ports.clock.now(),
          rolloutId: state.rolloutId,
          expectWeight: weight,
        },
        (previous) => context.after(previous ?? state, patch, event, reason),
      ),
    );
  }

  /** All traffic to stable, restoring the routes as they were; records why. */
  async rollBack(
    reason: string,
    state: RolloutState | undefined,
    patch: Partial<RolloutState> = {},
    override = false,
  ): Promise<RolloutState> {
    const { context } = this;
    return context.ports.traffic.write(
      0,
      guarded({ holder: context.holder, now: () => context.ports.clock.now(), override }, (previous, view) =>
        context.after(
          previous ?? state ?? freshState(context, view.weight, view.original),
          { weight: 0, status: "rolled-back", reason, lease: undefined, ...patch },
          "rolled-back",
          reason,
        ),
      ),
    );
  }

  /** Rolls back; when even that fails, says where traffic was left, for the post step and the people. */
  async rollBackOrExplain(
    reason: string,
    state: RolloutState,
    weight: number,
    patch: Partial<RolloutState> = {},
  ): Promise<RolloutState | undefined> {
    const { context } = this;
    try {
      return await this.rollBack(reason, state, patch);
    } catch (error) {
      const why = errorMessage(error);
      await context.emit({
        type: "warning",
        at: context.now(),
        message: `Rollback failed (${why}); traffic was left at ${weight} % canary for rollout ${state.rolloutId}. The post step retries; or run command: rollback`,
      });
      throw new CommandError(
        `${reason}; then the rollback failed: ${why}. Traffic may still be at ${weight} % canary`,
      );
    }
  }

  /**
   * Someone else changed the weights: records it without touching their weights and fails the
   * step. When they set some of several VirtualServices to 100 % stable (a rollback by hand), the
   * others are rolled back with them; a failure of that rollback is thrown like any other.
   */
  async halt(
    state: RolloutState,
    weight: number,
    why: string,
    saved: Partial<RolloutState>,
  ): Promise<EngineOutcome> {
    const { context } = this;
    const view = await context.ports.traffic.read().catch(async (error: unknown) => {
      await context.emit({
        type: "warning",
        at: context.now(),
        message: `Could not read the managed route to record the stop: ${errorMessage(error)}`,
      });
      return undefined;
    });
    const byHand = view && rolledBackByHand(view);
    if (byHand) {
      const followed = `${byHand} set to 100 % stable by someone else at ${weight} %: the rollout stopped and the other ${view.object.kind}s were rolled back with it`;
      const written = await this.rollBackOrExplain(followed, state, weight, saved);
      return {
        result: "rolled-back",
        weight: 0,
        reason: `Stopped: ${followed}`,
        failed: true,
        state: written,
      };
    }
    const found = view ? (view.weights[0] ?? 0) : weight;
    let written: RolloutState | undefined = state;
    if (view) {
      try {
        written = await context.ports.traffic.record((previous) =>
          context.after(
            previous ?? state,
            { status: "paused", weight: found, reason: why, lease: undefined, ...saved },
            "halted",
            why,
          ),
        );
      } catch (error) {
        await context.emit({
          type: "warning",
          at: context.now(),
          message: `Could not record the stop on ${describeObject(view.object)}: ${errorMessage(error)}`,
        });
      }
    }
    return {
      result: found === 0 ? "rolled-back" : "paused",
      weight: found,
      reason: `Stopped: ${why}`,
      failed: true,
      state: written,
    };
  }
}

/**
 * A new rollout's state. `previous` is the record it replaces: a promoted one's commit, or the
 * promoted commit it carried, becomes the new rollout's `promotedCommit` (for the reports).
 */
export function freshState(
  c: EngineContext,
  weight: number,
  original: RolloutState["original"],
  previous?: RolloutState,
): RolloutState {
  const now = c.now();
  const promotedCommit = previous?.status === "promoted" ? previous.commit : previous?.promotedCommit;
  return {
    schemaVersion: 1,
    rolloutId: c.id.newRolloutId,
    commit: c.id.commit,
    stages: [...c.settings.stages],
    stageIndex: -1,
    weight,
    status: "progressing",
    startedAt: now,
    updatedAt: now,
    original,
    history: [],
    ...(promotedCommit ? { promotedCommit } : {}),
  };
}
