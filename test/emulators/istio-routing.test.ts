/**
 * The traffic simulator's Istio routing (test/mesh/istio-routing.ts): the VirtualService a request
 * takes by host and source, the route by match, weights, mirrors, and the DestinationRule lookup
 * order with exportTo. The corpus and end-to-end tests rely on these being Istio's rules.
 */
import { describe, expect, it } from "vitest";
import {
  findDestinationRule,
  type MeshObjects,
  pickDestination,
  resolveDestination,
  routeRequest,
  selectRoute,
  selectVirtualService,
} from "../mesh/istio-routing.ts";
import type { KubeObject } from "../mesh/kube-api.ts";

const obj = (kind: string, namespace: string, name: string, spec: unknown, labels?: Record<string, string>) =>
  ({ kind, metadata: { name, namespace, ...(labels ? { labels } : {}) }, spec }) as KubeObject;

const toV1 = [{ destination: { host: "reviews", subset: "v1" } }];
const gatewayVs = obj("VirtualService", "bookinfo", "gw", {
  hosts: ["*"],
  gateways: ["bookinfo-gateway"],
  http: [{ match: [{ uri: { prefix: "/static" } }], route: toV1 }],
});
const meshVs = obj("VirtualService", "bookinfo", "reviews", {
  hosts: ["reviews"],
  http: [
    {
      match: [{ headers: { "end-user": { exact: "jason" } } }],
      route: [{ destination: { host: "reviews", subset: "v2" } }],
    },
    { match: [{ uri: { regex: "/api/v[0-9]+/.*" }, method: { exact: "POST" } }], route: toV1 },
    {
      route: [
        { destination: { host: "reviews", subset: "v1" }, weight: 75 },
        { destination: { host: "reviews", subset: "v2" }, weight: 25 },
      ],
      mirror: { host: "reviews", subset: "v3" },
      mirrorPercentage: { value: 50 },
    },
  ],
});

const objects = (extra: Partial<MeshObjects> = {}): MeshObjects => ({
  virtualServices: [gatewayVs, meshVs],
  destinationRules: [],
  services: [obj("Service", "bookinfo", "reviews", { selector: { app: "reviews" } })],
  serviceEntries: [],
  pods: ["v1", "v2"].map((v) =>
    obj("Pod", "bookinfo", `reviews-${v}-abc-x1`, {}, { app: "reviews", version: v }),
  ),
  rootNamespace: "istio-system",
  ...extra,
});

