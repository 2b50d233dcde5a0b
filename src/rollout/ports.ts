/**
 * The rollout core's ports: everything the engine needs from the world, owned by the core (as
 * Flagger's router.go and Argo Rollouts' metric/provider.go hold only their interfaces). The
 * adapters in src/mesh/ and src/metrics/ implement these; the engine imports nothing from them
 * but types of the data they carry.
 */
import type { Observation } from "../analysis/judge.ts";
import type { OriginalRoute, PatchOperation } from "./model/routes.ts";
import type { RolloutState } from "./model/state.ts";
import type { RouteObject } from "./model/virtual-service.ts";

export type { Clock } from "./clock.ts";
export type { EventSink, RolloutEvent } from "./events.ts";

export interface TrafficView {
  /** The managed routes' canary weight (the first route's when they differ). */
  weight: number;
  weights: number[];
  state?: RolloutState;
  /** Why the state annotation could not be read (not JSON, not this action's); `state` is then undefined. */
  stateProblem?: string;
  /** What the managed routes look like now, as a rollback would restore them if no rollout ran. */
  original: OriginalRoute[];
  /** The VirtualService or HTTPRoute read (the primary's with several): its kind and metadata. */
  object: RouteObject;
  /**
   * Routes the action does not manage that still send traffic to stable or the canary: with these,
   * the canary's share of requests is not its weight, so the traffic-share check allows for them.
   */
  unmanaged: UnmanagedRoute[];
  /**
   * Why the managed routes carry no traffic now, whatever their weights (an HTTPRoute that a parent
   * no longer Accepts): nothing can be judged, and no stage may pass on the silence that follows.
   */
  notRouting?: string;
  /**
   * With several VirtualServices in lockstep, each one's own view (the primary first): its own
   * weights and its own state. The fields above are the primary's, with every one's weights.
   */
  parts?: TrafficView[];
  /** The action's preview routes on the VirtualService (issue 23), when there are any. */
  preview?: PreviewView;
}

/**
 * The header-routed preview as found on the routes: their names and the header they match, and,
 * only where the preview annotation agrees with the routes, the rollout it was added for and when.
 */
export interface PreviewView {
  routes: string[];
  header?: string;
  value?: string;
  rolloutId?: string;
  /** ISO time the preview was added. */
  since?: string;
}

/** What `command: preview` asks for: requests with `header: value` go to the canary, for rollout `rolloutId`. */
export interface PreviewRequest {
  header: string;
  value: string;
  rolloutId: string;
}

/** A route outside the managed ones that sends traffic to one version or both. */
export interface UnmanagedRoute {
  /** `http route "jason" of VirtualService shop/reviews`. */
  route: string;
  to: Array<"stable" | "canary">;
}

/** One object's JSON Patch, as a dry run prints it. */
export interface PlannedPatch {
  /** `VirtualService namespace/name` or `HTTPRoute namespace/name`. */
  object: string;
  patch: PatchOperation[];
}

/** Computes the state to save from the state found; runs again on every retry, so it may refuse by throwing. */
export type NextState = (previous: RolloutState | undefined, view: TrafficView) => RolloutState;

export interface WriteOptions {
  /**
   * A move to 0 that is not a rollback (`on-split: restart`): like a move to any other weight, it is
   * refused before anything is written when `next` refuses any VirtualService. A rollback instead
   * reaches every VirtualService it can.
   */
  allOrNothing?: boolean;
}

/** What the rollout engine needs from the mesh. */
export interface TrafficPort {
  read(signal?: AbortSignal): Promise<TrafficView>;
  /**
   * Sets every managed route to `weight` and saves the state `next` computes from the state it
   * finds, in one patch; retries what is transient.
   */
  write(weight: number, next: NextState, signal?: AbortSignal, options?: WriteOptions): Promise<RolloutState>;
  /**
   * The patch `write` would send, for dry runs: each call plans against the object as the previous
   * planned patches would have left it, and nothing is written.
   */
  plan(weight: number, next: NextState): Promise<PlannedPatch[]>;
  /** Saves the state `next` computes and changes no route (a person's edit is recorded, never undone). */
  record(next: NextState, signal?: AbortSignal): Promise<RolloutState>;
  /**
   * Adds the preview routes (one ahead of each managed route), or finds them already there for the
   * same header and value; refuses, naming why, where they cannot be added safely. Absent where
   * previews are not supported (several routes moved in lockstep).
   */
  addPreview?(request: PreviewRequest, at: Date, signal?: AbortSignal): Promise<PreviewView>;
  /** Removes the preview routes, if any (no weight changes); the names removed. */
  removePreview?(signal?: AbortSignal): Promise<string[]>;
}

/** Where counting starts: an adapter's own record of each version's counters at one instant. */
export interface MetricsMark {
  readonly at: Date;
}

