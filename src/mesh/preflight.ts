/**
 * Checks before any write that the mesh can take the rollout: the VirtualService exists and its
 * managed routes route to stable with weights summing to 100; each host resolves as Istio resolves
 * it (a Kubernetes Service or a ServiceEntry with a workloadSelector, src/mesh/istio-lookup.ts);
 * the DestinationRule Istio would apply (client's, service's, then root namespace, honouring
 * exportTo) defines both subsets (a missing one is Istio's "503 Service Unavailable"); no mirror
 * copies requests to the canary (src/mesh/mirrors.ts); the canary's pods exist, are ready and carry
 * the istio-proxy sidecar (READY 2/2) and are not stable's pods too; the namespace enables
 * injection, or, in ambient mode, a programmed and ready waypoint serves the Services
 * (src/mesh/preflight-pods.ts, src/mesh/ambient.ts); no tcp or tls route sends traffic to the stable host (only http routes are shifted).
 * Every problem is reported at once, one line each.
 */

import type { Split } from "../rollout/model/split.ts";
import type { HttpRoute, RouteObject, VirtualService } from "../rollout/model/virtual-service.ts";
import { ingressWarning } from "./ambient.ts";
import { kubernetesServiceOf, qualifyHost } from "./istio-hosts.ts";
import {
  findDestinationRule,
  HostProblem,
  type LookupContext,
  type ResolvedHost,
  resolveHost,
} from "./istio-lookup.ts";
import type { GatewayApi, MeshApi } from "./kubernetes.ts";
import { checkMirrors, type Versions } from "./mirrors.ts";
import { checkCanaryPods, type PodCheck, type PodCheckInput } from "./preflight-pods.ts";
import { getVirtualService } from "./route-kinds.ts";
import { describeRoute, findManagedRoutes, type ManagedRoute, sameHost, type Target } from "./routes.ts";

/** meshConfig.rootNamespace when the mesh does not set it. */
export const DEFAULT_ROOT_NAMESPACE = "istio-system";

export interface PreflightOptions {
  /** What the refs name (the `http-route` input: HTTPRoutes); VirtualServices by default. */
  kind?: "VirtualService" | "HTTPRoute";
  /** meshConfig.rootNamespace: the last namespace Istio looks for a DestinationRule in. */
  rootNamespace?: string;
  signal?: AbortSignal;
}

export interface PreflightResult {
  /** The VirtualService or HTTPRoute checked. */
  object: RouteObject;
  managed: ManagedRoute[];
  /**
   * Pod labels that identify each version: the host's Service selector (or ServiceEntry
   * workloadSelector) plus the subset's labels; empty when they could not be read.
   */
  stableLabels: Record<string, string>;
  canaryLabels: Record<string, string>;
  /** Destination service name and namespace, as Istio's metrics label them. */
  stableService: { name: string; namespace: string };
  canaryService: { name: string; namespace: string };
  /** The DestinationRule that defines the subsets, `ns/name` (rules Istio merges: `ns/a, ns/b`). */
  destinationRule?: string;
  warnings: string[];
  /** Facts worth a line that need nothing done (a mirror the action leaves as it is). */
  notes: string[];
  /** The canary's data plane (sidecars, or ambient with a waypoint) and, in ambient, its waypoints `ns/name`. */
  dataplane: PodCheck["dataplane"];
  waypoints: string[];
}

export class PreflightError extends Error {
  readonly problems: string[];
  /** The versions' pod labels, when preflight read them before it failed (the DestinationRule's subsets). */
  readonly labels?: { stable: Record<string, string>; canary: Record<string, string> };
  constructor(
    where: string,
    problems: string[],
    labels?: { stable: Record<string, string>; canary: Record<string, string> },
  ) {
    super(`Preflight of ${where} failed: ${problems.join("; ")}`);
    this.name = "PreflightError";
    this.problems = problems;
    this.labels = labels;
  }
}

/**
 * The tcp and tls routes that send traffic to the stable host, as `tls route #0 (to reviews)`.
 * The action shifts only http routes, so these would keep sending all their traffic to stable
 * after a "promoted" rollout.
 */
export function nonHttpRoutesToStable(vs: VirtualService, stableHost: string, namespace: string): string[] {
  return (["tcp", "tls"] as const).flatMap((protocol) =>
    (vs.spec[protocol] ?? []).flatMap((route, index) => {
      const hosts = (route.route ?? []).map((d) => d.destination?.host ?? "");
      if (!hosts.some((h) => sameHost(h, stableHost, namespace))) return [];
      return [`${protocol} route #${index} (to ${[...new Set(hosts)].join(", ")})`];
    }),
  );
}

/** The gateways a VirtualService applies to; absent means the mesh's sidecars alone (Istio's default). */
export function gatewaysOf(vs: VirtualService): string[] {
  const gateways = vs.spec.gateways;
  return Array.isArray(gateways) && gateways.length > 0 ? gateways.map(String) : ["mesh"];
}

