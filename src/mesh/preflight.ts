/**
 * Checks before any write that the mesh can take the rollout: the VirtualService exists and its
 * managed routes route to stable with weights summing to 100; the DestinationRule defines both
 * subsets (a missing one is Istio's "503 Service Unavailable"); the canary's pods exist, are ready
 * and carry the istio-proxy sidecar (READY 2/2) and are not stable's pods too; the namespace enables
 * injection; no tcp or tls route sends traffic to the stable host (only http routes are shifted).
 * Every problem is reported at once, one line each.
 */

import { MeshError } from "./errors.ts";
import type { MeshApi } from "./kubernetes.ts";
import { describeRoute, findManagedRoutes, type ManagedRoute, sameHost, type Target } from "./routes.ts";
import type { Split } from "./split.ts";
import type { DestinationRule, HttpRoute, PodSummary, VirtualService } from "./types.ts";

export interface PreflightResult {
  virtualService: VirtualService;
  managed: ManagedRoute[];
  /** Pod labels that identify each version (subset labels, or the Service's selector). */
  stableLabels: Record<string, string>;
  canaryLabels: Record<string, string>;
  /** Destination service name and namespace, as Istio's metrics label them. */
  stableService: { name: string; namespace: string };
  canaryService: { name: string; namespace: string };
  warnings: string[];
}

export class PreflightError extends Error {
  readonly problems: string[];
  constructor(where: string, problems: string[]) {
    super(`Preflight of ${where} failed: ${problems.join("; ")}`);
    this.name = "PreflightError";
    this.problems = problems;
  }
}

/** `reviews.prod.svc.cluster.local` -> { name: reviews, namespace: prod }; a short name is in `namespace`. */
export function serviceOf(host: string, namespace: string): { name: string; namespace: string } {
  const [name, ns] = host.split(".");
  return { name: name as string, namespace: ns ?? namespace };
}

const selector = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

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

/** Canary pods that the stable version's labels select too. */
function sharedPods(canaryPods: readonly PodSummary[], stablePods: readonly PodSummary[]): string[] {
  const stable = new Set(stablePods.map((p) => p.name));
  return canaryPods.filter((p) => stable.has(p.name)).map((p) => p.name);
}

