/**
 * Preflight of a Gateway API HTTPRoute, as preflight.ts checks a VirtualService: the route exists,
 * its managed rules route to the stable Service, both Services exist and select pods, the canary's
 * pods are ready with their sidecar; and what only an HTTPRoute has: its parents' status. A route
 * that a parent (a Gateway, or a Service for the mesh) has not Accepted routes nothing, so moving
 * its weights would judge a canary that gets no traffic: refused with the parent and its reason.
 */
import type { GatewayHttpRoute, ParentRef, RouteParentStatus } from "../rollout/model/http-route.ts";
import type { Split } from "../rollout/model/split.ts";
import { backendIs, describeRule, findManagedRules, where } from "./http-route-rules.ts";
import type { LookupContext } from "./istio-lookup.ts";
import type { GatewayApi, MeshApi } from "./kubernetes.ts";
import {
  DEFAULT_ROOT_NAMESPACE,
  PreflightError,
  type PreflightOptions,
  type PreflightResult,
  resolveHosts,
} from "./preflight.ts";
import { checkCanaryPods } from "./preflight-pods.ts";
import type { Target } from "./routes.ts";

/** `Gateway istio-ingress/gateway`, `Service shop/reviews` (GAMMA). */
export function describeParent(ref: ParentRef, namespace: string): string {
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
 * RequestMirror filters (on a rule or on a backendRef) that copy requests to the canary: its
 * mirrored requests would count as its traffic and their errors as its errors at every stage
 * (refused, as a VirtualService `mirror` to the canary is); a mirror elsewhere is a note.
 */
export function mirrorProblems(
  route: GatewayHttpRoute,
  target: Target,
): { problems: string[]; notes: string[] } {
  const namespace = route.metadata.namespace ?? "default";
  const out = { problems: [] as string[], notes: [] as string[] };
  (route.spec.rules ?? []).forEach((rule, index) => {
    const filters = [rule, ...(rule.backendRefs ?? [])].flatMap((o) =>
      Array.isArray(o.filters) ? o.filters : [],
    );
    for (const f of filters as Array<{
      type?: string;
      requestMirror?: { backendRef?: { name: string; namespace?: string } };
    }>) {
      const to = f?.type === "RequestMirror" ? f.requestMirror?.backendRef : undefined;
      if (!to) continue;
      const what = `${where(route)}: ${describeRule(rule, index)} mirrors its requests to ${to.name} (filter RequestMirror)`;
      if (backendIs(to, target.canary, namespace) || backendIs(to, target.stable, namespace))
        out.problems.push(
          `${what}, a version under analysis: mirrored requests would be counted as its traffic and their errors as its errors at every stage; remove the filter before the rollout`,
        );
      else out.notes.push(`${what}; the action leaves it as it is`);
    }
  });
  return out;
}

export async function preflightHttpRoute(
  api: MeshApi & GatewayApi,
  namespace: string,
  name: string,
  split: Split,
  target: Target,
  routes: readonly string[],
  options: PreflightOptions = {},
): Promise<PreflightResult> {
  const { signal } = options;
  const route = await api.getHttpRoute(namespace, name, signal);
  const managed = findManagedRules(route, target, routes);
  const parents = parentConditions(route);
  const mirrors = mirrorProblems(route, target);
  const problems = [...parents.problems, ...mirrors.problems];
  const warnings = [...parents.warnings];
  const ctx: LookupContext = {
    api,
    clientNamespace: namespace,
    rootNamespace: options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE,
    signal,
    warnings,
  };
  if (split.mode !== "host")
    throw new PreflightError(where(route), [
      "an HTTPRoute splits between two Services: set stable-host and canary-host",
    ]);
  const found = await resolveHosts(ctx, split, problems);
  const { stable, canary, stableLabels, canaryLabels } = found;
  const stableService = stable?.metrics ?? { name: split.stableHost, namespace };
  const canaryService = canary?.metrics ?? stableService;
  if (canary && Object.keys(canaryLabels).length > 0)
    await checkCanaryPods(
      api,
      { ...found, canary, canaryNamespace: canary.namespace ?? namespace },
      problems,
      warnings,
      signal,
    );
  if (problems.length > 0)
    throw new PreflightError(where(route), problems, { stable: stableLabels, canary: canaryLabels });
  return {
    object: route,
    managed,
    stableLabels,
    canaryLabels,
    stableService,
    canaryService,
    warnings,
    notes: [...parents.notes, ...mirrors.notes],
  };
}