describe("Istio routing in the traffic simulator", () => {
  it("picks the VirtualService by source: gateways for a gateway, none (mesh only) for sidecars", () => {
    const o = objects();
    expect(
      selectVirtualService(o, { source: "bookinfo/bookinfo-gateway", host: "x.example.com" })?.metadata.name,
    ).toBe("gw");
    expect(
      selectVirtualService(o, { source: "mesh", host: "reviews", clientNamespace: "bookinfo" })?.metadata
        .name,
    ).toBe("reviews");
    expect(selectVirtualService(o, { source: "mesh", host: "x.example.com" })).toBeUndefined();
    expect(
      selectVirtualService(o, { source: "istio-system/other-gateway", host: "x.example.com" }),
    ).toBeUndefined();
  });

  it("takes the first route whose match matches: headers, uri regex with method, then the catch-all", () => {
    const spec = meshVs.spec as never;
    const at = (r: object) => selectRoute(spec, { source: "mesh", host: "reviews", ...r }, "bookinfo")?.index;
    expect(at({ headers: { "End-User": "jason" } })).toBe(0);
    expect(at({ uri: "/api/v1/ratings", method: "POST" })).toBe(1);
    expect(at({ uri: "/api/v1/ratings", method: "GET" })).toBe(2);
    expect(
      selectRoute(gatewayVs.spec as never, { source: "g", host: "h", uri: "/productpage" }, "bookinfo"),
    ).toBeUndefined();
  });

  it("splits by weight and mirrors the given percentage", () => {
    const route = (meshVs.spec as { http: never[] }).http[2] as never;
    expect(pickDestination(route, 0.74)?.subset).toBe("v1");
    expect(pickDestination(route, 0.76)?.subset).toBe("v2");
    let mirrored = 0;
    const draws = [0.1, 0.4, 0.2, 0.9];
    for (let i = 0; i < 2; i++) {
      const d = routeRequest(
        objects(),
        { source: "mesh", host: "reviews", clientNamespace: "bookinfo" },
        () => draws.shift() as number,
      );
      mirrored += d.mirrors.length;
    }
    expect(mirrored).toBe(1);
  });

  it("looks DestinationRules up in the client's, the host's, then the root namespace, honouring exportTo", () => {
    const rule = (ns: string, name: string, exportTo?: string[]) =>
      obj("DestinationRule", ns, name, {
        host: "reviews.bookinfo.svc.cluster.local",
        ...(exportTo ? { exportTo } : {}),
        subsets: [{ name: "v2", labels: { version: "v2" } }],
      });
    const host = "reviews.bookinfo.svc.cluster.local";
    const find = (rules: KubeObject[], client: string) =>
      findDestinationRule(objects({ destinationRules: rules }), host, client, "bookinfo")?.metadata.name;
    expect(
      find(
        [rule("istio-system", "root"), rule("bookinfo", "service"), rule("frontend", "client")],
        "frontend",
      ),
    ).toBe("client");
    expect(find([rule("istio-system", "root"), rule("bookinfo", "service")], "frontend")).toBe("service");
    expect(find([rule("istio-system", "root")], "frontend")).toBe("root");
    expect(find([rule("istio-system", "root", ["."])], "frontend")).toBeUndefined();
    expect(find([rule("bookinfo", "service", ["bookinfo"])], "frontend")).toBeUndefined();
  });

  it("resolves a subset to its pods, and a missing subset to Istio's 503", () => {
    const rules = [
      obj("DestinationRule", "bookinfo", "reviews", {
        host: "reviews",
        subsets: [{ name: "v2", labels: { version: "v2" } }],
      }),
    ];
    const o = objects({ destinationRules: rules });
    const v2 = resolveDestination(o, { host: "reviews", subset: "v2" }, "bookinfo");
    expect("pods" in v2 && v2.pods.map((p) => p.metadata.name)).toEqual(["reviews-v2-abc-x1"]);
    expect(resolveDestination(o, { host: "reviews", subset: "v3" }, "bookinfo")).toEqual({
      unroutable: "no subset v3 for reviews.bookinfo.svc.cluster.local",
    });
  });

  it("serves a ServiceEntry host from the pods its workloadSelector picks, named by the host", () => {
    const entry = (workloadSelector?: object) =>
      obj("ServiceEntry", "bookinfo", "details", {
        hosts: ["details.bookinfo.com"],
        ...(workloadSelector ? { workloadSelector } : { endpoints: [{ address: "10.0.0.1" }] }),
      });
    const pods = [
      obj("Pod", "bookinfo", "details-legacy-v1-abc-x1", {}, { app: "details-legacy", version: "v1" }),
    ];
    const resolved = resolveDestination(
      objects({ serviceEntries: [entry({ labels: { app: "details-legacy" } })], pods }),
      { host: "details.bookinfo.com" },
      "bookinfo",
    );
    expect(resolved).toMatchObject({ serviceName: "details.bookinfo.com", serviceNamespace: "bookinfo" });
    expect("pods" in resolved && resolved.pods).toHaveLength(1);
    expect(
      resolveDestination(
        objects({ serviceEntries: [entry()], pods }),
        { host: "details.bookinfo.com" },
        "bookinfo",
      ),
    ).toEqual({ unroutable: "ServiceEntry details.bookinfo.com selects no workloads" });
  });
});