/** Resolves a host, turning the reason it cannot be used into a problem line. */
/** `input`: the input that named the host, named in the problem (the fix is usually a typo there). */
export async function resolveOrReport(
  ctx: LookupContext,
  host: string,
  problems: string[],
  input?: string,
): Promise<ResolvedHost | undefined> {
  try {
    return await resolveHost(ctx, host);
  } catch (error) {
    if (!(error instanceof HostProblem)) throw error;
    problems.push(input ? `${error.message} (the '${input}' input)` : error.message);
    return undefined;
  }
}

/** The versions' hosts and labels as preflight found them (empty labels when they could not be read). */
export interface ResolvedVersions {
  stable?: ResolvedHost;
  canary?: ResolvedHost;
  stableLabels: Record<string, string>;
  canaryLabels: Record<string, string>;
  destinationRule?: string;
}

export async function preflight(
  api: MeshApi & Partial<GatewayApi>,
  namespace: string,
  name: string,
  split: Split,
  target: Target,
  routes: readonly string[],
  options: PreflightOptions = {},
): Promise<PreflightResult> {
  const { signal } = options;
  const where = `VirtualService ${namespace}/${name}`;
  const vs = await getVirtualService(api, namespace, name, signal);
  const managed = findManagedRoutes(vs, target, routes);
  const problems: string[] = [];
  const warnings: string[] = [];
  const ctx: LookupContext = {
    api,
    clientNamespace: namespace,
    rootNamespace: options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE,
    signal,
    warnings,
  };

  if (!vs.spec.hosts?.length)
    warnings.push(
      `${where} has no hosts: it is a delegate, applied only to the requests a root VirtualService delegates to it; callers that do not come through that root are not routed by it`,
    );
  problems.push(...weightProblems(vs, managed));
  const firstRoute = vs.spec.http?.[managed[0]?.index ?? 0];
  const stableHost = firstRoute?.route?.[managed[0]?.stableIndex ?? 0]?.destination.host ?? "";
  const otherProtocols = nonHttpRoutesToStable(vs, stableHost, namespace);
  if (otherProtocols.length > 0) {
    problems.push(
      `${where} also has ${otherProtocols.join(", ")} sending traffic to the stable host ${stableHost}: only http routes are shifted, so that traffic would stay on stable after the canary is promoted; move these routes to a VirtualService of their own`,
    );
  }
  const mirrors = checkMirrors(vs, versionsOf(split, stableHost), managed);
  problems.push(...mirrors.problems);
  warnings.push(...mirrors.warnings);

  const found =
    split.mode === "subset"
      ? await resolveSubsets(ctx, split, stableHost, problems)
      : await resolveHosts(ctx, split, problems);
  const { stable, canary, stableLabels, canaryLabels } = found;
  const stableService = stable?.metrics ?? { name: stableHost, namespace };
  const canaryService = canary?.metrics ?? stableService;
  const services = meshHostServices(vs) ?? [stableService, canaryService];
  const pods = await checkPods(api, vs, where, found, services, problems, warnings, signal);
  if (problems.length > 0)
    throw new PreflightError(where, problems, { stable: stableLabels, canary: canaryLabels });
  return {
    object: vs,
    managed,
    stableLabels,
    canaryLabels,
    stableService,
    canaryService,
    destinationRule: found.destinationRule,
    warnings,
    notes: mirrors.notes,
    dataplane: pods.dataplane,
    waypoints: pods.waypoints,
  };
}

/**
 * Ambient: the Kubernetes Services a mesh VirtualService's `hosts` name. Their waypoint applies
 * it (waypoints do not chain, so the versions' own Services need none); undefined when it names
 * none (a delegate, a gateway-only VirtualService, external hosts): then the versions' Services.
 */
function meshHostServices(vs: VirtualService): PodCheckInput["services"] | undefined {
  if (!gatewaysOf(vs).includes("mesh")) return undefined;
  const namespace = vs.metadata.namespace ?? "default";
  // Only names Istio reads as a Service: a short name, or `<name>.<ns>.svc[.cluster.local]`.
  const serviceNames = (vs.spec.hosts ?? []).filter(
    (h) => !h.includes(".") || /\.svc(\.cluster\.local)?$/.test(h),
  );
  const services = serviceNames.flatMap((h) => kubernetesServiceOf(qualifyHost(h, namespace)) ?? []);
  return services.length > 0 ? services : undefined;
}

/**
 * The canary's pods (sidecars, or ambient with a waypoint), when their labels are known; in
 * ambient, the warning when the route is bound to ingress gateways that bypass the waypoint.
 */
