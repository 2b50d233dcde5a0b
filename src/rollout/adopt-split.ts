/**
 * Pure decisions for a rollout that finds the managed routes already sending traffic to the canary
 * with no live rollout recorded (a split made by hand, Bookinfo's 80/20, or one left by another
 * tool): where to continue, what to tell the user, and when to refuse. The split is judged at the
 * weights found before anything raises it (src/rollout/stage-runner.ts). Continuing never raises a
 * route by more than one stage at once: it starts from the smallest canary weight found, and a
 * route above the next stage is lowered to it (a smaller canary share is always safe).
 */
import type { OriginalRoute } from "./model/routes.ts";
import type { RolloutState } from "./model/state.ts";

/** A managed route as messages name it, the way the `routes` input selects it. */
export function routeLabel(route: Pick<OriginalRoute, "index" | "name">): string {
  return route.name ? `http route "${route.name}"` : `http route #${route.index}`;
}

/**
 * The i-th weight's route. With several objects (VirtualServices or HTTPRoutes, `kind`) in lockstep
 * the view's `original` holds the primary's routes only, and the weights of the others follow them.
 */
function labelAt(routes: readonly OriginalRoute[], i: number, kind: string): string {
  const route = routes[i];
  return route ? routeLabel(route) : `route ${i + 1 - routes.length} of the other ${kind}s`;
}

/** `http route "primary" 20 %, http route #1 60 %`: each managed route with its canary weight. */
export function describeWeights(
  routes: readonly OriginalRoute[],
  weights: readonly number[],
  kind = "VirtualService",
): string {
  return weights.map((w, i) => `${labelAt(routes, i, kind)} ${w} %`).join(", ");
}

export interface SplitFound {
  stages: readonly number[];
  /** Each managed route's canary weight, in the order of `routes`. */
  weights: readonly number[];
  routes: readonly OriginalRoute[];
  /** A finished rollout recorded on the managed object, if any. */
  state?: RolloutState;
  /** The managed object's kind (`VirtualService`, `HTTPRoute`): the messages name its inputs. */
  kind?: string;
}

/** The inputs that name the two versions on the object's kind (an HTTPRoute's are Services). */
function versionInputs(kind: string | undefined): string {
  return kind === "HTTPRoute" ? "stable-host and canary-host" : "stable-subset and canary-subset";
}

const weightsOf = (found: SplitFound) => describeWeights(found.routes, found.weights, found.kind);

export interface Continuation {
  /** Index into `stages` of the first stage to run. */
  from: number;
  /** The smallest canary weight found: where this run counts from. */
  weight: number;
  /** What was adopted, for the warning event. */
  message: string;
}

function recorded(state: RolloutState | undefined): string {
  return state ? `rollout ${state.rolloutId} was ${state.status}` : "no rollout recorded";
}

/** True when every managed route already sends all its traffic to the canary: nothing is left to adopt. */
export function allOnCanary(weights: readonly number[]): boolean {
  return weights.length > 0 && weights.every((w) => w === 100);
}

/**
 * The refusal when the canary already has 100 % everywhere. Each way out was checked to lead to a
 * rollout that starts (see test/unit/rollout-adopt-split.test.ts): after the swap the new canary's
 * weight is 0 on every route; after a rollback every route is 100 % stable.
 */
export function allOnCanaryRefusal(found: SplitFound): string {
  return `the canary already gets 100 % of traffic on ${weightsOf(found)} (${recorded(found.state)}): no stage is left to run, and starting again from stage 1 would move it back abruptly. For the next release either swap ${versionInputs(found.kind)} (the version at 100 % becomes stable and the new canary starts from 0 %), or run command: rollback first (all traffic back to stable; the next rollout then starts from stage 1)`;
}

/**
 * Where a rollout continues on a split it adopts: the first stage above the smallest canary weight
 * (with stages ending at 100, a weight at or above the last stage below 100 continues at 100).
 */
export function continuation(found: SplitFound): Continuation {
  const weight = Math.min(...found.weights);
  const from = found.stages.findIndex((s) => s > weight);
  const next = found.stages[from] as number;
  const stage = `stage ${from + 1} of ${found.stages.length} (${next} %)`;
  const where = weightsOf(found);
  const differ = new Set(found.weights).size > 1;
  const lowered = found.weights.flatMap((w, i) =>
    w > next ? [labelAt(found.routes, i, found.kind ?? "VirtualService")] : [],
  );
  const parts = [
    `Adopting a split in progress (${recorded(found.state)}): the canary already gets ${where}.`,
    differ
      ? `The managed routes differ: continuing from the smallest weight, ${weight} %, so that no route rises by more than one stage${lowered.length > 0 ? `; ${lowered.join(", ")} ${lowered.length === 1 ? "is" : "are"} lowered to ${next} %` : ""}.`
      : "",
    `First the split is judged where it is, beside stable, as a stage of its own: a canary failing there is rolled back before anything raises it. Then: ${stage}, the first stage above ${weight} %. The evidence starts fresh (none was gathered for this canary).`,
    "To start from stage 1 instead, set on-split: restart.",
  ];
  return { from, weight, message: parts.filter(Boolean).join(" ") };
}

/** The reason recorded with the rollback that `on-split: restart` writes before stage 1. */
export function restartReason(found: SplitFound): string {
  return `on-split: restart: every managed route back to 100 % stable before stage 1 (the canary had ${weightsOf(found)}; ${recorded(found.state)})`;
}
