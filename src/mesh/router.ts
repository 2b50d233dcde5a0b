/**
 * The traffic port's Istio adapter (as Flagger has a router per mesh): reads the managed routes'
 * canary weight and the saved state from the VirtualService, and moves the weight with one JSON
 * Patch that also saves the new state. A failed `test` (someone else edited the routes) or a 409
 * is re-read and re-planned, a bounded number of times; a 5xx is retried with backoff; after the
 * write the object is read back to check the weights took.
 */
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { STATE_ANNOTATION } from "../constants.ts";
import type { NextState, TrafficPort, TrafficView } from "../rollout/ports.ts";
import { MeshError } from "./errors.ts";
import type { MeshApi } from "./kubernetes.ts";
import {
  canaryWeightOf,
  findManagedRoutes,
  type ManagedRoute,
  originalRoutes,
  type PatchOperation,
  planAnnotation,
  planWeights,
  type Target,
} from "./routes.ts";
import { parseState, type RolloutState, serializeState } from "./state.ts";
import type { VirtualService } from "./types.ts";

export interface RouterOptions {
  namespace: string;
  name: string;
  target: Target;
  routes: readonly string[];
  /** Re-plans after a conflicting edit at most this often. */
  maxConflicts?: number;
  /** Attempts when the API server answers 5xx or cannot be reached. */
  maxServerErrors?: number;
  sleep?: (ms: number) => Promise<void>;
}

export class VirtualServiceRouter implements TrafficPort {
  private readonly api: MeshApi;
  /** The VirtualService as the dry run's planned patches so far would leave it. */
  private dryRunObject?: VirtualService;
  private readonly o: Required<Omit<RouterOptions, "sleep">> & { sleep: (ms: number) => Promise<void> };

  constructor(api: MeshApi, options: RouterOptions) {
    this.api = api;
    this.o = {
      maxConflicts: 5,
      maxServerErrors: 3,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      ...options,
    };
  }

  private get where(): string {
    return `VirtualService ${this.o.namespace}/${this.o.name}`;
  }

  private view(vs: VirtualService): TrafficView & { managed: ManagedRoute[] } {
    const managed = findManagedRoutes(vs, this.o.target, this.o.routes);
    const weights = managed.map((m) => canaryWeightOf(vs, m));
    return {
      weight: weights[0] ?? 0,
      weights,
      state: parseState(vs.metadata.annotations?.[STATE_ANNOTATION], this.where),
      original: originalRoutes(vs, managed),
      virtualService: vs,
      managed,
    };
  }

  async read(): Promise<TrafficView> {
    const { managed: _, ...view } = this.view(
      await this.api.getVirtualService(this.o.namespace, this.o.name),
    );
    return view;
  }

  private operations(
    view: TrafficView & { managed: ManagedRoute[] },
    weight: number,
    state: RolloutState,
  ): PatchOperation[] {
    const restore = weight === 0 ? state.original : undefined;
    return [
      ...planWeights(view.virtualService, view.managed, weight, this.o.target, restore),
      ...planAnnotation(view.virtualService, STATE_ANNOTATION, serializeState(state)),
    ];
  }

  async plan(
    weight: number,
    next: (previous: RolloutState | undefined, view: TrafficView) => RolloutState,
  ): Promise<PatchOperation[]> {
    const view = this.view(
      this.dryRunObject ?? (await this.api.getVirtualService(this.o.namespace, this.o.name)),
    );
    const ops = this.operations(view, weight, next(view.state, view));
    this.dryRunObject = fastJsonPatch.applyPatch(
      structuredClone(view.virtualService),
      ops as Operation[],
      true,
      false,
    ).newDocument;
    return ops;
  }

  async write(
    weight: number,
    next: (previous: RolloutState | undefined, view: TrafficView) => RolloutState,
  ): Promise<RolloutState> {
    let conflicts = 0;
    let serverErrors = 0;
    for (;;) {
      let state: RolloutState;
      try {
        const view = this.view(await this.api.getVirtualService(this.o.namespace, this.o.name));
        state = next(view.state, view);
        await this.api.patchVirtualService(
          this.o.namespace,
          this.o.name,
          view.virtualService.apiVersion,
          this.operations(view, weight, state),
        );
      } catch (error) {
        if (error instanceof MeshError && error.isConflict && conflicts < this.o.maxConflicts) {
          conflicts += 1;
          continue;
        }
        if (error instanceof MeshError && error.isRetryable && serverErrors + 1 < this.o.maxServerErrors) {
          serverErrors += 1;
          await this.o.sleep(200 * 2 ** serverErrors * (0.5 + Math.random()));
          continue;
        }
        if (error instanceof MeshError && error.isConflict) {
          throw new MeshError(
            `${this.where} kept changing under the action (${conflicts + 1} conflicting edits in a row); nothing of theirs was overwritten`,
            error.status,
            error.reason,
          );
        }
        throw error;
      }
      await this.verify(weight);
      return state;
    }
  }

  /** Saves the state only: one patch of the annotation, re-planned after a conflicting edit. */
  async record(next: NextState): Promise<RolloutState> {
    for (let conflicts = 0; ; conflicts++) {
      const view = this.view(await this.api.getVirtualService(this.o.namespace, this.o.name));
      const state = next(view.state, view);
      try {
        await this.api.patchVirtualService(
          this.o.namespace,
          this.o.name,
          view.virtualService.apiVersion,
          planAnnotation(view.virtualService, STATE_ANNOTATION, serializeState(state)),
        );
        return state;
      } catch (error) {
        if (!(error instanceof MeshError && error.isConflict && conflicts < this.o.maxConflicts)) throw error;
      }
    }
  }

  /** Reads the object back: the weights must be the ones just written. */
  private async verify(weight: number): Promise<void> {
    const view = await this.read();
    if (view.weights.some((w) => w !== weight)) {
      throw new MeshError(
        `${this.where}: wrote canary weight ${weight} but read back ${view.weights.join(", ")}: another controller may be managing it`,
      );
    }
  }
}
