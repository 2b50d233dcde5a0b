/**
 * Whether the traffic goes where the weights say: the canary's share of a stage's requests, counted
 * from settle-time, against its weight. Far outside chance, the stage warns once (it decides nothing).
 */
import { splitCheck } from "../analysis/judge.ts";
import type { TrafficView, UnmanagedRoute } from "./ports.ts";
import { type CountedSoFar, delta } from "./stage-reads.ts";

/** A split this far outside chance means traffic is not going where the weights say. */
const SPLIT_Z_ALARM = 5;
/** Requests both versions served since settle-time before a share is worth a warning. */
const SPLIT_MIN_REQUESTS = 200;

/**
 * Routes the action does not manage that send traffic to stable lower the canary's share below its
 * weight (at 100 % stable still serves them); to the canary, raise it. A share off in that
 * direction is what the routes say, not a fault.
 */
function shareExplained(zScore: number, unmanaged: readonly UnmanagedRoute[]): boolean {
  const side = zScore < 0 ? "stable" : "canary";
  return unmanaged.some((route) => route.to.includes(side));
}

/**
 * What to look at when the canary's share is off, in the terms of the object's kind: a
 * VirtualService applies through its hosts and gateways, an HTTPRoute through its parentRefs.
 */
function whereToLook(zScore: number, kind: string): string {
  if (kind === "HTTPRoute")
    return zScore > 0
      ? "does a RequestMirror filter, another route or a caller outside the mesh send the canary requests the weights do not?"
      : "is the HTTPRoute attached to this traffic (its parentRefs Accepted, its hostnames), and do the pods have their sidecar or waypoint?";
  return zScore > 0
    ? `does a mirror, another ${kind} or a caller outside the mesh send the canary requests the weights do not?`
    : `is the ${kind} applied to this traffic (its hosts and gateways), and do the pods have their sidecar (in ambient mode, a waypoint)?`;
}

function shareWarning(
  split: { observedShare: number; zScore: number },
  weight: number,
  unmanaged: readonly UnmanagedRoute[],
  kind: string,
): string {
  const share = `The canary got ${(split.observedShare * 100).toFixed(1)} % of the requests both versions served at weight ${weight} %, far outside chance (z = ${split.zScore.toFixed(1)})`;
  const others =
    unmanaged.length > 0
      ? `; routes the action does not manage also send traffic: ${unmanaged.map((route) => `${route.route} (to ${route.to.join(" and ")})`).join(", ")}`
      : "";
  return `${share}${others}: ${whereToLook(split.zScore, kind)}`;
}

export class TrafficShareWatch {
  /**
   * The counts at the first read after settle-time: the share counts from here. What came before
   * mixes requests served at the previous weight (the mark's sample is up to one scrape old, and
   * proxies take a moment to get the new weights) into this stage's share.
   */
  private countedAtSettle: CountedSoFar | undefined;
  private unmanaged: UnmanagedRoute[] = [];
  /** The managed object's kind as last read: the warning's advice is in its terms. */
  private kind = "VirtualService";
  private warned = false;
  private readonly settleMs: number;
  /** An adopted split's weights, route by route (see StageAnalysisInput). */
  private readonly foundWeights: readonly number[] | undefined;

  constructor(settleMs: number, foundWeights: readonly number[] | undefined) {
    this.settleMs = settleMs;
    this.foundWeights = foundWeights;
  }

  /** After the weight moved: the share counts afresh from the next settle-time. */
  restart(): void {
    this.countedAtSettle = undefined;
  }

  /**
   * Takes in one read (`found`: the routes, when they could be read; `counting`: the stage's
   * metrics have a mark). Returns the warning when the share is far outside chance, once a stage.
   */
  warningAfter(
    read: { weight: number; elapsedMs: number },
    counted: CountedSoFar,
    found: TrafficView | undefined,
    counting: boolean,
  ): string | undefined {
    const { weight } = read;
    if (found) {
      this.unmanaged = found.unmanaged;
      this.kind = found.object.kind;
    }
    const from = this.countedAtSettle;
    // Routes at different weights (an adopted split) have no one share to expect.
    if (!from || this.foundWeights?.some((w) => w !== weight)) {
      if (read.elapsedMs >= this.settleMs && counting) this.countedAtSettle = counted;
      return undefined;
    }
    const canary = delta(counted.canary, from.canary);
    const stable = delta(counted.stable, from.stable);
    const split = splitCheck(weight, canary, stable);
    const alarming =
      !this.warned &&
      split !== undefined &&
      Math.abs(split.zScore) > SPLIT_Z_ALARM &&
      !shareExplained(split.zScore, this.unmanaged) &&
      canary.requests + stable.requests >= SPLIT_MIN_REQUESTS;
    if (!alarming) return undefined;
    this.warned = true;
    return shareWarning(split, weight, this.unmanaged, this.kind);
  }
}
