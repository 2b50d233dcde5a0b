/**
 * What a user expects of each published VirtualService in fixtures/: the action's inputs they would
 * write, the traffic their mesh carries, and the outcome issue 13 says they should get. These are
 * the user's expectations, not what the code did when they were written: several need features
 * still being built (several VirtualServices in lockstep, Istio's DestinationRule lookup,
 * ServiceEntry hosts, mirrors refused, adopting a split).
 */
import type { TrafficFlow } from "../mesh/traffic.ts";

/** A route the action must manage: VirtualService `namespace/name`, protocol, position. */
export interface ManagedRoute {
  vs: string;
  protocol: "http" | "tcp" | "tls";
  index: number;
}

export type Outcome =
  /** Every managed route ends with the canary at 100 and every flow reaches the canary. */
  | { kind: "promoted"; managed: ManagedRoute[] }
  /** An already-split route: the first write is the next stage above its canary weight; then promoted. */
  | { kind: "continued"; firstWeight: number; managed: ManagedRoute[] }
  /** Refused before any write, with a message that says why. */
  | { kind: "refused"; message: RegExp };

/** A flow of the traffic mix; `movesToCanary: false` for traffic the user expects to stay where it is. */
export type CorpusFlow = TrafficFlow & { movesToCanary?: boolean };

export interface CorpusCase {
  fixture: string;
  /** The shape from issue 13 this fixture stands for. */
  shape: string;
  inputs: Record<string, string>;
  traffic: CorpusFlow[];
  /** One outcome, or several the issue allows (tcp/tls: shifted with http, or refused naming them). */
  outcome: Outcome | Outcome[];
  /** Version labels of stable and canary pods (default v1, v2). */
  versions?: { stable: string; canary: string };
  /** A `::warning::` the user must see (for example that in-mesh callers stay on stable). */
  warns?: RegExp;
  /** A `::warning::` that would be false here (for example the traffic-share warning). */
  neverWarns?: RegExp;
}

/** Finding 7: a gateway-only VirtualService leaves in-mesh callers on stable; the user must be told. */
const MESH_CALLERS_STAY = /mesh[^\n]*stable|stable[^\n]*mesh/i;
/** Finding 8: the traffic-share warning, false when an unmanaged route sends traffic on its own. */
const TRAFFIC_SHARE = /% of requests at weight/;

const http = (vs: string, index = 0): ManagedRoute => ({ vs, protocol: "http", index });
const subsets = (stable: string, canary: string) => ({ "stable-subset": stable, "canary-subset": canary });
const hosts = (stable: string, canary: string) => ({
  "stable-subset": "",
  "canary-subset": "",
  "stable-host": stable,
  "canary-host": canary,
});
const mesh = (host: string, clientNamespace: string, share = 1): CorpusFlow => ({
  source: "mesh",
  host,
  clientNamespace,
  share,
});

