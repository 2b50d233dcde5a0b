/**
 * The runbook on the Gateway API: the versions as two Services (`backend-v1`, `backend-v2`, each
 * selecting its version's pods, beside `backend` selecting both), and an HTTPRoute `shop/backend`
 * whose one rule sends everything to `backend-v1`, attached either to the ingress Gateway
 * `istio-ingress/gateway` (class istio, host shop.example.com) or, for the mesh, to the Service
 * `backend` (GAMMA). The runbook's VirtualService is removed: the HTTPRoute alone routes.
 */
import { NAMESPACE, SERVICE, seedRunbook } from "./fixtures.ts";
import type { KubeApiEmulator, KubeObject } from "./kube-api.ts";
import type { TrafficFlow } from "./traffic.ts";

export const GATEWAY_NAMESPACE = "istio-ingress";
export const GATEWAY = "gateway";
export const GATEWAY_HOST = "shop.example.com";
export const STABLE_SERVICE = `${SERVICE}-v1`;
export const CANARY_SERVICE = `${SERVICE}-v2`;

export type Attachment = "gateway" | "service";

export function httpRoute(
  attach: Attachment,
  overrides: Record<string, unknown> = {},
): KubeObject & { spec: Record<string, unknown> } {
  const parentRefs =
    attach === "gateway"
      ? [{ name: GATEWAY, namespace: GATEWAY_NAMESPACE }]
      : [{ group: "", kind: "Service", name: SERVICE, port: 8080 }];
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name: SERVICE, namespace: NAMESPACE },
    spec: {
      parentRefs,
      ...(attach === "gateway" ? { hostnames: [GATEWAY_HOST] } : {}),
      rules: [{ name: "primary", backendRefs: [{ name: STABLE_SERVICE, port: 8080 }] }],
      ...overrides,
    },
  };
}

/** The runbook with the HTTPRoute attached as `attach` says. */
export function seedHttpRouteRunbook(
  kube: KubeApiEmulator,
  attach: Attachment,
  route = httpRoute(attach),
): void {
  seedRunbook(kube);
  kube.remove("virtualservices", NAMESPACE, SERVICE);
  for (const version of ["v1", "v2"])
    kube.seed("services", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: `${SERVICE}-${version}`, namespace: NAMESPACE, labels: { app: SERVICE } },
      spec: { selector: { app: SERVICE, version }, ports: [{ name: "http", port: 8080, targetPort: 8080 }] },
    });
  kube.seed("namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: GATEWAY_NAMESPACE } });
  kube.seed("gateways", {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: GATEWAY, namespace: GATEWAY_NAMESPACE },
    spec: {
      gatewayClassName: "istio",
      listeners: [
        { name: "http", port: 80, protocol: "HTTP", allowedRoutes: { namespaces: { from: "All" } } },
      ],
    },
  });
  kube.seed("httproutes", route);
}

/** The callers: through the ingress Gateway, or inside the mesh to the Service `backend`. */
export function httpRouteTraffic(attach: Attachment): TrafficFlow[] {
  return attach === "gateway"
    ? [{ source: `${GATEWAY_NAMESPACE}/${GATEWAY}`, host: GATEWAY_HOST, share: 1 }]
    : [{ source: "mesh", host: SERVICE, clientNamespace: NAMESPACE, share: 1 }];
}

/** The managed rule's backendRefs now: `[{ name, weight }]`. */
export function backendWeights(kube: KubeApiEmulator): Array<{ name: string; weight?: number }> {
  const route = kube.get("httproutes", NAMESPACE, SERVICE);
  const rules = (
    route?.spec as { rules?: Array<{ backendRefs?: Array<{ name: string; weight?: number }> }> } | undefined
  )?.rules;
  return (rules?.[0]?.backendRefs ?? []).map((r) => ({ name: r.name, weight: r.weight }));
}