export async function preflight(
  api: MeshApi,
  namespace: string,
  name: string,
  split: Split,
  target: Target,
  routes: readonly string[],
  signal?: AbortSignal,
): Promise<PreflightResult> {
  const where = `VirtualService ${namespace}/${name}`;
  const vs = await api.getVirtualService(namespace, name, signal);
  const managed = findManagedRoutes(vs, target, routes);
  const problems: string[] = [];
  const warnings: string[] = [];

  for (const m of managed) {
    const route = vs.spec.http?.[m.index] as HttpRoute;
    const destinations = route.route ?? [];
    if (destinations.length > 1) {
      const total = destinations.reduce((s, d) => s + (d.weight ?? 0), 0);
      if (total !== 100)
        problems.push(`${describeRoute(route, m.index)} has weights summing to ${total}, not 100`);
    }
  }

  const firstRoute = vs.spec.http?.[managed[0]?.index ?? 0];
  const stableHost = firstRoute?.route?.[managed[0]?.stableIndex ?? 0]?.destination.host ?? "";
  let stableLabels: Record<string, string> = {};
  let canaryLabels: Record<string, string> = {};
  let stableService = serviceOf(stableHost, namespace);
  let canaryService = stableService;

  const otherProtocols = nonHttpRoutesToStable(vs, stableHost, namespace);
  if (otherProtocols.length > 0) {
    problems.push(
      `${where} also has ${otherProtocols.join(", ")} sending traffic to the stable host ${stableHost}: only http routes are shifted, so that traffic would stay on stable after the canary is promoted; move these routes to a VirtualService of their own`,
    );
  }

  if (split.mode === "subset") {
    const hostNamespace = serviceOf(stableHost, namespace).namespace;
    const rules = await api.listDestinationRules(hostNamespace, signal);
    const rule = rules.find((r: DestinationRule) => sameHost(r.spec.host, stableHost, hostNamespace));
    if (!rule) {
      problems.push(
        `no DestinationRule for host ${stableHost} in namespace ${hostNamespace}: without one the subsets ${split.stableSubset} and ${split.canarySubset} do not exist and Istio answers 503 Service Unavailable`,
      );
    } else {
      const subsets = rule.spec.subsets ?? [];
      const defined = subsets.map((s) => s.name);
      for (const subset of [split.stableSubset, split.canarySubset]) {
        if (!defined.includes(subset)) {
          problems.push(
            `DestinationRule ${hostNamespace}/${rule.metadata.name} has no subset "${subset}" (it defines ${defined.join(", ") || "none"}): traffic sent to it would get 503 Service Unavailable`,
          );
        }
      }
      stableLabels = subsets.find((s) => s.name === split.stableSubset)?.labels ?? {};
      canaryLabels = subsets.find((s) => s.name === split.canarySubset)?.labels ?? {};
    }
    const serviceSelector = await api.getServiceSelector(stableService.namespace, stableService.name, signal);
    if (serviceSelector) {
      stableLabels = { ...serviceSelector, ...stableLabels };
      canaryLabels = { ...serviceSelector, ...canaryLabels };
    }
  } else {
    stableService = serviceOf(split.stableHost, namespace);
    canaryService = serviceOf(split.canaryHost, namespace);
    const [stableSelector, canarySelector] = await Promise.all([
      api.getServiceSelector(stableService.namespace, stableService.name, signal),
      api.getServiceSelector(canaryService.namespace, canaryService.name, signal),
    ]);
    if (!canarySelector)
      problems.push(
        `Service ${canaryService.namespace}/${canaryService.name} (the canary host) not found or has no selector`,
      );
    stableLabels = stableSelector ?? {};
    canaryLabels = canarySelector ?? {};
  }

  if (Object.keys(canaryLabels).length > 0) {
    const pods = await api.listPods(canaryService.namespace, selector(canaryLabels), signal);
    const labels = `{${selector(canaryLabels)}}`;
    if (pods.length === 0) {
      problems.push(
        `no canary pods match ${labels} in namespace ${canaryService.namespace}: deploy the canary before shifting traffic to it`,
      );
    } else {
      const withoutSidecar = pods.filter((p) => !p.hasSidecar);
      const ready = pods.filter((p) => p.ready && p.hasSidecar);
      if (withoutSidecar.length > 0) {
        problems.push(
          `sidecar not injected or not ready: canary pod${withoutSidecar.length > 1 ? "s" : ""} ${withoutSidecar.map((p) => `${p.name} (containers: ${p.containers.join(", ")})`).join(", ")} ha${withoutSidecar.length > 1 ? "ve" : "s"} no istio-proxy container`,
        );
      } else if (ready.length === 0) {
        problems.push(
          `sidecar not injected or not ready: no canary pod matching ${labels} is READY ${pods[0]?.containers.length}/${pods[0]?.containers.length} (${pods.map((p) => p.name).join(", ")})`,
        );
      }
      if (Object.keys(stableLabels).length > 0 && stableService.namespace === canaryService.namespace) {
        const stablePods = await api.listPods(stableService.namespace, selector(stableLabels), signal);
        const shared = sharedPods(pods, stablePods);
        if (shared.length > 0) {
          problems.push(
            `the canary and stable share pod${shared.length > 1 ? "s" : ""} ${shared.join(", ")}: selected by both the canary's labels ${labels} and stable's {${selector(stableLabels)}}, so the canary would be judged on stable's traffic; give each version labels (or a Service) that select its own pods alone`,
          );
        }
      }
      let injection: boolean | undefined;
      try {
        const nsLabels = await api.getNamespaceLabels(canaryService.namespace, signal);
        injection = nsLabels["istio-injection"] === "enabled" || nsLabels["istio.io/rev"] !== undefined;
      } catch (error) {
        if (!(error instanceof MeshError) || error.status !== 403) throw error;
        warnings.push(
          `could not read namespace ${canaryService.namespace} to check its injection label (forbidden)`,
        );
      }
      if (injection === false) {
        const note = `namespace ${canaryService.namespace} does not enable sidecar injection (label it istio-injection=enabled or istio.io/rev=<revision>)`;
        if (withoutSidecar.length > 0) problems.push(note);
        else warnings.push(`${note}; the canary pods have their sidecar anyway`);
      }
    }
  }

  if (problems.length > 0) throw new PreflightError(where, problems);
  return { virtualService: vs, managed, stableLabels, canaryLabels, stableService, canaryService, warnings };
}
