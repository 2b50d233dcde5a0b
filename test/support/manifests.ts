/** Loads manifests/ and seeds them into the Kubernetes API emulator as a cluster with Istio would hold them. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import type { KubeApiEmulator, KubeObject } from "../mesh/kube-api.ts";

export const MANIFESTS = join(import.meta.dirname, "../../manifests");

export interface ManifestDoc {
  file: string;
  object: KubeObject & { apiVersion: string; kind: string; spec?: Record<string, unknown> };
}

export function loadManifests(): ManifestDoc[] {
  return readdirSync(MANIFESTS)
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .flatMap((file) =>
      loadAll(readFileSync(join(MANIFESTS, file), "utf8"), { filename: file }).map((d) => ({
        file,
        object: d as ManifestDoc["object"],
      })),
    );
}

const RESOURCE: Record<string, string> = {
  Namespace: "namespaces",
  Service: "services",
  DestinationRule: "destinationrules",
  VirtualService: "virtualservices",
};

/**
 * Seeds what the emulator serves (namespace, Service, Istio objects) and, for each Deployment, the
 * pods its ReplicaSet would run, with the istio-proxy sidecar that injection adds, ready (2/2).
 */
export function seedManifests(kube: KubeApiEmulator): void {
  for (const { object } of loadManifests()) {
    const resource = RESOURCE[object.kind];
    if (resource) kube.seed(resource, object);
    if (object.kind === "Deployment") {
      const spec = object.spec as {
        replicas?: number;
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: Array<{ name: string; image: string }> };
        };
      };
      for (let i = 0; i < (spec.replicas ?? 1); i++) {
        const containers = [
          ...spec.template.spec.containers.map((c) => ({ name: c.name, image: c.image })),
          { name: "istio-proxy", image: "docker.io/istio/proxyv2:1.24.0" },
        ];
        kube.seed("pods", {
          apiVersion: "v1",
          kind: "Pod",
          metadata: {
            name: `${object.metadata.name}-5d8f7c${i}-x${i}`,
            namespace: object.metadata.namespace,
            labels: { ...spec.template.metadata.labels, "security.istio.io/tlsMode": "istio" },
          },
          spec: { containers },
          status: {
            phase: "Running",
            conditions: [{ type: "Ready", status: "True" }],
            containerStatuses: containers.map((c) => ({ name: c.name, ready: true, image: c.image })),
          },
        });
      }
    }
  }
}
