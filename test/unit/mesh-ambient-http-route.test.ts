/**
 * Ambient mode with a Gateway API HTTPRoute (issue 22), preflight against the Kubernetes API
 * emulator through the real client. Which waypoint must serve the split follows Istio's ambient
 * docs ("Use Layer 7 features", "Manage traffic"): a route attached to a Service (GAMMA) is applied
 * by that Service's waypoint; a route attached to a waypoint's own Gateway applies to all traffic
 * enrolled in that waypoint; a route attached to an ingress Gateway is applied by the gateway, and
 * the versions' Services need a waypoint for their L7 metrics. Every refusal before any write.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { preflightHttpRoute } from "../../src/mesh/http-route-preflight.ts";
import { PreflightError, type PreflightResult } from "../../src/mesh/preflight.ts";
import { targetOf } from "../../src/mesh/routes.ts";
import type { Split } from "../../src/rollout/model/split.ts";
import {
  type AmbientRunbookOptions,
  seedAmbientRunbook,
  WAYPOINT,
  waypointGateway,
  waypointPod,
} from "../mesh/ambient.ts";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import { CANARY_SERVICE, STABLE_SERVICE } from "../mesh/gateway-fixtures.ts";
import type { KubeApiEmulator } from "../mesh/kube-api.ts";
import { useKubeEmulator, writes } from "../support/kube-emulator.ts";
import { meshApi } from "../support/mesh-router.ts";

const HOSTS: Split = { mode: "host", stableHost: STABLE_SERVICE, canaryHost: CANARY_SERVICE };
const emulator = useKubeEmulator();
let kube: KubeApiEmulator;
beforeEach(() => {
  kube = emulator();
});

const seed = (options: AmbientRunbookOptions = {}) =>
  seedAmbientRunbook(kube, { route: "httproute", ...options });

/** The route's parents replaced (its status follows, as the emulator's controller writes it). */
function attachTo(parentRefs: unknown[]): void {
  kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (o) => {
    (o.spec as { parentRefs: unknown[] }).parentRefs = parentRefs;
  });
}

/** Labels a Service (as `kubectl label service`). */
function label(service: string, labels: Record<string, string>): void {
  kube.editOutOfBand("services", NAMESPACE, service, (o) => {
    o.metadata.labels = { ...o.metadata.labels, ...labels };
  });
}

async function check(): Promise<PreflightResult | string> {
  kube.audit.length = 0;
  const result = await preflightHttpRoute(
    meshApi(kube),
    NAMESPACE,
    SERVICE,
    HOSTS,
    targetOf(HOSTS),
    [],
  ).catch((e: unknown) => e);
  expect(writes(kube.audit)).toEqual([]);
  if (result instanceof PreflightError) return result.problems.join("\n");
  if (result instanceof Error) throw result;
  return result as PreflightResult;
}

async function passes(): Promise<PreflightResult> {
  const result = await check();
  if (typeof result === "string") throw new Error(`refused: ${result}`);
  return result;
}

const parentWaypoint = { group: "gateway.networking.k8s.io", kind: "Gateway", name: WAYPOINT };

describe("ambient mode with an HTTPRoute", () => {
  it("GAMMA: the parent Service's waypoint counts, enrolled on that Service alone (not on the versions')", async () => {
    seed({ enrol: "service" });
    const result = await passes();
    expect(result).toMatchObject({ dataplane: "ambient", waypoints: [`${NAMESPACE}/${WAYPOINT}`] });
    expect(result.warnings.join("\n")).not.toMatch(/ingress-use-waypoint|sidecar/);
  });

  it("GAMMA: waypoints on the versions' Services do not apply a route attached to a Service without one", async () => {
    seed({ enrol: "service" });
    label(SERVICE, { "istio.io/use-waypoint": "none" });
    for (const s of [STABLE_SERVICE, CANARY_SERVICE]) label(s, { "istio.io/use-waypoint": WAYPOINT });
    const refusal = await check();
    expect(refusal).toContain(`Service ${NAMESPACE}/${SERVICE} opts out of waypoints`);
    expect(refusal).toContain("no L7 metrics");
  });

  it("attached to the waypoint's Gateway: that waypoint is checked, not the Services' enrolment, and it is no ingress", async () => {
    seed({ enrol: "none" });
    kube.seed("gateways", waypointGateway(NAMESPACE));
    kube.seed("pods", waypointPod(NAMESPACE));
    attachTo([parentWaypoint]);
    const result = await passes();
    expect(result).toMatchObject({ dataplane: "ambient", waypoints: [`${NAMESPACE}/${WAYPOINT}`] });
    expect(result.warnings.join("\n")).not.toContain("ingress");
  });

  it("attached to a waypoint's Gateway that is not programmed: refused naming it", async () => {
    seed({ enrol: "none" });
    kube.seed("gateways", waypointGateway(NAMESPACE, WAYPOINT, { programmed: false }));
    kube.seed("pods", waypointPod(NAMESPACE, WAYPOINT, false));
    attachTo([parentWaypoint]);
    const refusal = await check();
    expect(refusal).toContain(`waypoint ${NAMESPACE}/${WAYPOINT} is not programmed`);
    expect(refusal).toContain(`no pod of waypoint ${NAMESPACE}/${WAYPOINT} is ready`);
  });

  it("attached to an ingress Gateway: the versions' Services need the waypoint, and the gateway bypasses it unless opted in", async () => {
    seed({ enrol: "service" });
    kube.seed("namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-ingress" } });
    kube.seed("gateways", {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "gateway", namespace: "istio-ingress" },
      spec: {
        gatewayClassName: "istio",
        listeners: [
          { name: "http", port: 80, protocol: "HTTP", allowedRoutes: { namespaces: { from: "All" } } },
        ],
      },
    });
    attachTo([{ name: "gateway", namespace: "istio-ingress" }]);
    const refusal = await check();
    expect(refusal).toContain(`no waypoint serves Service ${NAMESPACE}/${STABLE_SERVICE}`);
    for (const s of [STABLE_SERVICE, CANARY_SERVICE]) label(s, { "istio.io/use-waypoint": WAYPOINT });
    const warned = await passes();
    expect(warned.warnings.join("\n")).toContain("applies only to ingress gateways (istio-ingress/gateway)");
    for (const s of [STABLE_SERVICE, CANARY_SERVICE]) label(s, { "istio.io/ingress-use-waypoint": "true" });
    expect((await passes()).warnings.join("\n")).not.toContain("ingress gateways");
  });
});
