/**
 * Preflight's checks of the canary's pods: they exist and are not stable's pods too; in sidecar
 * mode they are ready with the istio-proxy sidecar (READY 2/2) and their namespace enables
 * injection; in ambient mode (src/mesh/ambient.ts) they are ready and a waypoint serves their
 * Services. Problems and warnings are appended in the order a reader fixes them.
 */
import {
  checkWaypoints,
  DATAPLANE_MODE_LABEL,
  podDataplane,
  type ServiceRef,
  type WaypointRef,
} from "./ambient.ts";
import { forbiddenAsWarning } from "./errors.ts";
import type { ResolvedHost } from "./istio-lookup.ts";
import { labelSelector, type MeshApi } from "./kubernetes.ts";
import type { PodSummary } from "./types.ts";

/** The versions as preflight resolved them, with the canary's pods' namespace. */
export interface PodCheckInput {
  stable?: ResolvedHost;
  canary: ResolvedHost;
  canaryNamespace: string;
  stableLabels: Record<string, string>;
  canaryLabels: Record<string, string>;
  /** The Services the routes split (stable's and canary's): in ambient, each needs a waypoint. */
  services: ServiceRef[];
  /**
   * Ambient only, read then: the waypoints the route is attached to directly and the Services
   * that still need one (replacing `services`).
   */
  ambientTargets?: () => Promise<{ services: ServiceRef[]; waypoints: WaypointRef[] }>;
}

/** Canary pods that the stable version's labels select too. */
function sharedPods(canaryPods: readonly PodSummary[], stablePods: readonly PodSummary[]): string[] {
  const stable = new Set(stablePods.map((p) => p.name));
  return canaryPods.filter((p) => stable.has(p.name)).map((p) => p.name);
}

/** What the pod check found: the canary's data plane, and in ambient the waypoints that serve it. */
export interface PodCheck {
  dataplane: "sidecar" | "ambient";
  waypoints: string[];
  /** Ambient: whether ingress gateways send the Services' requests through their waypoint. */
  ingressUsesWaypoint?: boolean;
}

export async function checkCanaryPods(
  api: MeshApi,
  versions: PodCheckInput,
  problems: string[],
  warnings: string[],
  signal?: AbortSignal,
): Promise<PodCheck> {
  const { canaryNamespace, canaryLabels } = versions;
  const pods = await api.listPods(canaryNamespace, labelSelector(canaryLabels), signal);
  const labels = `{${labelSelector(canaryLabels)}}`;
  const sidecar: PodCheck = { dataplane: "sidecar", waypoints: [] };
  if (pods.length === 0) {
    problems.push(
      `no canary pods match ${labels} in namespace ${canaryNamespace}: deploy the canary before shifting traffic to it`,
    );
    return sidecar;
  }
  const namespaceLabels = await readNamespaceLabels(api, canaryNamespace, warnings, signal);
  const ambient = pods.filter((p) => podDataplane(p, namespaceLabels ?? {}) === "ambient");
  if (ambient.length === 0) checkSidecars(pods, labels, problems);
  else checkAmbientPods(pods, ambient, labels, problems);
  const shared = await podsSharedWithStable(api, versions, pods, signal);
  if (shared.length > 0) {
    problems.push(
      `the canary and stable share pod${shared.length > 1 ? "s" : ""} ${shared.join(", ")}: selected by both the canary's labels ${labels} and stable's {${labelSelector(versions.stableLabels)}}, so the canary would be judged on stable's traffic; give each version labels (or a Service) that select its own pods alone`,
    );
  }
  if (ambient.length === 0) {
    checkInjection(canaryNamespace, namespaceLabels, pods, problems, warnings);
    return sidecar;
  }
  const targets = (await versions.ambientTargets?.()) ?? { services: versions.services, waypoints: [] };
  const check = await checkWaypoints(api, targets.services, signal, targets.waypoints);
  problems.push(...check.problems);
  warnings.push(...check.warnings);
  return { dataplane: "ambient", waypoints: check.waypoints, ingressUsesWaypoint: check.ingressUsesWaypoint };
}

/** Ambient mode: every canary pod in ambient, and one ready (no istio-proxy to wait for: ztunnel captures it). */
function checkAmbientPods(
  pods: readonly PodSummary[],
  ambient: readonly PodSummary[],
  labels: string,
  problems: string[],
): void {
  if (ambient.length < pods.length) {
    const others = pods.filter((p) => !ambient.includes(p)).map((p) => p.name);
    problems.push(
      `the canary's pods mix data planes: ${ambient.map((p) => p.name).join(", ")} in ambient mode, ${others.join(", ")} not (a sidecar, or ${DATAPLANE_MODE_LABEL}=none): every pod of a version must be served alike for its metrics to be whole`,
    );
  }
  if (!ambient.some((p) => p.ready))
    problems.push(
      `no canary pod matching ${labels} is ready (ambient mode: every container ready) (${ambient.map((p) => p.name).join(", ")})`,
    );
}

/** Sidecar mode: every canary pod has its istio-proxy, and one is READY n/n. */
function checkSidecars(pods: readonly PodSummary[], labels: string, problems: string[]): void {
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
}

/** Sidecar mode: the namespace enables injection (a problem when pods lack their sidecar, else a warning). */
function checkInjection(
  namespace: string,
  namespaceLabels: Record<string, string> | undefined,
  pods: readonly PodSummary[],
  problems: string[],
  warnings: string[],
): void {
  if (namespaceLabels === undefined) return;
  if (namespaceLabels["istio-injection"] === "enabled" || namespaceLabels["istio.io/rev"] !== undefined)
    return;
  const note = `namespace ${namespace} does not enable sidecar injection (label it istio-injection=enabled or istio.io/rev=<revision>, or run it in ambient mode with ${DATAPLANE_MODE_LABEL}=ambient and a waypoint)`;
  if (pods.some((p) => !p.hasSidecar)) problems.push(note);
  else warnings.push(`${note}; the canary pods have their sidecar anyway`);
}

/** The canary's pods that stable's labels select too (checked only within one namespace). */
async function podsSharedWithStable(
  api: MeshApi,
  { stable, stableLabels, canaryNamespace }: PodCheckInput,
  canaryPods: readonly PodSummary[],
  signal?: AbortSignal,
): Promise<string[]> {
  if (!stable || Object.keys(stableLabels).length === 0 || stable.namespace !== canaryNamespace) return [];
  const stablePods = await api.listPods(stable.namespace, labelSelector(stableLabels), signal);
  return sharedPods(canaryPods, stablePods);
}

/** The namespace's labels; undefined when the action may not read it (a warning). */
async function readNamespaceLabels(
  api: MeshApi,
  namespace: string,
  warnings: string[],
  signal?: AbortSignal,
): Promise<Record<string, string> | undefined> {
  return forbiddenAsWarning(
    () => api.getNamespaceLabels(namespace, signal),
    warnings,
    `could not read namespace ${namespace} to check its injection or ambient label (forbidden)`,
    undefined,
  );
}
