/**
 * Preflight of a Gateway API HTTPRoute, as preflight.ts checks a VirtualService: the route exists,
 * its managed rules route to the stable Service, both Services exist and select pods, the canary's
 * pods are ready with their sidecar; and what only an HTTPRoute has: its parents' status. A route
 * that a parent (a Gateway, or a Service for the mesh) has not Accepted routes nothing, so moving
 * its weights would judge a canary that gets no traffic: refused with the parent and its reason.
 */
import type { GatewayHttpRoute } from "../rollout/model/http-route.ts";
import type { Split } from "../rollout/model/split.ts";
import { ingressWarning } from "./ambient.ts";
import { parentConditions } from "./http-route-parents.ts";
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
import { checkCanaryPods, type PodCheck } from "./preflight-pods.ts";
import type { Target } from "./routes.ts";

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
  const parentRefs = route.spec.parentRefs ?? [];
  // GAMMA: a route attached to a Service is applied by that Service's waypoint in ambient mode.
  const serviceParents = parentRefs
    .filter((p) => p.kind === "Service" && (p.group ?? "") === "")
    .map((p) => ({ name: p.name, namespace: p.namespace ?? namespace }));
  const services = serviceParents.length > 0 ? serviceParents : [stableService, canaryService];
  const pods: PodCheck =
    canary && Object.keys(canaryLabels).length > 0
      ? await checkCanaryPods(
          api,
          { ...found, canary, canaryNamespace: canary.namespace ?? namespace, services },
          problems,
          warnings,
          signal,
        )
      : { dataplane: "sidecar", waypoints: [] };
  if (pods.dataplane === "ambient") {
    const gateways = parentRefs
      .filter((p) => (p.kind ?? "Gateway") === "Gateway")
      .map((p) => `${p.namespace ?? namespace}/${p.name}`);
    const ingress = ingressWarning(
      where(route),
      serviceParents.length > 0 ? ["mesh"] : gateways,
      pods.ingressUsesWaypoint ?? false,
    );
    if (ingress) warnings.push(ingress);
  }
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
    dataplane: pods.dataplane,
    waypoints: pods.waypoints,
  };
}
