/**
 * The traffic port's Istio adapter (as Flagger has a router per mesh): reads the managed routes'
 * canary weight and the saved state from the VirtualService, and moves the weight with one JSON
 * Patch that also saves the new state. Every read and write retries what is transient through
 * src/retry.ts for a bounded time (a rollback longest); a conflict (a failed `test`, a 409) is
 * re-read and re-planned, so `next` sees the fresh object every time. After a write the object is
 * read back to check the weights took.
 *
 * A rollback (weight 0) works from the routes alone: an unreadable state, a renamed route or one
 * split by hand still ends at canary 0 / stable 100 on every route that sends traffic to the canary.
 */
import * as core from "@actions/core";
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { ROLLBACK_RETRY_BUDGET_MS, STATE_ANNOTATION, TRAFFIC_RETRY_BUDGET_MS } from "../constants.ts";
import { type RetryOptions, retry } from "../retry.ts";
import type { GatewayHttpRoute } from "../rollout/model/http-route.ts";
import type { PatchOperation } from "../rollout/model/routes.ts";
import { type RolloutState, readState, serializeState } from "../rollout/model/state.ts";
import type { RouteObject, VirtualService } from "../rollout/model/virtual-service.ts";
import type {
  NextState,
  PlannedPatch,
  PreviewRequest,
  PreviewView,
  TrafficPort,
  TrafficView,
  WriteOptions,
} from "../rollout/ports.ts";
import { MeshError } from "./errors.ts";
import type { GatewayApi, MeshApi } from "./kubernetes.ts";
import { addPreviewRoutes, type Patching, removePreviewRoutes, type View } from "./preview-router.ts";
import { shiftOriginal } from "./preview-routes.ts";
import { httpRouteKind, type RouteKind, virtualServiceKind } from "./route-kinds.ts";
import { planAnnotation } from "./route-patches.ts";
import type { ManagedRoute, Target } from "./routes.ts";

export interface RouterOptions {
  namespace: string;
  name: string;
  target: Target;
  routes: readonly string[];
  /**
   * What a rollout's first write does with a preview route (issue 23): `remove` it, or `keep` it
   * through the stages. Every rollback and every move to 100 % removes it either way.
   */
  preview?: "keep" | "remove";
  /** How long a rollback (weight 0), and any other write or read, keeps retrying. */
  rollbackBudgetMs?: number;
  trafficBudgetMs?: number;
  /** Told of each retry (for the log). */
  onRetry?: (message: string) => void;
  /** For tests in virtual time. */
  sleep?: RetryOptions["sleep"];
  now?: () => number;
  random?: () => number;
}

export interface RouterWriteOptions extends WriteOptions {
  /**
   * A rollback that finds every managed route already at 0 % canary saves the state only and
   * leaves the routes as they are (a person's 100/0 stays as they wrote it). For several
   * VirtualServices in lockstep, where one may have been rolled back by hand or by an earlier try.
   */
  keepStableRoutes?: boolean;
}

/** The router over one object of either kind (route-kinds.ts): a VirtualService or an HTTPRoute. */
export class RouteRouter<D extends RouteObject = RouteObject> implements TrafficPort {
  private readonly kind: RouteKind<D>;
  private readonly o: RouterOptions;
  /** The object as the dry run's planned patches so far would leave it. */
  private dryRunObject?: D;
  /** The object as last read, to say where traffic is when nothing can be read any more. */
  private lastSeen?: { at: Date; vs: D };

  constructor(kind: RouteKind<D>, options: RouterOptions) {
    this.kind = kind;
    this.o = options;
  }