/** What the rollout engine needs from a metrics backend. */
export interface MetricsPort {
  /**
   * Counter values at `at` (now), to count from, at one instant for both versions. `afterMove`
   * (right after a step back): from the first samples taken after `at`, so that no increment that
   * began before the move counts.
   */
  start(at: Date, signal?: AbortSignal, options?: { afterMove?: boolean }): Promise<MetricsMark>;
  /** Exact counts from `mark` to `now`: cumulative since the mark, never an exception. */
  observeSince(mark: MetricsMark, now: Date, signal?: AbortSignal): Promise<Observation>;
  /** Preflight: the backend answers and has series for the stable version. */
  checkReady(): Promise<void>;
  /** The query of each version's requests, for the report's links. */
  queries(): { canary: string; stable: string };
}

/** What GitHub says of the workflow run that holds a lease. */
export interface RunStatus {
  /** The run is over (`completed`): it cannot renew or use its lease. */
  ended: boolean;
  /** `queued`, `in_progress`, `completed`... as GitHub answers. */
  status: string;
  conclusion?: string;
}

/**
 * GitHub's word on a lease holder's workflow run (issue 20): a lease whose run is over is taken
 * over at once instead of when it expires (up to ~25 min after a kill at the defaults).
 */
export interface RunStatusPort {
  /** The run behind `holder` ("owner/repo run <id> attempt <n>"), or undefined when GitHub cannot tell (a warning was given). */
  status(holder: string, signal?: AbortSignal): Promise<RunStatus | undefined>;
}

/** A Deployment's rollout as `kubectl rollout status` would judge it, with its pods' sidecars. */
export interface WorkloadStatus {
  /** `shop/backend-v1`. */
  name: string;
  /** Rolled out (observed generation, updated, ready and available replicas, no old pods) with every pod ready with its istio-proxy. */
  ready: boolean;
  /** One line for a person: `3/3 ready, image registry.example/backend:v2` or what is wrong. */
  summary: string;
  /** What keeps it from ready: pod statuses (CrashLoopBackOff...), Warning events, a deadline. */
  problems: string[];
  /** The image of each container of the pod template, by container name. */
  images: Record<string, string>;
  replicas: number;
  /** Pods ready with their istio-proxy sidecar (not terminating). */
  readyPods: number;
}

/** The stable Deployment's pod template as the promotion's copy left it (as the API server stored it). */
export interface CopiedTemplate {
  readonly template: unknown;
  /** When the copy was made (or found made): later writers of the Deployment changed it. */
  readonly at: Date;
  /** The Deployment's managedFields entries right after the copy (adapter-specific keys), to tell later writers apart. */
  readonly writers?: readonly string[];
}

/**
 * The workloads behind the two versions (issue 14's release model, as Flagger promotes its
 * primary): the user updates the canary Deployment; after the analysis the stable Deployment gets
 * the canary's pod template, traffic goes back to it, and the canary is scaled to zero.
 */
export interface WorkloadPort {
  /** The stable and canary Deployments (inputs, or found from the pods each version selects); throws naming what it saw. */
  resolve(signal?: AbortSignal): Promise<{ stable: string; canary: string }>;
  /** Copies the canary's pod template onto the stable Deployment, keeping the stable's selector labels, replicas and metadata; guarded against concurrent edits (re-planned). */
  copyCanaryToStable(signal?: AbortSignal): Promise<CopiedTemplate>;
  /**
   * Why all traffic must not move to the stable Deployment now, or undefined when it may: its pod
   * template is no longer `copied` (compared by content), or it has fewer pods ready with their
   * sidecar and running the promoted images than the canary has (never 0: a Deployment scaled to 0
   * is "rolled out" to kubectl but serves nothing). Names who changed it (managedFields) and what.
   */
  servesPromoted(copied: CopiedTemplate, signal?: AbortSignal): Promise<string | undefined>;
  /** Waits until the stable Deployment has rolled out with sidecar-ready pods, or `timeoutMs` passes; never throws for "not ready". */
  waitStable(timeoutMs: number | undefined, signal?: AbortSignal): Promise<WorkloadStatus>;
  /** The stable Deployment's status now (a rollback while finalizing must not route to a stable that is not ready). */
  stableStatus(signal?: AbortSignal): Promise<WorkloadStatus>;
  /** Scales the canary Deployment: to `replicas`, or to the stable's replica count. */
  scaleCanary(replicas: number | "stable", signal?: AbortSignal): Promise<void>;
  /** Waits until the canary Deployment has rolled out with sidecar-ready pods, or `timeoutMs` passes. */
  waitCanary(timeoutMs: number | undefined, signal?: AbortSignal): Promise<WorkloadStatus>;
}
