/** The promotion's template copy and the "rolled out?" judgement, as pure functions. */
import { describe, expect, it } from "vitest";
import { promotedTemplate, templatePatch } from "../../src/workloads/deployment-template.ts";
import { podVerdict, rolloutVerdict } from "../../src/workloads/rollout-status.ts";

const deployment = (labels: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  metadata: { name: `backend-${labels.version ?? labels.track}`, resourceVersion: "42" },
  spec: {
    selector: { matchLabels: labels },
    template: {
      metadata: { labels: { ...labels }, ...extra },
      spec: { containers: [{ name: "backend", image: "b:1" }] },
    },
  },
});

describe("promotedTemplate", () => {
  it("leaves out a label that selects only the canary, so the stable's pods never join the canary's subset", () => {
    const stable = deployment({ app: "backend" });
    const canary = deployment({ app: "backend", track: "canary" });
    const template = promotedTemplate(stable, canary, {
      stable: { app: "backend" },
      canary: { track: "canary" },
    });
    expect((template.metadata as { labels: unknown }).labels).toEqual({ app: "backend" });
  });

  it("keeps the stable's own injected annotation and drops the canary's", () => {
    const stable = deployment({ version: "v1" }, { annotations: { "sidecar.istio.io/status": "stable's" } });
    const canary = deployment(
      { version: "v2" },
      {
        annotations: {
          "sidecar.istio.io/status": "canary's",
          "kubectl.kubernetes.io/default-container": "backend",
          note: "x",
        },
      },
    );
    const template = promotedTemplate(stable, canary, {
      stable: { version: "v1" },
      canary: { version: "v2" },
    });
    expect((template.metadata as { annotations: unknown }).annotations).toEqual({
      note: "x",
      "sidecar.istio.io/status": "stable's",
    });
  });

  it("guards the patch with a test of the resourceVersion it was planned from", () => {
    expect(templatePatch(deployment({ version: "v1" }), {})[0]).toEqual({
      op: "test",
      path: "/metadata/resourceVersion",
      value: "42",
    });
  });
});

describe("rolloutVerdict, as kubectl rollout status", () => {
  const status = (s: Record<string, unknown>, generation = 2) => ({
    metadata: { generation },
    spec: { replicas: 3 },
    status: { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3, ...s },
  });
  it.each([
    [status({}, 3), false, "waiting for the Deployment's spec update to be observed"],
    [status({ updatedReplicas: 1 }), false, "1 out of 3 new replicas have been updated"],
    [status({ replicas: 4 }), false, "1 old replicas are pending termination"],
    [status({ availableReplicas: 2 }), false, "2 of 3 updated replicas are available"],
    [status({}), true, "successfully rolled out"],
  ])("%j: done %s, %s", (d, done, message) => {
    expect(rolloutVerdict(d)).toEqual({ done, message, deadlineExceeded: false });
  });
});

describe("podVerdict", () => {
  const pod = (proxyReady: boolean, native = false) => {
    const statuses = [
      { name: "backend", ready: true },
      { name: "istio-proxy", ready: proxyReady },
    ];
    return {
      metadata: { name: "p" },
      spec: native ? { initContainers: [{ name: "istio-proxy", restartPolicy: "Always" }] } : {},
      status: {
        conditions: [{ type: "Ready", status: "True" }],
        containerStatuses: native ? statuses.slice(0, 1) : statuses,
        ...(native ? { initContainerStatuses: statuses.slice(1) } : {}),
      },
    };
  };
  it("requires the istio-proxy sidecar ready, as a container or a native sidecar", () => {
    expect(podVerdict(pod(true))).toEqual({ name: "p", ready: true, problems: [] });
    expect(podVerdict(pod(true, true)).ready).toBe(true);
    expect(podVerdict(pod(false))).toEqual({
      name: "p",
      ready: false,
      problems: ["pod p: istio-proxy not ready"],
    });
    const noSidecar = pod(true);
    noSidecar.status.containerStatuses = noSidecar.status.containerStatuses.slice(0, 1);
    expect(podVerdict(noSidecar).problems).toEqual([
      "pod p: no istio-proxy sidecar and not captured by ztunnel (enable sidecar injection, or ambient mode: istio.io/dataplane-mode=ambient)",
    ]);
    // In ambient mode (istio-cni's mark) no istio-proxy is needed: the pod is ready when it is ready.
    const ambient = pod(true);
    ambient.status.containerStatuses = ambient.status.containerStatuses.slice(0, 1);
    Object.assign(ambient.metadata, { annotations: { "ambient.istio.io/redirection": "enabled" } });
    expect(podVerdict(ambient)).toEqual({ name: "p", ready: true, problems: [] });
    // A pod that opts out of ambient (istio.io/dataplane-mode=none) is not ztunnel's, whatever the mark.
    Object.assign(ambient.metadata, { labels: { "istio.io/dataplane-mode": "none" } });
    expect(podVerdict(ambient).problems).toEqual([
      "pod p: no istio-proxy sidecar and not captured by ztunnel (enable sidecar injection, or ambient mode: istio.io/dataplane-mode=ambient)",
    ]);
  });
});