async function checkPods(
  api: MeshApi,
  vs: VirtualService,
  where: string,
  found: ResolvedVersions,
  services: PodCheckInput["services"],
  problems: string[],
  warnings: string[],
  signal?: AbortSignal,
): Promise<PodCheck> {
  const { canary, canaryLabels } = found;
  if (!canary || Object.keys(canaryLabels).length === 0) return { dataplane: "sidecar", waypoints: [] };
  const namespace = vs.metadata.namespace ?? "default";
  const input = { ...found, canary, canaryNamespace: canary.namespace ?? namespace, services };
  const pods = await checkCanaryPods(api, input, problems, warnings, signal);
  const ingress =
    pods.dataplane === "ambient"
      ? ingressWarning(where, gatewaysOf(vs), pods.ingressUsesWaypoint ?? false)
      : undefined;
  if (ingress) warnings.push(ingress);
  return pods;
}

/** Each managed route that splits traffic must weigh 100 in all, or Istio refuses the patch. */
function weightProblems(vs: VirtualService, managed: readonly ManagedRoute[]): string[] {
  const problems: string[] = [];
  for (const m of managed) {
    const route = vs.spec.http?.[m.index] as HttpRoute;
    const destinations = route.route ?? [];
    if (destinations.length > 1) {
      const total = destinations.reduce((s, d) => s + (d.weight ?? 0), 0);
      if (total !== 100)
        problems.push(`${describeRoute(route, m.index)} has weights summing to ${total}, not 100`);
    }
  }
  return problems;
}

/** The two versions as a mirror would name them: subsets of the stable host, or two hosts. */
function versionsOf(split: Split, stableHost: string): Versions {
  return split.mode === "subset"
    ? {
        stable: { host: stableHost, subset: split.stableSubset },
        canary: { host: stableHost, subset: split.canarySubset },
      }
    : { stable: { host: split.stableHost }, canary: { host: split.canaryHost } };
}

/**
 * Subset mode: one host, and the DestinationRule Istio would apply must define both subsets; the
 * versions' labels are the host's selector plus each subset's labels.
 */
async function resolveSubsets(
  ctx: LookupContext,
  split: Extract<Split, { mode: "subset" }>,
  stableHost: string,
  problems: string[],
): Promise<ResolvedVersions> {
  const stable = await resolveOrReport(ctx, stableHost, problems);
  const found: ResolvedVersions = { stable, canary: stable, stableLabels: {}, canaryLabels: {} };
  if (!stable) return found;
  const lookup = await findDestinationRule(ctx, stable.fqdn, stable.namespace);
  const rule = lookup.rule;
  const readable = lookup.searched.filter((ns) => !lookup.unreadable.includes(ns));
  if (!rule && lookup.unreadable.length > 0) {
    // Usually the root namespace under a namespace-scoped Role: the rule may well be there.
    ctx.warnings.push(
      `no DestinationRule for host ${stableHost} in ${readable.join(", ") || "any namespace the action may read"}, and ${lookup.unreadable.join(", ")} could not be read: the subsets ${split.stableSubset} and ${split.canarySubset} and the canary's pods are not checked (a missing subset is a 503), and the analysis needs canary-selector and stable-selector`,
    );
  } else if (!rule) {
    problems.push(
      `no DestinationRule for host ${stableHost} in namespace ${ctx.clientNamespace}: none in ${lookup.searched.join(", ")} applies to it (Istio looks in the VirtualService's namespace, the service's, then the root namespace ${ctx.rootNamespace}, honouring exportTo); without one the subsets ${split.stableSubset} and ${split.canarySubset} do not exist and Istio answers 503 Service Unavailable`,
    );
  } else {
    found.destinationRule = rule.names.join(", ");
    const defined = rule.subsets.map((s) => s.name);
    for (const subset of [split.stableSubset, split.canarySubset]) {
      if (!defined.includes(subset)) {
        problems.push(
          `DestinationRule ${found.destinationRule} has no subset "${subset}" (it defines ${defined.join(", ") || "none"}): traffic sent to it would get 503 Service Unavailable`,
        );
      }
    }
    const labelsOf = (subset: string) => rule.subsets.find((s) => s.name === subset)?.labels ?? {};
    found.stableLabels = { ...stable.selector, ...labelsOf(split.stableSubset) };
    found.canaryLabels = { ...stable.selector, ...labelsOf(split.canarySubset) };
  }
  return found;
}

/** Host mode: two hosts, each version's labels its host's selector. */
export async function resolveHosts(
  ctx: LookupContext,
  split: Extract<Split, { mode: "host" }>,
  problems: string[],
): Promise<ResolvedVersions> {
  // One after the other: each may add a warning, and the messages keep their order.
  const stable = await resolveOrReport(ctx, split.stableHost, problems, "stable-host");
  const canary = await resolveOrReport(ctx, split.canaryHost, problems, "canary-host");
  if (canary && Object.keys(canary.selector).length === 0)
    problems.push(`${canary.source} (the canary host ${split.canaryHost}) has no selector: no pods to check`);
  return { stable, canary, stableLabels: stable?.selector ?? {}, canaryLabels: canary?.selector ?? {} };
}
