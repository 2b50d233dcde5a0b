/** What a pod runs, as both the mesh's preflight (src/mesh/kubernetes.ts) and the Deployments' readiness (src/workloads/) read it. */
import type * as k8s from "@kubernetes/client-node";
import type { PodSummary } from "./types.ts";

/**
 * The statuses of a pod's long-running containers: its containers, and the istio-proxy when Istio
 * runs it as a native sidecar (a restartable init container).
 */
export function runningContainerStatuses<S extends { name: string }>(pod: {
  spec?: { initContainers?: Array<{ name: string; restartPolicy?: string }> };
  status?: { containerStatuses?: S[]; initContainerStatuses?: S[] };
}): S[] {
  const nativeSidecar = (pod.spec?.initContainers ?? []).some(
    (c) => c.name === "istio-proxy" && c.restartPolicy === "Always",
  );
  return [
    ...(pod.status?.containerStatuses ?? []),
    ...(nativeSidecar
      ? (pod.status?.initContainerStatuses ?? []).filter((s) => s.name === "istio-proxy")
      : []),
  ];
}

/**
 * Whether ztunnel carries a pod by the pod's own marks (ambient mode): istio-cni's capture
 * annotation, or the pod's `istio.io/dataplane-mode: ambient`; never when the pod opts out with
 * `none`. The namespace's label is the mesh preflight's to add (src/mesh/ambient.ts, podDataplane).
 */
export function capturedByZtunnel(metadata?: {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}): boolean {
  const mode = metadata?.labels?.["istio.io/dataplane-mode"];
  if (mode === "none") return false;
  return mode === "ambient" || metadata?.annotations?.["ambient.istio.io/redirection"] === "enabled";
}

/**
 * READY 2/2 as kubectl shows it: every container ready, and an `istio-proxy` sidecar, either a
 * regular container or (Istio's native sidecars) a restartable init container.
 */
export function summarisePod(pod: k8s.V1Pod): PodSummary {
  const containers = (pod.spec?.containers ?? []).map((c) => c.name);
  const statuses = runningContainerStatuses(pod);
  const nativeSidecar = (pod.spec?.initContainers ?? []).some(
    (c) => c.name === "istio-proxy" && c.restartPolicy === "Always",
  );
  const podReady = (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
  return {
    name: pod.metadata?.name ?? "",
    containers: nativeSidecar ? [...containers, "istio-proxy"] : containers,
    hasSidecar: containers.includes("istio-proxy") || nativeSidecar,
    dataplaneLabel: pod.metadata?.labels?.["istio.io/dataplane-mode"],
    // istio-cni sets it on each pod ztunnel captures (ambient).
    ambientRedirected: pod.metadata?.annotations?.["ambient.istio.io/redirection"] === "enabled",
    ready: podReady && statuses.length > 0 && statuses.every((s) => s.ready),
  };
}
