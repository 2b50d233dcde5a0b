/**
 * What the demo shows of the cluster between runs, read from the Kubernetes API emulator as
 * `kubectl get` would show it: which image each version's Deployment runs with how many ready
 * pods, and the VirtualService's weights.
 */
import { NAMESPACE, SERVICE } from "../test/mesh/fixtures.ts";
import type { Mesh } from "../test/mesh/index.ts";
import type { KubeObject } from "../test/mesh/kube-api.ts";

export const STABLE_DEPLOYMENT = `${SERVICE}-v1`;
export const CANARY_DEPLOYMENT = `${SERVICE}-v2`;

interface DeploymentSpec {
  replicas?: number;
  template: { spec: { containers: Array<{ name: string; image: string }> } };
}

export interface DeploymentView {
  image: string;
  replicas: number;
  ready: number;
}

const isReady = (pod: KubeObject): boolean =>
  (
    (pod.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? []
  ).some((c) => c.type === "Ready" && c.status === "True");

export function deployment(mesh: Mesh, name: string): DeploymentView {
  const spec = mesh.kube.get("deployments", NAMESPACE, name)?.spec as DeploymentSpec | undefined;
  return {
    image: spec?.template.spec.containers[0]?.image ?? "(none)",
    replicas: spec?.replicas ?? 0,
    ready: (mesh.apps?.pods(NAMESPACE, name) ?? []).filter(isReady).length,
  };
}

/** What a deploy workflow does before it runs the action: `kubectl set image` on the canary Deployment. */
export function setCanaryImage(mesh: Mesh, image: string): void {
  mesh.apps?.edit(NAMESPACE, CANARY_DEPLOYMENT, (d) => {
    const [container] = (d.spec as DeploymentSpec).template.spec.containers;
    if (container) container.image = image;
  });
}

interface HttpRoute {
  name?: string;
  route: Array<{ destination: { host: string; subset?: string }; weight?: number }>;
}

/** Each http route's weights: "route primary: v1 100 %" or "route primary: v1 90 %, v2 10 %". */
export function routeLines(mesh: Mesh): string[] {
  const vs = mesh.kube.get("virtualservices", NAMESPACE, SERVICE);
  const http = ((vs?.spec ?? {}) as { http?: HttpRoute[] }).http ?? [];
  return http.map(
    (r) =>
      `route ${r.name ?? "(unnamed)"}: ${r.route
        .map((d) => `${d.destination.subset ?? d.destination.host} ${d.weight ?? 100} %`)
        .join(", ")}`,
  );
}

/** The cluster in a few lines: both Deployments and the weights. */
export function clusterLines(mesh: Mesh): string[] {
  const line = (name: string, role: string) => {
    const d = deployment(mesh, name);
    return `Deployment ${name} (${role}): ${d.image}, ${d.ready} of ${d.replicas} pods ready`;
  };
  return [
    line(STABLE_DEPLOYMENT, "stable"),
    line(CANARY_DEPLOYMENT, "canary"),
    ...routeLines(mesh).map((r) => `VirtualService ${SERVICE}, ${r}`),
  ];
}
