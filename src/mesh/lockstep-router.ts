/**
 * Several VirtualServices (or HTTPRoutes) moved as one (the ingress gateway's and the mesh's for one
 * service, as Argo Rollouts' `virtualServices` list): the traffic port over one router each.
 *
 * Every VirtualService carries the state in its own annotation, with its own `original` routes; the
 * first (the primary) is the one the engine reads its state from. A forward write first checks,
 * on a fresh read of every VirtualService, that `next` accepts each of them (a person's edit or a
 * lease on any one refuses the move before anything is written), then writes them in order. A
 * rollback writes all of them at once and goes on with the others when one fails: each one that can
 * reach 100 % stable does, and the ones that refuse (an admission webhook, RBAC, a controller that
 * reverts it, an outage) are tried again, whatever the failure, until the rollback budget is spent;
 * only then does the error name the ones that did not take it. A VirtualService already at 100 %
 * stable gets the state only: a person's rollback of it stays as they wrote it.
 */
import { ROLLBACK_RETRY_BUDGET_MS } from "../constants.ts";
import { errorMessage } from "../error-message.ts";
import { type RetryOptions, retry } from "../retry.ts";
import type { RolloutState } from "../rollout/model/state.ts";
import type { NextState, PlannedPatch, TrafficPort, TrafficView, WriteOptions } from "../rollout/ports.ts";
import { MeshError } from "./errors.ts";
import type { RouterWriteOptions } from "./router.ts";

/** One object's router (a VirtualService's or an HTTPRoute's, router.ts). */
export interface OneRouter extends TrafficPort {
  readonly where: string;
  write(
    weight: number,
    next: NextState,
    signal?: AbortSignal,
    options?: RouterWriteOptions,
  ): Promise<RolloutState>;
}

export interface LockstepOptions {
  /** How long a rollback keeps trying each VirtualService that has not taken it, from its start. */
  rollbackBudgetMs?: number;
  /** Told of each retry of a VirtualService's rollback (for the log). */
  onRetry?: (message: string) => void;
  /** For tests in virtual time. */
  sleep?: RetryOptions["sleep"];
  now?: () => number;
  random?: () => number;
}

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
  private readonly routers: readonly OneRouter[];
  private readonly o: LockstepOptions;

  /** `routers` in the order of the `virtual-service` input: the first is the primary. */
  constructor(routers: readonly OneRouter[], options: LockstepOptions = {}) {
    if (routers.length === 0) throw new Error("LockstepRouter needs at least one VirtualService");
    this.routers = routers;
    this.o = options;
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
      ...notRoutingOf(views),
      parts: views,
    };
  }

  async write(
    weight: number,
    next: NextState,
    signal?: AbortSignal,
    options: WriteOptions = {},
  ): Promise<RolloutState> {
    if (weight === 0 && !options.allOrNothing) return this.rollBack(next, signal);
    // Refuse before the first write when any VirtualService would refuse: never move one alone.
    const views = await Promise.all(this.routers.map((r) => r.read(signal)));
    views.forEach((view, i) => {
      this.nextFor(i, next)(view.state, view);
    });
    let primaryState: RolloutState | undefined;
    for (const [i, router] of this.routers.entries()) {
      const state = await router.write(weight, this.nextFor(i, next), signal, { keepStableRoutes: true });
      primaryState ??= state;
    }
    return primaryState as RolloutState;
  }

  /**
   * One VirtualService to 100 % stable, tried again whatever the failure (a webhook's or RBAC's
   * refusal may be lifted, a reverting controller stopped) until the budget, counted from `started`,
   * is spent. The router itself retries what is transient within each try.
   */
  private rollBackOne(
    router: OneRouter,
    next: NextState,
    started: number,
    signal?: AbortSignal,
  ): Promise<RolloutState> {
    const now = this.o.now ?? Date.now;
    const budgetMs = this.o.rollbackBudgetMs ?? ROLLBACK_RETRY_BUDGET_MS;
    return retry(() => router.write(0, next, signal, { keepStableRoutes: true }), {
      budgetMs: Math.max(0, started + budgetMs - now()),
      signal,
      // Every failure of the API or of the read-back; never a refusal of `next` (a lease, a person's edit).
      retryAlso: (error) => error instanceof MeshError,
      never: (error) => !(error instanceof MeshError),
      sleep: this.o.sleep,
      now: this.o.now,
      random: this.o.random,
      onRetry: ({ error, attempt, waitMs }) =>
        this.o.onRetry?.(
          `rollback of ${router.where}: try ${attempt} failed (${errorMessage(error)}); trying again in ${(waitMs / 1000).toFixed(1)} s (the other routes are rolled back)`,
        ),
    });
  }

  /**
   * Every VirtualService to 100 % stable at once; one that fails does not stop the others and is
   * tried again until the rollback budget is spent.
   */
  private async rollBack(next: NextState, signal?: AbortSignal): Promise<RolloutState> {
    const started = (this.o.now ?? Date.now)();
    const results = await Promise.allSettled(
      this.routers.map((r, i) => this.rollBackOne(r, this.nextFor(i, next), started, signal)),
    );
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ i, error: r.reason }] : []));
    if (failed.length === 0) return (results[0] as PromiseFulfilledResult<RolloutState>).value;
    const first = failed[0] as { i: number; error: unknown };
    if (failed.length === 1 && results.length === 1) throw first.error;
    const done = this.routers.filter((_, i) => !failed.some((f) => f.i === i)).map((r) => r.where);
    const seconds = Math.round(((this.o.now ?? Date.now)() - started) / 1000);
    const tried = results.length > 1 ? ` (tried for ${seconds} s)` : "";
    const message = `${failed.map((f) => `${this.routers[f.i]?.where}: ${errorMessage(f.error)}`).join("; ")}${tried}${done.length > 0 ? `. Rolled back: ${done.join(", ")}` : ""}`;
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

/** The first part that routes nothing names why the lockstep set cannot be judged. */
function notRoutingOf(views: readonly TrafficView[]): { notRouting?: string } {
  const found = views.find((v) => v.notRouting !== undefined)?.notRouting;
  return found !== undefined ? { notRouting: found } : {};
}
