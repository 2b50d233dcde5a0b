/**
 * The runbook's objects (namespace shop, Service backend, Deployments backend-v1/backend-v2 selected
 * by DestinationRule subsets v1/v2, a VirtualService at 100 % v1), as the emulator stores them.
 */
import type { KubeApiEmulator, KubeObject } from "./kube-api.ts";

export const NAMESPACE = "shop";
export const SERVICE = "backend";
export const HOST = "backend";

export function virtualService(overrides: Partial<KubeObject> = {}): KubeObject {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: SERVICE, namespace: NAMESPACE },
    spec: {
      hosts: [HOST],
      http: [{ name: "primary", route: [{ destination: { host: HOST, subset: "v1" }, weight: 100 }] }],
    },
    ...overrides,
  } as KubeObject;
}

export function destinationRule(subsets = ["v1", "v2"]): KubeObject {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "DestinationRule",
    metadata: { name: SERVICE, namespace: NAMESPACE },
    spec: {
      host: HOST,
      trafficPolicy: {
        connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 100 } },
        outlierDetection: { consecutive5xxErrors: 5, interval: "10s", baseEjectionTime: "30s" },
      },
      subsets: subsets.map((s) => ({ name: s, labels: { version: s } })),
    },
  } as KubeObject;
}

export interface PodOptions {
  version: string;
  ready?: boolean;
  sidecar?: boolean;
  index?: number;
}

export function pod({ version, ready = true, sidecar = true, index = 0 }: PodOptions): KubeObject {
  const name = `${SERVICE}-${version}-7d9c8b${index}f5-x${index}k2p`;
  const containers = [{ name: SERVICE, image: `registry.example/${SERVICE}:${version}` }];
  if (sidecar) containers.push({ name: "istio-proxy", image: "docker.io/istio/proxyv2:1.24.0" });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: NAMESPACE,
      labels: {
        app: SERVICE,
        version,
        "pod-template-hash": `7d9c8b${index}f5`,
        ...(sidecar
          ? {
              "security.istio.io/tlsMode": "istio",
              "service.istio.io/canonical-name": SERVICE,
              "service.istio.io/canonical-revision": version,
            }
          : {}),
      },
    },
    spec: { containers },
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
      containerStatuses: containers.map((c) => ({
        name: c.name,
        ready,
        started: true,
        restartCount: 0,
        image: c.image,
      })),
    },
  } as KubeObject;
}

/** Seeds the runbook: injection-enabled namespace, DestinationRule, VirtualService, ready pods. */
export function seedRunbook(
  kube: KubeApiEmulator,
  options: { injection?: boolean; canaryReady?: boolean; canarySidecar?: boolean } = {},
): void {
  kube.seed("namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: NAMESPACE,
      labels: options.injection === false ? {} : { "istio-injection": "enabled" },
    },
  });
  kube.seed("services", {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: SERVICE, namespace: NAMESPACE, labels: { app: SERVICE } },
    spec: { selector: { app: SERVICE }, ports: [{ name: "http", port: 8080, targetPort: 8080 }] },
  });
  kube.seed("destinationrules", destinationRule());
  kube.seed("virtualservices", virtualService());
  kube.seed("pods", pod({ version: "v1" }));
  kube.seed(
    "pods",
    pod({ version: "v2", ready: options.canaryReady ?? true, sidecar: options.canarySidecar ?? true }),
  );
}

/** The emulator's resource for each kind a fixture may hold. */
const RESOURCE_OF_KIND: Record<string, string> = {
  Namespace: "namespaces",
  Service: "services",
  Pod: "pods",
  DestinationRule: "destinationrules",
  VirtualService: "virtualservices",
  ServiceEntry: "serviceentries",
  Gateway: "gateways",
  HTTPRoute: "httproutes",
};

/**
 * Seeds any objects (each with its namespace, `default` when it has none). Kinds the emulator does
 * not serve (a Gateway: the action never reads one; a ServiceEntry before the emulator serves
 * them) are skipped and returned, so a caller can say what the cluster lacks.
 */
export function seedObjects(kube: KubeApiEmulator, objects: readonly KubeObject[]): string[] {
  const skipped: string[] = [];
  for (const object of objects) {
    const kind = String(object.kind);
    // Istio's own Gateway (networking.istio.io) is not the Gateway API's, which the emulator serves.
    const istioGateway =
      kind === "Gateway" && !String(object.apiVersion).startsWith("gateway.networking.k8s.io/");
    const resource = istioGateway ? undefined : RESOURCE_OF_KIND[kind];
    const namespaced = kind === "Namespace" ? {} : { namespace: object.metadata.namespace ?? "default" };
    try {
      if (!resource) throw new Error(`no resource for ${kind}`);
      kube.seed(resource, { ...object, metadata: { ...object.metadata, ...namespaced } });
    } catch {
      skipped.push(`${kind} ${object.metadata.namespace ?? "default"}/${object.metadata.name}`);
    }
  }
  return skipped;
}

/** A ready pod with its istio-proxy sidecar (READY 2/2), as a Deployment's ReplicaSet would run it. */
export function meshPod(name: string, namespace: string, labels: Record<string, string>): KubeObject {
  const containers = [
    { name: "app", image: `registry.example/${name}` },
    { name: "istio-proxy", image: "docker.io/istio/proxyv2:1.24.0" },
  ];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { ...labels, "security.istio.io/tlsMode": "istio" } },
    spec: { containers },
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: "True" }],
      containerStatuses: containers.map((c) => ({
        name: c.name,
        ready: true,
        started: true,
        image: c.image,
      })),
    },
  } as KubeObject;
}
