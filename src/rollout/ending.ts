/**
 * What a stage's outcome means for the rollout, by the user's policies: pure. The engine carries
 * it out. Undefined means "go on" (the next stage, or promotion after the last).
 */
import type { Verdict } from "../analysis/judge.ts";
import type { InconclusivePolicy, UnreachablePolicy } from "./model/settings.ts";
import { describeObject } from "./model/virtual-service.ts";
import type { TrafficView } from "./ports.ts";
import { lastWriter } from "./transitions.ts";

export type StageDecision =
  | "pass"
  | "fail"
  | "inconclusive"
  | "skipped"
  | "unreachable"
  | "aborted"
  | "halted";

export interface Ending {
  /**
   * rollback: all traffic to stable. pause: keep the weights, record why. leave: change nothing and
   * write nothing (a cancelled job with rollback-on-cancel false). halted: someone else changed the
   * weights; record it without touching them.
   */
  action: "rollback" | "pause" | "leave" | "halted";
  why: string;
  /** Whether the step fails. */
  failed: boolean;
}

export interface EndingPolicies {
  onInconclusive: InconclusivePolicy;
  onUnreachable: UnreachablePolicy;
  rollbackOnCancel: boolean;
}

export function ending(
  decision: StageDecision,
  rule: Verdict["rule"] | undefined,
  weight: number,
  reason: string,
  p: EndingPolicies,
): Ending | undefined {
  switch (decision) {
    case "fail":
      return { action: "rollback", why: `Failed at ${weight} %: ${reason}`, failed: true };
    case "aborted":
      return p.rollbackOnCancel
        ? { action: "rollback", why: reason, failed: true }
        : {
            action: "leave",
            why: `${reason}; rollback-on-cancel is false, so traffic stays at ${weight} %`,
            failed: true,
          };
    case "halted":
      return { action: "halted", why: reason, failed: true };
    case "unreachable":
      return unreachable(weight, reason, p);
    case "inconclusive":
      // Broken, partial or missing metrics are an outage of the metrics, not a verdict on the canary.
      if (rule === "metrics-error" || rule === "partial-data" || rule === "no-series")
        return unreachable(weight, reason, p);
      if (rule === "max-duration") {
        if (p.onInconclusive === "promote") return undefined;
        return p.onInconclusive === "rollback"
          ? { action: "rollback", why: `Inconclusive at ${weight} %: ${reason}`, failed: true }
          : {
              action: "pause",
              why: `Inconclusive at ${weight} %, paused (on-inconclusive: pause): ${reason}`,
              failed: false,
            };
      }
      // Near the limit with plenty of traffic (the limit is the rate that must trigger a rollback),
      // counts that point above the limit however few (above-limit),
      // or stable gets traffic and the canary none (the routing is wrong): never promoted.
      return p.onInconclusive === "pause"
        ? {
            action: "pause",
            why: `Inconclusive at ${weight} %, paused (on-inconclusive: pause): ${reason}`,
            failed: true,
          }
        : { action: "rollback", why: `Inconclusive at ${weight} %: ${reason}`, failed: true };
    default:
      return undefined;
  }
}

function unreachable(weight: number, reason: string, p: EndingPolicies): Ending {
  return p.onUnreachable === "rollback"
    ? {
        action: "rollback",
        why: `Rolled back at ${weight} % because the metrics could not be read: ${reason}`,
        failed: true,
      }
    : { action: "pause", why: `Held at ${weight} % (on-unreachable: hold): ${reason}`, failed: true };
}

/**
 * `VirtualService shop/backend (last written by field manager "kubectl-edit") was` when some but not
 * all of several VirtualServices send nothing to the canary: a person's rollback of them, which the
 * others must follow (a rollback by hand is never half done).
 */
export function rolledBackByHand(view: TrafficView): string | undefined {
  const parts = view.parts ?? [];
  const stable = parts.filter((p) => p.weights.every((w) => w === 0));
  if (stable.length === 0 || stable.length === parts.length) return undefined;
  const names = stable.map((p) => `${describeObject(p.object)}${lastWriter(p.object)}`);
  return `${names.join(", ")} ${names.length === 1 ? "was" : "were"}`;
}

/**
 * The VirtualServices rollout `rolloutId` left on the canary (`VirtualService istio-system/gw 10 %`),
 * or undefined when there is nothing to restore: none is left in it, or someone else's weights are
 * on any route (theirs win). `weights` are the ones this job wrote; each VirtualService's own
 * recorded weight is its too. With several, one already at 100 % stable is never someone else's.
 */
export function leftBehind(
  view: TrafficView,
  rolloutId: string,
  weights: readonly number[],
): string | undefined {
  const parts = view.parts ?? [view];
  // A state that cannot be read leaves only 100 % stable as surely not someone else's.
  const ours = (p: TrafficView) =>
    new Set([...weights, p.state?.rolloutId === rolloutId ? p.state.weight : 0]);
  const theirs = (p: TrafficView) =>
    p.weights.some((w) => !ours(p).has(w)) && !(parts.length > 1 && p.weights.every((w) => w === 0));
  if (parts.some(theirs)) return undefined;
  const left = parts.filter(
    (p) =>
      (p.stateProblem !== undefined && p.weights.some((w) => w > 0)) ||
      (p.stateProblem === undefined && p.state?.rolloutId === rolloutId && p.state.status === "progressing"),
  );
  if (left.length === 0) return undefined;
  return left.map((p) => `${describeObject(p.object)} (${p.weights.join(", ")} % canary)`).join(", ");
}
