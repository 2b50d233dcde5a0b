/**
 * Several VirtualServices moved as one (the ingress gateway's and the mesh's for one service, as
 * Argo Rollouts' `virtualServices` list): the traffic port over one VirtualServiceRouter each.
 *
 * Every VirtualService carries the state in its own annotation, with its own `original` routes; the
 * first (the primary) is the one the engine reads its state from. A forward write first checks,
 * on a fresh read of every VirtualService, that `next` accepts each of them (a person's edit or a
 * lease on any one refuses the move before anything is written), then writes them in order. A
 * rollback writes all of them at once and goes on with the others when one fails: each one that can
 * reach 100 % stable does, and the error names the ones that did not.
 */
import { errorMessage } from "../error-message.ts";
import type { RolloutState } from "../rollout/model/state.ts";
import type { NextState, PlannedPatch, TrafficPort, TrafficView } from "../rollout/ports.ts";
import { MeshError } from "./errors.ts";
import type { VirtualServiceRouter } from "./router.ts";

/**
 * `next` for a VirtualService other than the primary: the engine computes `original` from the
 * primary's routes, but each VirtualService must record (and a rollback restore) its own.
 */
function ownOriginal(next: NextState): NextState {
  return (previous, view) => {
    const state = next(previous, view);
    const original = previous && previous.rolloutId === state.rolloutId ? previous.original : view.original;
    return { ...state, original };
  };
}

export class LockstepRouter implements TrafficPort {
  private readonly routers: readonly VirtualServiceRouter[];

  /** `routers` in the order of the `virtual-service` input: the first is the primary. */
  constructor(routers: readonly VirtualServiceRouter[]) {
    if (routers.length === 0) throw new Error("LockstepRouter needs at least one VirtualService");
    this.routers = routers;
  }

  private nextFor(index: number, next: NextState): NextState {
    return index === 0 ? next : ownOriginal(next);
  }

  async read(signal?: AbortSignal): Promise<TrafficView> {
    const views = await Promise.all(this.routers.map((r) => r.read(signal)));
    const primary = views[0] as TrafficView;
    return {
      ...primary,
      weights: views.flatMap((v) => v.weights),
      unmanaged: views.flatMap((v) => v.unmanaged),
    };
  }

  async write(weight: number, next: NextState, signal?: AbortSignal): Promise<RolloutState> {
    if (weight === 0) return this.rollBack(next, signal);
    // Refuse before the first write when any VirtualService would refuse: never move one alone.
    const views = await Promise.all(this.routers.map((r) => r.read(signal)));
    views.forEach((view, i) => {
      this.nextFor(i, next)(view.state, view);
    });
    let primaryState: RolloutState | undefined;
    for (const [i, router] of this.routers.entries()) {
      const state = await router.write(weight, this.nextFor(i, next), signal);
      primaryState ??= state;
    }
    return primaryState as RolloutState;
  }

  /** Every VirtualService to 100 % stable at once; one that fails does not stop the others. */
  private async rollBack(next: NextState, signal?: AbortSignal): Promise<RolloutState> {
    const results = await Promise.allSettled(
      this.routers.map((r, i) => r.write(0, this.nextFor(i, next), signal)),
    );
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ i, error: r.reason }] : []));
    if (failed.length === 0) return (results[0] as PromiseFulfilledResult<RolloutState>).value;
    const first = failed[0] as { i: number; error: unknown };
    if (failed.length === 1 && results.length === 1) throw first.error;
    const done = this.routers.filter((_, i) => !failed.some((f) => f.i === i)).map((r) => r.where);
    const message = `${failed.map((f) => `${this.routers[f.i]?.where}: ${errorMessage(f.error)}`).join("; ")}${done.length > 0 ? `. Rolled back: ${done.join(", ")}` : ""}`;
    const cause = first.error instanceof MeshError ? first.error : undefined;
    throw new MeshError(message, cause?.status, cause?.reason, cause?.server);
  }

  async plan(weight: number, next: NextState): Promise<PlannedPatch[]> {
    const planned: PlannedPatch[] = [];
    for (const [i, router] of this.routers.entries())
      planned.push(...(await router.plan(weight, this.nextFor(i, next))));
    return planned;
  }

  async record(next: NextState, signal?: AbortSignal): Promise<RolloutState> {
    let primaryState: RolloutState | undefined;
    for (const [i, router] of this.routers.entries()) {
      const state = await router.record(this.nextFor(i, next), signal);
      primaryState ??= state;
    }
    return primaryState as RolloutState;
  }
}
