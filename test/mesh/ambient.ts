/**
 * Istio's ambient mode in the local mesh: a namespace labelled `istio.io/dataplane-mode=ambient`,
 * pods without sidecars that istio-cni marks captured (`ambient.istio.io/redirection: enabled`), and
 * a waypoint (a Gateway API Gateway of class `istio-waypoint`, programmed, with its pod labelled
 * `gateway.networking.k8s.io/gateway-name`) that Services use through `istio.io/use-waypoint`.
 *
 * For the traffic simulator, `waypointServing` says whether a request to a Service passes a waypoint,
 * as Istio decides it (the Service's label, else its namespace's; `none` opts out; the waypoint's
 * Gateway programmed). Only then are L7 metrics reported, by the waypoint, with
 * `reporter="waypoint"` and `destination_version="unknown"` (istio/proxy's istio_stats: the
 * endpoint's workload metadata carries no app version), the version in
 * `destination_canonical_revision`.
 */
import { destinationRule, NAMESPACE, SERVICE, virtualService } from "./fixtures.ts";
import type { KubeApiEmulator, KubeObject } from "./kube-api.ts";

export const WAYPOINT = "waypoint";

/** A waypoint as `istioctl waypoint apply -n <ns>` creates it, with the status Istio writes once it runs. */
export function waypointGateway(
  namespace: string,
  name = WAYPOINT,
  options: { programmed?: boolean; waypointFor?: string } = {},
): KubeObject {
  const programmed = options.programmed ?? true;
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: {
      name,
      namespace,
      labels: { "istio.io/waypoint-for": options.waypointFor ?? "service" },
    },
    spec: {
      gatewayClassName: "istio-waypoint",
      listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
    },
    status: {
      conditions: [
        { type: "Accepted", status: "True", reason: "Accepted" },
        programmed
          ? { type: "Programmed", status: "True", reason: "Programmed" }
          : {
              type: "Programmed",
              status: "False",
              reason: "Invalid",
              message: "Deployment waypoint has no ready replicas",
            },
      ],
    },
  } as KubeObject;
}

/** A waypoint Gateway from a manifest as the cluster holds it once Istio has deployed it: programmed. */
export function deployedWaypoint(gateway: KubeObject): KubeObject {
  const conditions = (
    waypointGateway(gateway.metadata.namespace ?? "default").status as { conditions: unknown[] }
  ).conditions;
  return { ...gateway, status: { conditions } } as KubeObject;
}

/** The waypoint's Envoy pod, as Istio's gateway controller deploys it. */
export function waypointPod(namespace: string, name = WAYPOINT, ready = true): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `${name}-6c9d8f7b5-w4pt9`,
      namespace,
      labels: {
        "gateway.networking.k8s.io/gateway-name": name,
        "gateway.istio.io/managed": "istio.io-mesh-controller",
      },
    },
    spec: { containers: [{ name: "istio-proxy", image: "docker.io/istio/proxyv2:1.26.0" }] },
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
      containerStatuses: [{ name: "istio-proxy", ready, started: true, restartCount: 0 }],
    },
  } as KubeObject;
}

/** The runbook's version `version` as a pod in ambient mode. */
export function ambientPod(version: string, options: { ready?: boolean; index?: number } = {}): KubeObject {
  const { ready = true, index = 0 } = options;
  return ambientAppPod(
    `${SERVICE}-${version}-5b7c9d${index}f4-a${index}m2q`,
    NAMESPACE,
    { app: SERVICE, version, "pod-template-hash": `5b7c9d${index}f4` },
    ready,
  );
}

/** A ready application pod in ambient mode: no sidecar, captured by ztunnel (istio-cni's mark). */
export function ambientAppPod(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  ready = true,
): KubeObject {
  const container = { name: labels.app ?? "app", image: `registry.example/${name}` };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels, annotations: { "ambient.istio.io/redirection": "enabled" } },
    spec: { containers: [container] },
    status: {
      phase: "Running",
      conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
      containerStatuses: [
        { name: container.name, ready, started: true, restartCount: 0, image: container.image },
      ],
    },
  } as KubeObject;
}

