/**
 * What a stage's outcome means for the rollout, by the user's policies: pure. The engine carries
 * it out. Undefined means "go on" (the next stage, or promotion after the last).
 */
import type { Verdict } from "../analysis/judge.ts";
import type { InconclusivePolicy, UnreachablePolicy } from "./model/settings.ts";

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
