/** What a pod runs, as both the mesh's preflight (src/mesh/kubernetes.ts) and the Deployments' readiness (src/workloads/) read it. */

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
