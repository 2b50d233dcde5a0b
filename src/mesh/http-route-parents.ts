/**
 * An HTTPRoute's parents (the Gateways, or Services for the mesh, it is attached to) as their
 * controllers reported on them in `status.parents`: what preflight shows and refuses, and what the
 * router reads at every interval (a route no parent accepts routes nothing, whatever its weights).
 */
import type { GatewayHttpRoute, ParentRef, RouteParentStatus } from "../rollout/model/http-route.ts";
import { where } from "./http-route-rules.ts";

/** `Gateway istio-ingress/gateway`, `Service shop/reviews` (GAMMA). */
function describeParent(ref: ParentRef, namespace: string): string {
  const kind = ref.kind ?? "Gateway";
  const section = ref.sectionName ? ` (listener ${ref.sectionName})` : ref.port ? ` (port ${ref.port})` : "";
  return `${kind} ${ref.namespace ?? namespace}/${ref.name}${section}`;
}

function sameParent(a: ParentRef, b: ParentRef, namespace: string): boolean {
  return (
    (a.kind ?? "Gateway") === (b.kind ?? "Gateway") &&
    (a.group ?? "gateway.networking.k8s.io") === (b.group ?? "gateway.networking.k8s.io") &&
    (a.namespace ?? namespace) === (b.namespace ?? namespace) &&
    a.name === b.name &&
    (a.sectionName ?? "") === (b.sectionName ?? "")
  );
}

/**
 * Each parentRef's conditions as its controller reported them: problems for Accepted or
 * ResolvedRefs False, a warning for a parent no controller has reported on, a note otherwise.
 */
export function parentConditions(route: GatewayHttpRoute): {
  problems: string[];
  warnings: string[];
  notes: string[];
} {
  const namespace = route.metadata.namespace ?? "default";
  const out = { problems: [] as string[], warnings: [] as string[], notes: [] as string[] };
  const parents = route.spec.parentRefs ?? [];
  if (parents.length === 0)
    out.problems.push(
      `${where(route)} has no parentRefs: it is attached to no Gateway and no Service, so it routes nothing; add a parentRef to the Gateway (north-south) or to the Service (east-west, GAMMA) whose traffic it splits`,
    );
  const reported: RouteParentStatus[] = Array.isArray(route.status?.parents) ? route.status.parents : [];
  for (const parent of parents) {
    const name = describeParent(parent, namespace);
    const status = reported.find((s) => s?.parentRef && sameParent(s.parentRef, parent, namespace));
    if (!status) {
      out.warnings.push(
        `no controller has reported on ${where(route)}'s parent ${name} (status.parents has no entry for it): is istiod running, and does the Gateway's class belong to it? Until it accepts the route, its weights move nothing`,
      );
      continue;
    }
    const conditions = Array.isArray(status.conditions) ? status.conditions : [];
    const shown: string[] = [];
    for (const type of ["Accepted", "ResolvedRefs"]) {
      const c = conditions.find((x) => x?.type === type);
      if (!c) continue;
      shown.push(`${type} ${c.status}${c.reason ? ` (${c.reason})` : ""}`);
      if (c.status !== "False") continue;
      const why = `${c.reason ?? "no reason"}${c.message ? `: ${c.message}` : ""}`;
      out.problems.push(
        type === "Accepted"
          ? `${where(route)} is not Accepted by its parent ${name} (${why}): the parent routes nothing by it; fix the route or the parent first`
          : `${where(route)}'s references are not resolved by its parent ${name} (ResolvedRefs False, ${why}): a backendRef that cannot be resolved answers 500`,
      );
    }
    out.notes.push(`${where(route)} on ${name}: ${shown.join(", ") || "no conditions reported"}`);
  }
  return out;
}

/**
 * Why the route carries no traffic now: a parent that reported on it says Accepted False (its
 * Gateway changed class, the route broke a rule of the parent's listener). Read at every interval,
 * so that a stage cannot pass on the silence that follows (both versions serve 0 requests). A parent
 * no controller has reported on is left to preflight's warning: status is written late.
 */
export function notAccepted(route: GatewayHttpRoute): string | undefined {
  const found = parentConditions(route).problems.find((p) =>
    / is not Accepted by its parent | has no parentRefs/.test(p),
  );
  return found;
}
