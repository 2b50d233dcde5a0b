/**
 * Preflight's checks of the canary's pods: they exist, are ready with the istio-proxy sidecar
 * (READY 2/2), are not stable's pods too, and their namespace enables injection. Problems and
 * warnings are appended in the order a reader fixes them.
 */
import { MeshError } from "./errors.ts";
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
}

/** Canary pods that the stable version's labels select too. */
function sharedPods(canaryPods: readonly PodSummary[], stablePods: readonly PodSummary[]): string[] {
  const stable = new Set(stablePods.map((p) => p.name));
  return canaryPods.filter((p) => stable.has(p.name)).map((p) => p.name);
}

export async function checkCanaryPods(
  api: MeshApi,
  versions: PodCheckInput,
  problems: string[],
  warnings: string[],
  signal?: AbortSignal,
): Promise<void> {
  const { canaryNamespace, canaryLabels } = versions;
  const pods = await api.listPods(canaryNamespace, labelSelector(canaryLabels), signal);
  const labels = `{${labelSelector(canaryLabels)}}`;
  if (pods.length === 0) {
    problems.push(
      `no canary pods match ${labels} in namespace ${canaryNamespace}: deploy the canary before shifting traffic to it`,
    );
    return;
  }
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
  const shared = await podsSharedWithStable(api, versions, pods, signal);
  if (shared.length > 0) {
    problems.push(
      `the canary and stable share pod${shared.length > 1 ? "s" : ""} ${shared.join(", ")}: selected by both the canary's labels ${labels} and stable's {${labelSelector(versions.stableLabels)}}, so the canary would be judged on stable's traffic; give each version labels (or a Service) that select its own pods alone`,
    );
  }
  const injection = await injectionEnabled(api, canaryNamespace, warnings, signal);
  if (injection === false) {
    const note = `namespace ${canaryNamespace} does not enable sidecar injection (label it istio-injection=enabled or istio.io/rev=<revision>)`;
    if (withoutSidecar.length > 0) problems.push(note);
    else warnings.push(`${note}; the canary pods have their sidecar anyway`);
  }
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

/** Whether the namespace enables injection; undefined when the action may not read it (a warning). */
async function injectionEnabled(
  api: MeshApi,
  namespace: string,
  warnings: string[],
  signal?: AbortSignal,
): Promise<boolean | undefined> {
  try {
    const nsLabels = await api.getNamespaceLabels(namespace, signal);
    return nsLabels["istio-injection"] === "enabled" || nsLabels["istio.io/rev"] !== undefined;
  } catch (error) {
    if (!(error instanceof MeshError) || error.status !== 403) throw error;
    warnings.push(`could not read namespace ${namespace} to check its injection label (forbidden)`);
    return undefined;
  }
}
