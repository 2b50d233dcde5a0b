/**
 * Pure check of the VirtualService's mirrors (`mirror` with `mirrorPercentage`, the older
 * `mirrorPercent`, and `mirrors: [{destination, percentage}]`) before a rollout.
 *
 * Istio's telemetry does not mark mirrored requests: the sidecar of the pod that receives a copy
 * reports it like any request, so `reporter="destination"` series count copies as ordinary
 * traffic, while the sending side reports none (istio/istio#23496 "Telemetry v2 does not report
 * metrics for mirror traffic at source, but does destination"; istio/istio#11475 "have telemetry
 * be able to discern mirrored traffic from normal traffic" was closed stale without it; #11093).
 * No label tells a copy from a request, so the action cannot keep copies out of a version's counts:
 * - a mirror to the canary is refused: the canary's counts would include copies, and after
 *   promotion every request would reach the new version twice (routed, then mirrored);
 * - a mirror to stable is a warning: stable's counts include copies, which mildly dilutes the
 *   comparison;
 * - a mirror elsewhere on a managed route is kept as it is (the action changes only weights): it
 *   is noted, since after promotion it copies the canary's traffic.
 */

import type { Destination, HttpRoute, VirtualService } from "../rollout/model/virtual-service.ts";
import { describeRoute, type ManagedRoute, sameHost } from "./routes.ts";

/** The two versions' destinations, with the host each route writes for stable. */
export interface Versions {
  stable: { host: string; subset?: string };
  canary: { host: string; subset?: string };
}

export interface MirrorFindings {
  problems: string[];
  warnings: string[];
  notes: string[];
}

interface Mirror {
  destination: Destination;
  percent: number;
}

/** Every mirror of a route that copies any request (a percentage of 0 copies none). */
export function mirrorsOf(route: HttpRoute): Mirror[] {
  const mirrors: Mirror[] = [];
  // Istio: without mirrorPercentage (or the deprecated mirrorPercent) all requests are mirrored.
  if (route.mirror)
    mirrors.push({
      destination: route.mirror,
      percent: route.mirrorPercentage?.value ?? route.mirrorPercent ?? 100,
    });
  for (const m of route.mirrors ?? [])
    if (m?.destination) mirrors.push({ destination: m.destination, percent: m.percentage?.value ?? 100 });
  return mirrors.filter((m) => m.percent > 0);
}

type Receiver = "canary" | "stable" | "both" | "other";

/** Whose pods a mirror's copies reach. A subset split's host without a subset reaches both versions. */
function receiver(d: Destination, versions: Versions, namespace: string): Receiver {
  const { stable, canary } = versions;
  if (canary.subset !== undefined) {
    if (!sameHost(d.host, stable.host, namespace)) return "other";
    if (d.subset === canary.subset) return "canary";
    if (d.subset === stable.subset) return "stable";
    return d.subset === undefined ? "both" : "other";
  }
  if (sameHost(d.host, canary.host, namespace)) return "canary";
  if (sameHost(d.host, stable.host, namespace)) return "stable";
  return "other";
}

const describe = (d: Destination) => `${d.host}${d.subset ? ` (subset ${d.subset})` : ""}`;

export function checkMirrors(
  vs: VirtualService,
  versions: Versions,
  managed: readonly ManagedRoute[],
): MirrorFindings {
  const namespace = vs.metadata.namespace ?? "default";
  const findings: MirrorFindings = { problems: [], warnings: [], notes: [] };
  for (const [index, route] of (vs.spec.http ?? []).entries()) {
    for (const mirror of mirrorsOf(route)) {
      const what = `${describeRoute(route, index)} mirrors ${mirror.percent} % of its requests to ${describe(mirror.destination)}`;
      const to = receiver(mirror.destination, versions, namespace);
      if (to === "canary" || to === "both") {
        findings.problems.push(
          `${what}${to === "both" ? ", which reaches the canary's pods too" : ", the canary"}: Istio's metrics do not mark mirrored requests, so the canary's counts would include copies the action cannot tell apart, and after promotion every request would reach the new version twice; remove the mirror (or point it elsewhere) before the rollout`,
        );
      } else if (to === "stable") {
        findings.warnings.push(
          `${what}, the stable version: Istio's metrics do not mark mirrored requests, so stable's counts include the copies and the comparison with the canary is mildly affected`,
        );
      } else if (managed.some((m) => m.index === index)) {
        findings.notes.push(
          `${what}; the action leaves the mirror as it is, so after promotion it copies the canary's requests there`,
        );
      }
    }
  }
  return findings;
}