  get where(): string {
    return `${this.kind.kind} ${this.o.namespace}/${this.o.name}`;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /**
   * The view of `vs`. `rollback` manages every route a rollback must fix; otherwise the routes a
   * rollout manages, which a write insists on (a missing route is an error there) but a read does
   * not: a read must never stop a rollback, so it falls back to the rollback's routes.
   */
  private view(vs: D, mode: "read" | "write" | "rollback"): View<D> {
    const k = this.kind;
    let managed: ManagedRoute[];
    if (mode === "rollback") managed = k.rollbackRoutes(vs, this.o.target, this.o.routes);
    else {
      try {
        managed = k.managed(vs, this.o.target, this.o.routes);
      } catch (error) {
        if (mode === "write" || !(error instanceof MeshError)) throw error;
        managed = k.rollbackRoutes(vs, this.o.target, this.o.routes);
      }
    }
    const weights = managed.map((m) => k.canaryWeight(vs, m));
    const { state, problem } = readState(vs.metadata.annotations?.[STATE_ANNOTATION], this.where);
    const preview = k.readPreview?.(vs, this.o.target);
    const notRouting = k.notRouting?.(vs);
    return {
      ...(preview ? { preview } : {}),
      ...(notRouting ? { notRouting } : {}),
      weight: weights[0] ?? 0,
      weights,
      state,
      ...(problem ? { stateProblem: problem } : {}),
      original: k.original(vs, managed),
      object: vs,
      unmanaged: k.unmanaged(vs, this.o.target, managed).map((r) => ({
        ...r,
        route: `${r.route} of ${this.where}`,
      })),
      managed,
    };
  }

  private retryOptions(budgetMs: number, signal: AbortSignal | undefined, what: string): RetryOptions {
    return {
      budgetMs,
      signal,
      sleep: this.o.sleep,
      now: this.o.now,
      random: this.o.random,
      onRetry: ({ error, attempt, waitMs }) =>
        this.o.onRetry?.(
          `${what} of ${this.where}: attempt ${attempt} failed (${(error as Error).message}); retrying in ${(waitMs / 1000).toFixed(1)} s`,
        ),
    };
  }

  private async get(signal: AbortSignal | undefined): Promise<D> {
    const vs = await this.kind.get(this.o.namespace, this.o.name, signal);
    this.lastSeen = { at: new Date(this.now()), vs };
    return vs;
  }

  async read(signal?: AbortSignal): Promise<TrafficView> {
    const vs = await retry(
      () => this.get(signal),
      this.retryOptions(this.o.trafficBudgetMs ?? TRAFFIC_RETRY_BUDGET_MS, signal, "read"),
    );
    const { managed: _, ...view } = this.view(vs, "read");
    return view;
  }

  /**
   * The patch that moves the routes to `weight` and saves `proposed` (what `next` computed) with
   * it. A rollback restores `proposed.original` where that is consistent with 100 % stable, and
   * records the routes as it leaves them at rest: never an `original` the routes contradict.
   */
  private planned(view: View<D>, weight: number, proposed: RolloutState, keepStableRoutes = false) {
    const vs = view.object;
    const k = this.kind;
    // The preview's removal comes last in the patch: the weights' operations use the indices as read.
    const keep = this.o.preview === "keep" && weight !== 0 && weight !== 100;
    const removal = (!keep && k.planPreviewRemoval?.(vs, this.o.target)) || { ops: [], removed: [] };
    if (weight !== 0) {
      const ops = [...k.planWeights(vs, view.managed, weight, this.o.target), ...removal.ops];
      const state = { ...proposed, original: shiftOriginal(proposed.original, removal.removed) };
      return { state, ops: [...ops, ...planAnnotation(vs, STATE_ANNOTATION, serializeState(state))] };
    }
    const stable = keepStableRoutes && view.weights.every((w) => w === 0);
    const ops = [...(stable ? [] : k.planRollback(vs, view.managed, proposed.original)), ...removal.ops];
    const after = applied(vs, ops);
    const state = {
      ...proposed,
      original: k.original(after, k.rollbackRoutes(after, this.o.target, this.o.routes)),
    };
    return { state, ops: [...ops, ...planAnnotation(vs, STATE_ANNOTATION, serializeState(state))] };
  }

  async plan(weight: number, next: NextState): Promise<PlannedPatch[]> {
    const vs = this.dryRunObject ?? (await this.get(undefined));
    const view = this.view(vs, weight === 0 ? "rollback" : "write");
    const { ops } = this.planned(view, weight, next(view.state, view));
    this.dryRunObject = applied(view.object, ops);
    return [{ object: this.where, patch: ops }];
  }

  async write(
    weight: number,
    next: NextState,
    signal?: AbortSignal,
    options: RouterWriteOptions = {},
  ): Promise<RolloutState> {
    const rollback = weight === 0;
    const { state, response } = await this.patchRetrying({
      mode: rollback ? "rollback" : "write",
      budgetMs: rollback
        ? (this.o.rollbackBudgetMs ?? ROLLBACK_RETRY_BUDGET_MS)
        : (this.o.trafficBudgetMs ?? TRAFFIC_RETRY_BUDGET_MS),
      what: rollback ? "rollback" : `write of ${weight} %`,
      plan: (view) => this.planned(view, weight, next(view.state, view), options.keepStableRoutes),
      took: (view) => view.weights.every((w) => w === weight),
      exhausted: (error, conflicts, spent) => this.exhausted(error, weight, conflicts, spent),
      signal,
    });
    await this.verify(weight, response, signal);
    return state;
  }

  /**
   * Saves the state only (a person's edit is recorded, never undone): one patch of the annotation,
   * retried and re-planned like a write. Whatever the routes say, none of them is changed.
   */
  async record(next: NextState, signal?: AbortSignal): Promise<RolloutState> {
    const { state } = await this.patchRetrying({
      mode: "read",
      budgetMs: this.o.trafficBudgetMs ?? TRAFFIC_RETRY_BUDGET_MS,
      what: "saving the state",
      plan: (view) => {
        const state = next(view.state, view);
        return {
          state,
          ops: planAnnotation(view.object, STATE_ANNOTATION, serializeState(state)),
        };
      },
      took: () => true,
      signal,
    });
    return state;
  }

  /**
   * Adds the preview routes ahead of the managed ones (./preview-router.ts); VirtualServices only,
   * for now. The inputs refuse `command: preview` with http-route before this router exists; the
   * check stays because `patcher()` treats the object as a VirtualService, and an HTTPRoute router
   * built any other way would otherwise have VirtualService routes planned into it.
   */
  addPreview(request: PreviewRequest, at: Date, signal?: AbortSignal): Promise<PreviewView> {
    if (!this.kind.readPreview)
      throw new MeshError(
        `command: preview is not yet supported for an ${this.kind.kind} (${this.where}): it needs an Istio VirtualService; nothing was changed`,
      );
    const budgetMs = this.o.trafficBudgetMs ?? TRAFFIC_RETRY_BUDGET_MS;
    return addPreviewRoutes(this.patcher(), request, at, { budgetMs, signal });
  }

  /** Removes the preview routes and annotation, changing no weight; the names removed. */
  async removePreview(signal?: AbortSignal): Promise<string[]> {
    if (!this.kind.planPreviewRemoval) return [];
    const budgetMs = this.o.rollbackBudgetMs ?? ROLLBACK_RETRY_BUDGET_MS;
    return removePreviewRoutes(this.patcher(), { budgetMs, signal });
  }

  /** The retrying patcher over a VirtualService, for the preview's writes. */
  private patcher() {
    const patch = (o: Patching<VirtualService>) =>
      this.patchRetrying(o as unknown as Patching<D>) as unknown as Promise<{
        state: RolloutState;
        response: VirtualService;
      }>;
    return { patch, where: this.where, target: this.o.target, routes: this.o.routes };
  }

  /**
   * Reads, plans and patches until the patch is accepted, retrying what is transient and
   * re-planning after a conflict. `plan` runs on every fresh read; what it throws (`next`'s
   * refusals: a lease, a person's edit) is never retried and never swallowed. When a patch got no
   * answer it may still have been applied: the next read that finds its annotation in place and
   * the routes as `took` wants them ends the loop instead of patching (or refusing) again.
   */
  private async patchRetrying(o: Patching<D>): Promise<{ state: RolloutState; response: D }> {
    const refusals = new WeakSet<object>();
    let unanswered: string | undefined;
    let conflicts = 0;
    return retry(
      async () => {
        const view = this.view(await this.get(o.signal), o.mode);
        const found = view.object.metadata.annotations?.[STATE_ANNOTATION];
        if (unanswered !== undefined && found === unanswered && o.took(view))
          return { state: view.state as RolloutState, response: view.object };
        let planned: { state: RolloutState; ops: PatchOperation[] };
        try {
          planned = o.plan(view);
        } catch (error) {
          if (error instanceof Object) refusals.add(error);
          throw error;
        }
        unanswered = undefined;
        if (planned.ops.length === 0) return { state: planned.state, response: view.object };
        // The state annotation's JSON is long and repeated in every patch: the debug line names it only.
        // A route's `headers` may set a credential (an upstream API key): elided wherever they appear.
        const shown = planned.ops.map((op) =>
          op.path.startsWith("/metadata/annotations") && "value" in op ? { ...op, value: "(state)" } : op,
        );
        core.debug(
          `JSON Patch for ${this.o.namespace}/${this.o.name} (${o.what}): ${JSON.stringify(shown, (key, value) => (key === "headers" ? "(headers elided)" : value))}`,
        );
        try {
          const response = await this.kind.patch(
            this.o.namespace,
            this.o.name,
            view.object.apiVersion,
            planned.ops,
            o.signal,
          );
          return { state: planned.state, response };
        } catch (error) {
          // No answer (reset, timeout): the server may have applied it. Anything else it did not.
          if (error instanceof MeshError && error.status === undefined && error.transient)
            unanswered = planned.state ? serializeState(planned.state) : "";
          if (error instanceof MeshError && error.isConflict) conflicts += 1;
          throw error;
        }
      },
      {
        ...this.retryOptions(o.budgetMs, o.signal, o.what),
        retryAlso: (error) => error instanceof MeshError && error.isConflict,
        never: (error) => error instanceof Object && refusals.has(error),
        onExhausted: (error, spent) => (o.exhausted ? o.exhausted(error, conflicts, spent) : error),
      },
    );
  }

  /** The error when retrying ran out: what failed, for how long, and where traffic is. */
  private exhausted(
    error: unknown,
    weight: number,
    conflicts: number,
    spent: { attempts: number; elapsedMs: number },
  ): MeshError {
    const last = error instanceof MeshError ? error : undefined;
    const seconds = Math.round(spent.elapsedMs / 1000);
    const traffic = this.lastSeen
      ? `Traffic as last read at ${this.lastSeen.at.toISOString()}: ${this.kind.describeTraffic(this.lastSeen.vs, this.o.target)}`
      : "Where traffic is could not be read";
    const what =
      last?.isConflict && conflicts === spent.attempts
        ? `${this.where} kept changing under the action (${conflicts} conflicting edits in a row in ${seconds} s); nothing of theirs was overwritten`
        : `${weight === 0 ? "Rollback" : `Setting canary weight ${weight}`} of ${this.where} failed after ${spent.attempts} attempts in ${seconds} s: ${(error as Error).message}`;
    return new MeshError(`${what}. ${traffic}`, last?.status, last?.reason, last?.server);
  }

  /**
   * Checks the weights took: in the write's answer, then in a fresh read (a controller such as
   * Argo CD may revert it at once). A read-back that cannot be read is retried like any read and,
   * when the answer already showed the weights, is no error: the write is known to have taken.
   */
  private async verify(
    weight: number,
    response: D | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (response) this.check(response, weight, "the API server answered");
    let back: D;
    try {
      back = await retry(
        () => this.get(signal),
        this.retryOptions(this.o.trafficBudgetMs ?? TRAFFIC_RETRY_BUDGET_MS, signal, "read-back"),
      );
    } catch (error) {
      if (response && !signal?.aborted) return;
      throw error;
    }
    this.check(back, weight, "read back");
  }

  private check(vs: D, weight: number, how: string): void {
    const view = this.view(vs, weight === 0 ? "rollback" : "read");
    if (view.weights.every((w) => w === weight)) return;
    throw new MeshError(
      `${this.where}: wrote canary weight ${weight} but ${how} ${this.kind.describeTraffic(vs, this.o.target)}: another controller or a person may be managing it`,
    );
  }
}

/** The VirtualService router (the action's first kind), as tests and the lockstep router build it. */
export class VirtualServiceRouter extends RouteRouter<VirtualService> {
  constructor(api: MeshApi & Partial<GatewayApi>, options: RouterOptions) {
    super(virtualServiceKind(api), options);
  }
}

/** The Gateway API HTTPRoute router (issue 22). */
export class HttpRouteRouter extends RouteRouter<GatewayHttpRoute> {
  constructor(api: GatewayApi, options: RouterOptions) {
    super(httpRouteKind(api), options);
  }
}

/** `vs` as `ops` would leave it (no validation: the operations were planned against it). */
function applied<D>(vs: D, ops: PatchOperation[]): D {
  return fastJsonPatch.applyPatch(structuredClone(vs), ops as Operation[], false, false).newDocument;
}