export interface AmbientRunbookOptions {
  /** Where the waypoint enrolment is: on the namespace (istioctl's --enroll-namespace), the Service, or nowhere. */
  enrol?: "namespace" | "service" | "none";
  programmed?: boolean;
  waypointReady?: boolean;
  waypointFor?: string;
}

/** The runbook (Service backend, subsets v1/v2, VirtualService at 100 % v1) in an ambient namespace. */
export function seedAmbientRunbook(kube: KubeApiEmulator, options: AmbientRunbookOptions = {}): void {
  const enrol = options.enrol ?? "namespace";
  const use = { "istio.io/use-waypoint": WAYPOINT };
  kube.seed("namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: NAMESPACE,
      labels: { "istio.io/dataplane-mode": "ambient", ...(enrol === "namespace" ? use : {}) },
    },
  });
  kube.seed("services", {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: SERVICE,
      namespace: NAMESPACE,
      labels: { app: SERVICE, ...(enrol === "service" ? use : {}) },
    },
    spec: { selector: { app: SERVICE }, ports: [{ name: "http", port: 8080, targetPort: 8080 }] },
  });
  kube.seed("destinationrules", destinationRule());
  kube.seed("virtualservices", virtualService());
  kube.seed("pods", ambientPod("v1"));
  kube.seed("pods", ambientPod("v2"));
  if (enrol !== "none") {
    kube.seed(
      "gateways",
      waypointGateway(NAMESPACE, WAYPOINT, {
        programmed: options.programmed,
        waypointFor: options.waypointFor,
      }),
    );
    kube.seed("pods", waypointPod(NAMESPACE, WAYPOINT, options.waypointReady ?? true));
  }
}

/** Whether requests to the Service pass a programmed waypoint (so the route applies and L7 is reported). */
export function waypointServing(
  kube: KubeApiEmulator,
  service: { name: string; namespace: string },
): boolean {
  const labels = kube.get("services", service.namespace, service.name)?.metadata.labels ?? {};
  const namespaceLabels = kube.get("namespaces", undefined, service.namespace)?.metadata.labels ?? {};
  const own = labels["istio.io/use-waypoint"];
  const source = own ? labels : namespaceLabels;
  const name = own ?? namespaceLabels["istio.io/use-waypoint"];
  if (!name || name === "none") return false;
  const gateway = kube.get("gateways", source["istio.io/use-waypoint-namespace"] || service.namespace, name);
  const conditions = (gateway?.status as { conditions?: Array<{ type: string; status: string }> } | undefined)
    ?.conditions;
  return conditions?.some((c) => c.type === "Programmed" && c.status === "True") ?? false;
}

/** Whether a pod is in ambient mode: no sidecar, and captured (its mark, its label, or its namespace's). */
export function isAmbientPod(kube: KubeApiEmulator, pod: KubeObject): boolean {
  const containers = (pod.spec as { containers?: Array<{ name: string }> } | undefined)?.containers ?? [];
  if (containers.some((c) => c.name === "istio-proxy")) return false;
  const mode = pod.metadata.labels?.["istio.io/dataplane-mode"];
  if (mode === "none") return false;
  if (mode === "ambient" || pod.metadata.annotations?.["ambient.istio.io/redirection"] === "enabled")
    return true;
  const namespace = kube.get("namespaces", undefined, pod.metadata.namespace ?? "default");
  return namespace?.metadata.labels?.["istio.io/dataplane-mode"] === "ambient";
}

/** istio-cni's mark on a new pod without a sidecar in an ambient namespace (unless the pod opts out). */
export function markCapturedByZtunnel(pod: KubeObject, namespaceLabels: Record<string, string>): void {
  const mode = pod.metadata.labels?.["istio.io/dataplane-mode"] ?? namespaceLabels["istio.io/dataplane-mode"];
  if (mode !== "ambient") return;
  pod.metadata.annotations = { ...pod.metadata.annotations, "ambient.istio.io/redirection": "enabled" };
}
