/**
 * Issue 20, part B, on the Deployments adapter (real @kubernetes/client-node against the emulator's
 * Deployment controller, which keeps managedFields as the API server does): the stable is checked
 * by content and by its ready pods before traffic moves to it, naming who changed it; reads that
 * only explain (events, owner ReplicaSets) degrade to warnings.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadKubeConfig } from "../../src/mesh/kubeconfig.ts";
import { KubernetesMeshApi } from "../../src/mesh/kubernetes.ts";
import { systemClock } from "../../src/rollout/clock.ts";
import { KubernetesWorkloads } from "../../src/workloads/kubernetes-deployments.ts";
import { DeploymentController, deploymentManifest } from "../mesh/deployments.ts";
import { KubeApiEmulator, type KubeObject } from "../mesh/kube-api.ts";

const NS = "shop";
const IMAGE = "registry.example/backend";
const V1 = { app: "backend", version: "v1" };
const V2 = { app: "backend", version: "v2" };

let kube: KubeApiEmulator;
let apps: DeploymentController;
let warnings: string[];

beforeEach(async () => {
  kube = await new KubeApiEmulator({
    tokens: { "admin-token": { user: "kubernetes-admin", rules: "all" } },
  }).start();
  kube.seed("namespaces", { metadata: { name: NS, labels: { "istio-injection": "enabled" } } });
  apps = new DeploymentController(kube, { readyDelayMs: 30 });
  warnings = [];
  for (const [name, labels, image, replicas] of [
    ["backend-v1", V1, `${IMAGE}:v1`, 3],
    ["backend-v2", V2, `${IMAGE}:v2`, 2],
  ] as const)
    apps.create(deploymentManifest({ name, namespace: NS, labels, image, replicas }));
  await apps.rolledOut(NS, "backend-v1");
  await apps.rolledOut(NS, "backend-v2");
});
afterEach(async () => {
  apps.stop();
  await kube.stop();
});

function workloads(): KubernetesWorkloads {
  return new KubernetesWorkloads({
    api: new KubernetesMeshApi(loadKubeConfig({ kubeconfig: kube.kubeconfig("admin-token", NS) })),
    namespace: NS,
    stableLabels: V1,
    canaryLabels: V2,
    clock: systemClock,
    pollMs: 20,
    retryBudgetMs: 5_000,
    warn: (m) => warnings.push(m),
  });
}

const setImage = (image: string) => (d: KubeObject) => {
  const spec = d.spec as { template: { spec: { containers: Array<{ image: string }> } } };
  (spec.template.spec.containers[0] as { image: string }).image = image;
};

describe("servesPromoted", () => {
  it("passes a stable that runs the copied template with at least the canary's ready pods", async () => {
    const w = workloads();
    const copied = await w.copyCanaryToStable();
    expect((await w.waitStable(10_000)).ready).toBe(true);
    expect(await w.servesPromoted(copied)).toBeUndefined();
  });

  it("refuses a stable scaled to zero after the copy, which kubectl calls rolled out, naming kubectl-scale", async () => {
    const w = workloads();
    const copied = await w.copyCanaryToStable();
    apps.edit(
      NS,
      "backend-v1",
      (d) => {
        (d.spec as { replicas: number }).replicas = 0;
      },
      "kubectl-scale",
      "scale",
    );
    const status = await w.waitStable(10_000);
    expect(status).toMatchObject({ ready: true, readyPods: 0 });
    const why = await w.servesPromoted(copied);
    expect(why).toMatch(/backend-v1 cannot take all traffic: it has 0 pod\(s\) ready .*the canary 2/);
    expect(why).toMatch(/changed since the copy by "kubectl-scale" \(Update of \/scale at \d{4}-/);
  });

  it("refuses a stable given another image after the copy, naming the image and kubectl-set", async () => {
    const w = workloads();
    const copied = await w.copyCanaryToStable();
    apps.edit(NS, "backend-v1", setImage(`${IMAGE}:v9`), "kubectl-set");
    expect((await w.waitStable(10_000)).ready).toBe(true);
    const why = await w.servesPromoted(copied);
    expect(why).toMatch(
      /container "backend" runs "registry.example\/backend:v9", not the promoted "registry.example\/backend:v2"/,
    );
    expect(why).toMatch(/by "kubectl-set"/);
    expect(why).not.toMatch(/istio-canary-action/);
  });

  it("re-plans a 409 on the copy", async () => {
    kube.faultPlan.reject({
      code: 409,
      reason: "Conflict",
      message: 'Operation cannot be fulfilled on deployments.apps "backend-v1": the object has been modified',
      resource: "deployments",
      verbs: ["patch"],
      count: 1,
    });
    const w = workloads();
    const copied = await w.copyCanaryToStable();
    expect(kube.faultPlan.hits.map((h) => h.fault)).toEqual(["409"]);
    expect((await w.waitStable(10_000)).ready).toBe(true);
    expect(await w.servesPromoted(copied)).toBeUndefined();
  });
});

describe("diagnostics never block", () => {
  it("a 403 on listing events is a warning; the status still names the pods' problems", async () => {
    kube.faultPlan.reject({
      code: 403,
      reason: "Forbidden",
      message:
        'events is forbidden: User "x" cannot list resource "events" in API group "" in the namespace "shop"',
      resource: "events",
      verbs: ["list"],
    });
    apps.breakImage(`${IMAGE}:v2`);
    const w = workloads();
    await w.copyCanaryToStable();
    const status = await w.waitStable(1_500);
    expect(status.ready).toBe(false);
    expect(status.problems.join("\n")).toMatch(/CrashLoopBackOff/);
    expect(warnings).toEqual([expect.stringMatching(/Could not list the Warning events .*Forbidden/)]);
  });

  it("a pod whose owner ReplicaSet is gone is left out with a warning naming it", async () => {
    const pod = structuredClone(apps.pods(NS, "backend-v1")[0]) as KubeObject;
    const owners = pod.metadata.ownerReferences as Array<{ name: string; uid: string }>;
    Object.assign(owners[0] as object, { name: "backend-v1-gone", uid: "0000" });
    pod.metadata = { ...pod.metadata, name: "backend-v1-gone-orph1", ownerReferences: owners };
    for (const f of ["uid", "resourceVersion", "creationTimestamp"]) delete pod.metadata[f];
    kube.seed("pods", pod);
    expect(await workloads().resolve()).toEqual({ stable: "backend-v1", canary: "backend-v2" });
    expect(warnings).toEqual([
      expect.stringMatching(
        /pod backend-v1-gone-orph1 in shop: owner ReplicaSet backend-v1-gone could not be read/,
      ),
    ]);
  });
});