export const CORPUS: CorpusCase[] = [
  {
    fixture: "01-bookinfo-reviews-80-20.yaml",
    shape: "already split 80/20: continue from the next stage above 20",
    inputs: {
      "virtual-service": "reviews",
      namespace: "bookinfo",
      ...subsets("v1", "v2"),
      stages: "10,50,100",
    },
    traffic: [mesh("reviews", "bookinfo")],
    outcome: { kind: "continued", firstWeight: 50, managed: [http("bookinfo/reviews")] },
  },
  {
    fixture: "02-bookinfo-reviews-v2-v3-50-50.yaml",
    shape: "already split 50/50 (v2 stable, v3 canary): the next stage is 100",
    inputs: {
      "virtual-service": "reviews",
      namespace: "bookinfo",
      ...subsets("v2", "v3"),
      stages: "10,50,100",
    },
    traffic: [mesh("reviews", "bookinfo")],
    outcome: { kind: "continued", firstWeight: 100, managed: [http("bookinfo/reviews")] },
    versions: { stable: "v2", canary: "v3" },
  },
  {
    fixture: "03-bookinfo-reviews-jason-header.yaml",
    shape: "unnamed header-match route + unnamed default route: the default route is managed",
    inputs: { "virtual-service": "reviews", namespace: "bookinfo", ...subsets("v1", "v2") },
    traffic: [
      mesh("reviews", "bookinfo", 0.9),
      { ...mesh("reviews", "bookinfo", 0.1), headers: { "end-user": "jason" } },
    ],
    outcome: { kind: "promoted", managed: [http("bookinfo/reviews", 1)] },
    neverWarns: TRAFFIC_SHARE,
  },
  {
    fixture: "04-bookinfo-ratings-fault-abort.yaml",
    shape: "fault-injection route left untouched, the default route chosen as #1",
    inputs: { "virtual-service": "ratings", namespace: "bookinfo", ...subsets("v1", "v2"), routes: "#1" },
    traffic: [mesh("ratings", "bookinfo")],
    outcome: { kind: "promoted", managed: [http("bookinfo/ratings", 1)] },
  },
  {
    fixture: "05-bookinfo-gateway-only.yaml",
    shape: "gateway-only VirtualService, unnamed uri-match route chosen as #0",
    inputs: { "virtual-service": "bookinfo", namespace: "bookinfo", ...subsets("v1", "v2"), routes: "#0" },
    traffic: [
      { source: "bookinfo/bookinfo-gateway", host: "bookinfo.example.com", uri: "/productpage", share: 1 },
    ],
    outcome: { kind: "promoted", managed: [http("bookinfo/bookinfo")] },
    warns: MESH_CALLERS_STAY,
  },
  {
    fixture: "06-greeter-gateway-prefix-root.yaml",
    shape: "unnamed `prefix: /` gateway route, managed by default",
    inputs: { "virtual-service": "greeter", namespace: "greeter", ...subsets("v1", "v2") },
    traffic: [
      {
        source: "greeter/greeter",
        host: "greeter.example.com",
        uri: "/helloworld.Greeter/SayHello",
        method: "POST",
        share: 1,
      },
    ],
    outcome: { kind: "promoted", managed: [http("greeter/greeter")] },
    warns: MESH_CALLERS_STAY,
  },
  {
    fixture: "07-tcp-echo-tcp-only.yaml",
    shape: "tcp route only: shifted, or refused naming it",
    inputs: {
      "virtual-service": "tcp-echo",
      namespace: "istio-io-tcp-traffic-shifting",
      ...subsets("v1", "v2"),
    },
    traffic: [
      {
        source: "istio-io-tcp-traffic-shifting/tcp-echo-gateway",
        host: "tcp-echo.example.com",
        protocol: "tcp",
        port: 31400,
        share: 1,
      },
    ],
    outcome: [
      {
        kind: "promoted",
        managed: [{ vs: "istio-io-tcp-traffic-shifting/tcp-echo", protocol: "tcp", index: 0 }],
      },
      { kind: "refused", message: /tcp route/ },
    ],
  },
  {
    fixture: "08-tcp-echo-http-and-tcp.yaml",
    shape: "http + tcp: both shifted, or refused naming the tcp route",
    inputs: { "virtual-service": "tcp-echo", namespace: "tcp-echo", ...subsets("v1", "v2"), routes: "#0" },
    traffic: [
      { ...mesh("tcp-echo", "tcp-echo", 0.5), port: 8080 },
      { ...mesh("tcp-echo", "tcp-echo", 0.5), protocol: "tcp", port: 9000 },
    ],
    outcome: [
      {
        kind: "promoted",
        managed: [http("tcp-echo/tcp-echo"), { vs: "tcp-echo/tcp-echo", protocol: "tcp", index: 0 }],
      },
      { kind: "refused", message: /tcp route/ },
    ],
  },
  {
    fixture: "09-argo-vsvc-http-and-tls.yaml",
    shape: "http + tls, host-level split: both shifted, or refused naming the tls route",
    inputs: {
      "virtual-service": "rollouts-demo-vsvc1",
      namespace: "rollouts-demo",
      ...hosts("rollouts-demo-stable", "rollouts-demo-canary"),
    },
    traffic: [{ source: "rollouts-demo/rollouts-demo-gateway", host: "rollouts-demo-vsvc1.local", share: 1 }],
    outcome: [
      {
        kind: "promoted",
        managed: [
          http("rollouts-demo/rollouts-demo-vsvc1"),
          { vs: "rollouts-demo/rollouts-demo-vsvc1", protocol: "tls", index: 0 },
        ],
      },
      { kind: "refused", message: /tls route/ },
    ],
  },
  {
    fixture: "10-argo-two-virtualservices.yaml",
    shape: "several VirtualServices in lockstep (qualified routes), each with a tls route",
    inputs: {
      "virtual-service": "rollouts-demo-vsvc1,rollouts-demo-vsvc2",
      namespace: "rollouts-demo",
      routes: "rollouts-demo-vsvc1:primary,rollouts-demo-vsvc2:secondary",
      ...hosts("rollouts-demo-stable", "rollouts-demo-canary"),
    },
    traffic: [
      { source: "rollouts-demo/rollouts-demo-gateway", host: "rollouts-demo-vsvc1.local", share: 0.5 },
      { source: "rollouts-demo/rollouts-demo-gateway", host: "rollouts-demo-vsvc2.local", share: 0.5 },
    ],
    outcome: [
      {
        kind: "promoted",
        managed: ["rollouts-demo/rollouts-demo-vsvc1", "rollouts-demo/rollouts-demo-vsvc2"].flatMap((vs) => [
          http(vs),
          { vs, protocol: "tls" as const, index: 0 },
        ]),
      },
      { kind: "refused", message: /tls route/ },
    ],
  },
  {
    fixture: "11-argo-subset-split-shared-pods.yaml",
    shape: "canary subset that also selects the stable pods: refused",
    inputs: {
      "virtual-service": "istio-subset-split-vsvc",
      namespace: "rollouts",
      ...subsets("stable", "canary"),
    },
    traffic: [mesh("istio-subset-split", "rollouts")],
    outcome: { kind: "refused", message: /share pod/ },
  },
  {
    fixture: "12-argo-host-split-gateway.yaml",
    shape: "host-level split (two Services) on a gateway-only VirtualService",
    inputs: {
      "virtual-service": "istio-host-split-vsvc",
      namespace: "rollouts",
      ...hosts("istio-host-split-stable", "istio-host-split-canary"),
    },
    traffic: [{ source: "rollouts/istio-host-split-gateway", host: "istio-host-split.com", share: 1 }],
    outcome: { kind: "promoted", managed: [http("rollouts/istio-host-split-vsvc")] },
    warns: MESH_CALLERS_STAY,
  },
  {
    fixture: "13-flagger-frontend-gateway-and-mesh.yaml",
    shape: "one VirtualService for gateway + mesh, retries/cors/rewrite untouched, host split",
    inputs: {
      "virtual-service": "frontend",
      namespace: "test",
      routes: "#0",
      ...hosts("podinfo-primary", "podinfo-canary"),
    },
    traffic: [
      { source: "istio-system/public-gateway", host: "frontend.example.com", uri: "/", share: 0.5 },
      mesh("frontend", "test", 0.5),
    ],
    outcome: { kind: "promoted", managed: [http("test/frontend")] },
  },
  {
    fixture: "14-istio-mirroring-to-canary.yaml",
    shape: "mirror to the canary: refused (Istio's metrics cannot tell mirrored copies apart)",
    inputs: { "virtual-service": "httpbin", namespace: "httpbin", ...subsets("v1", "v2") },
    traffic: [mesh("httpbin", "httpbin")],
    outcome: { kind: "refused", message: /mirror/i },
  },
  {
    fixture: "15-istio-mirroring-elsewhere.yaml",
    shape: "mirror to neither version: left as it is after promotion",
    inputs: { "virtual-service": "httpbin", namespace: "httpbin", ...subsets("v1", "v3") },
    traffic: [mesh("httpbin", "httpbin")],
    outcome: { kind: "promoted", managed: [http("httpbin/httpbin")] },
    versions: { stable: "v1", canary: "v3" },
  },
  {
    fixture: "16-dr-in-istio-system.yaml",
    shape: "DestinationRule in the root namespace istio-system",
    inputs: { "virtual-service": "productcatalogservice", namespace: "default", ...subsets("v1", "v2") },
    traffic: [mesh("productcatalogservice", "default")],
    outcome: { kind: "promoted", managed: [http("default/productcatalogservice")] },
  },
  {
    fixture: "17-dr-exportto-dot-in-istio-system.yaml",
    shape: 'DestinationRule with exportTo "." in istio-system: not applied, refused',
    inputs: { "virtual-service": "productcatalogservice", namespace: "default", ...subsets("v1", "v2") },
    traffic: [mesh("productcatalogservice", "default")],
    outcome: { kind: "refused", message: /DestinationRule/ },
  },
  {
    fixture: "18-cross-namespace-host.yaml",
    shape: "host in another namespace than the VirtualService",
    inputs: { "virtual-service": "reviews", namespace: "frontend", ...subsets("v1", "v2") },
    traffic: [mesh("reviews.bookinfo.svc.cluster.local", "frontend")],
    outcome: { kind: "promoted", managed: [http("frontend/reviews")] },
  },
  {
    fixture: "19-serviceentry-workload-selector.yaml",
    shape: "ServiceEntry host with workloadSelector",
    inputs: { "virtual-service": "details", namespace: "bookinfo", ...subsets("v1", "v2") },
    traffic: [mesh("details.bookinfo.com", "bookinfo")],
    outcome: { kind: "promoted", managed: [http("bookinfo/details")] },
  },
  {
    fixture: "20-serviceentry-endpoints-split.yaml",
    shape: "canary host is a ServiceEntry with endpoints and no workloadSelector: refused saying why",
    inputs: {
      "virtual-service": "productcatalog-migration",
      namespace: "default",
      ...hosts("productcatalogservice", "productcatalogservice-gke.default.global"),
    },
    traffic: [mesh("productcatalogservice", "default")],
    outcome: { kind: "refused", message: /ServiceEntry/ },
  },
  {
    fixture: "21-helm-rails-chart.yaml",
    shape: "Helm-rendered gateway VirtualService, retries and timeout untouched",
    inputs: {
      "virtual-service": "shop-storefront-virtualservice",
      namespace: "shop",
      routes: "#0",
      ...subsets("v1", "v2"),
    },
    traffic: [
      { source: "istio-system/public-gateway", host: "shop.example.com", uri: "/products", share: 1 },
    ],
    outcome: { kind: "promoted", managed: [http("shop/shop-storefront-virtualservice")] },
    warns: MESH_CALLERS_STAY,
  },
  {
    fixture: "22-anthos-workshop-fqdn.yaml",
    shape: "FQDN hosts",
    inputs: { "virtual-service": "frontend", namespace: "frontend", ...subsets("v1", "v2") },
    traffic: [mesh("frontend.frontend.svc.cluster.local", "frontend")],
    outcome: { kind: "promoted", managed: [http("frontend/frontend")] },
  },
  {
    fixture: "23-gcp-productcatalog-75-25.yaml",
    shape: "already split 75/25: continue from the next stage above 25",
    inputs: {
      "virtual-service": "productcatalogservice",
      namespace: "default",
      ...subsets("v1", "v2"),
      stages: "10,50,100",
    },
    traffic: [mesh("productcatalogservice", "default")],
    outcome: { kind: "continued", firstWeight: 50, managed: [http("default/productcatalogservice")] },
  },
  {
    fixture: "24-bookinfo-gateway-and-mesh-pair.yaml",
    shape: "gateway + mesh VirtualServices moved in lockstep (qualified #N routes)",
    inputs: {
      "virtual-service": "bookinfo,productpage",
      namespace: "bookinfo",
      routes: "bookinfo:#0,productpage:#0",
      ...subsets("v1", "v2"),
    },
    traffic: [
      { source: "bookinfo/bookinfo-gateway", host: "bookinfo.example.com", uri: "/productpage", share: 0.5 },
      mesh("productpage", "bookinfo", 0.5),
    ],
    outcome: { kind: "promoted", managed: [http("bookinfo/bookinfo"), http("bookinfo/productpage")] },
    neverWarns: MESH_CALLERS_STAY,
  },
  {
    fixture: "25-istio-request-timeout.yaml",
    shape: "route with a timeout, left untouched (v2 stable, v3 canary)",
    inputs: { "virtual-service": "reviews", namespace: "bookinfo", ...subsets("v2", "v3") },
    traffic: [mesh("reviews", "bookinfo")],
    outcome: { kind: "promoted", managed: [http("bookinfo/reviews")] },
    versions: { stable: "v2", canary: "v3" },
  },
  // Issue 22: ambient mode and delegation.
  {
    fixture: "41-istio-ambient-reviews-90-10-waypoint.yaml",
    shape:
      "ambient + waypoint, already split 90/10: continue from the next stage above 10, on the waypoint's metrics",
    inputs: {
      "virtual-service": "reviews",
      namespace: "bookinfo",
      ...subsets("v1", "v2"),
      stages: "10,50,100",
    },
    traffic: [mesh("reviews", "bookinfo")],
    outcome: { kind: "continued", firstWeight: 50, managed: [http("bookinfo/reviews")] },
    neverWarns: /sidecar|injection/,
  },
  {
    fixture: "42-istio-ambient-reviews-no-waypoint.yaml",
    shape: "ambient without a waypoint: refused with the reason and the fix, not sidecars",
    inputs: { "virtual-service": "reviews", namespace: "bookinfo", ...subsets("v1", "v2") },
    traffic: [mesh("reviews", "bookinfo")],
    outcome: {
      kind: "refused",
      message:
        /ambient mode and no waypoint serves Service bookinfo\/reviews.*no L7 metrics.*istioctl waypoint apply -n bookinfo --enroll-namespace/,
    },
  },
  {
    fixture: "43-istio-delegate-bookinfo-root.yaml",
    shape: "root VirtualService named: refused naming its delegates and the inputs",
    inputs: { "virtual-service": "bookinfo", namespace: "nsa", ...subsets("v1", "v2") },
    traffic: [{ source: "nsa/mygateway", host: "bookinfo.com", uri: "/reviews", share: 1 }],
    outcome: {
      kind: "refused",
      message:
        /root VirtualService whose routes delegate.*nsb\/reviews.*virtual-service: productpage, namespace: nsa/,
    },
  },
  {
    fixture: "43-istio-delegate-bookinfo-root.yaml",
    shape: "root's delegating route selected (#1): says it delegates, naming the delegate's inputs",
    inputs: { "virtual-service": "bookinfo", namespace: "nsa", ...subsets("v1", "v2"), routes: "#1" },
    traffic: [{ source: "nsa/mygateway", host: "bookinfo.com", uri: "/reviews", share: 1 }],
    outcome: {
      kind: "refused",
      message:
        /http route #1 delegates to VirtualService nsb\/reviews.*virtual-service: reviews, namespace: nsb/,
    },
  },
  {
    fixture: "43-istio-delegate-bookinfo-root.yaml",
    shape: "the delegate named: managed as any VirtualService, the gateway's /reviews traffic moved",
    inputs: { "virtual-service": "reviews", namespace: "nsb", ...subsets("v1", "v2") },
    traffic: [{ source: "nsa/mygateway", host: "bookinfo.com", uri: "/reviews", share: 1 }],
    outcome: { kind: "promoted", managed: [http("nsb/reviews")] },
  },
];
