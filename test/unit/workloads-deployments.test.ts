/**
 * The Deployments adapter through the real @kubernetes/client-node against the Kubernetes
 * emulator's Deployment controller: which Deployment runs each version, the promotion's copy (and
 * its guard against a concurrent edit), the wait as `kubectl rollout status` judges with the pods'
 * sidecars, a broken image's reasons, and scaling the canary to zero and back.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadKubeConfig } from "../../src/mesh/kubeconfig.ts";
import { KubernetesMeshApi, type WorkloadApi } from "../../src/mesh/kubernetes.ts";
import { systemClock } from "../../src/rollout/clock.ts";
import {
  KubernetesWorkloads,
  type KubernetesWorkloadsOptions,
} from "../../src/workloads/kubernetes-deployments.ts";
import { DeploymentController, deploymentManifest } from "../mesh/deployments.ts";
import { KubeApiEmulator, type KubeObject } from "../mesh/kube-api.ts";
import { kubectlInstalled } from "../support/kube-emulator.ts";

const NS = "shop";
const IMAGE = "registry.example/backend";
const V1 = { app: "backend", version: "v1" };
const V2 = { app: "backend", version: "v2" };

let kube: KubeApiEmulator;
let apps: DeploymentController;
let api: KubernetesMeshApi;

beforeEach(async () => {
  kube = await new KubeApiEmulator({
    tokens: { "admin-token": { user: "kubernetes-admin", rules: "all" } },
  }).start();
  kube.seed("namespaces", { metadata: { name: NS, labels: { "istio-injection": "enabled" } } });
  apps = new DeploymentController(kube, { readyDelayMs: 30 });
  api = new KubernetesMeshApi(loadKubeConfig({ kubeconfig: kube.kubeconfig("admin-token", NS) }));
});
afterEach(async () => {
  apps.stop();
  await kube.stop();
});

/** backend-v1 (stable, 3 replicas) and backend-v2 (canary, 1 replica, a new image, env and annotations). */
async function twoVersions(canaryReplicas = 1): Promise<void> {
  apps.create(
    deploymentManifest({ name: "backend-v1", namespace: NS, labels: V1, image: `${IMAGE}:v1`, replicas: 3 }),
  );
  const canary = deploymentManifest({
    name: "backend-v2",
    namespace: NS,
    labels: V2,
    image: `${IMAGE}:v2`,
    replicas: canaryReplicas,
  });
  const template = (
    canary.spec as { template: { metadata: Record<string, unknown>; spec: Record<string, unknown> } }
  ).template;
  template.metadata.annotations = {
    "sidecar.istio.io/status": '{"containers":["istio-proxy"]}',
    "kubectl.kubernetes.io/restartedAt": "2026-11-27T10:00:00Z",
  };
  (template.metadata.labels as Record<string, string>).team = "payments";
  (template.spec.containers as Array<Record<string, unknown>>)[0]!.env = [{ name: "FEATURE", value: "on" }];
  apps.create(canary);
  await apps.rolledOut(NS, "backend-v1");
  await apps.rolledOut(NS, "backend-v2");
}

function workloads(extra: Partial<KubernetesWorkloadsOptions> = {}): KubernetesWorkloads {
  return new KubernetesWorkloads({
    api,
    namespace: NS,
    stableLabels: V1,
    canaryLabels: V2,
    clock: systemClock,
    pollMs: 20,
    retryBudgetMs: 5_000,
    ...extra,
  });
}

const deployment = (name: string) => kube.get("deployments", NS, name) as KubeObject;
type Template = {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Array<{ image: string; env?: unknown }> };
};
const templateOf = (name: string) => (deployment(name).spec as { template: Template }).template;

describe("resolve", () => {
  it("finds each version's Deployment from its pods' ReplicaSet owners, and by the names given", async () => {
    await twoVersions();
    expect(await workloads().resolve()).toEqual({ stable: "backend-v1", canary: "backend-v2" });
    const reads = kube.audit.filter((e) => e.resource === "replicasets" && e.verb === "get").length;
    expect(reads).toBeGreaterThan(0);

    expect(
      await workloads({ stableDeployment: "backend-v1", canaryDeployment: "backend-v2" }).resolve(),
    ).toEqual({
      stable: "backend-v1",
      canary: "backend-v2",
    });
    await expect(workloads({ stableDeployment: "backend-v2" }).resolve()).rejects.toThrow(
      /Input 'stable-deployment': Deployment shop\/backend-v2 does not run the stable version/,
    );
    await expect(workloads({ canaryDeployment: "backend-v9" }).resolve()).rejects.toThrow(
      /Deployment shop\/backend-v9 does not exist/,
    );
  });

  it("refuses a version run by two Deployments, naming both", async () => {
    await twoVersions();
    const other = deploymentManifest({
      name: "backend-v1-batch",
      namespace: NS,
      labels: { ...V1, role: "batch" },
      image: `${IMAGE}:v1`,
    });
    apps.create(other);
    await apps.rolledOut(NS, "backend-v1-batch");
    await expect(workloads().resolve()).rejects.toThrow(
      /stable version's pods \(app=backend,version=v1\) in shop are not run by exactly one Deployment: Deployment backend-v1, Deployment backend-v1-batch; set the input 'stable-deployment'/,
    );
  });

  it("finds a canary scaled to zero by its pod template's labels", async () => {
    await twoVersions(0);
    expect(apps.pods(NS, "backend-v2")).toHaveLength(0);
    expect(await workloads().resolve()).toEqual({ stable: "backend-v1", canary: "backend-v2" });
  });
});

describe("copyCanaryToStable", () => {
  it("gives the stable Deployment the canary's pod template with its own version label and replicas; the rollout then completes", async () => {
    await twoVersions();
    const w = workloads();
    await w.copyCanaryToStable();
    const template = templateOf("backend-v1");
    expect(template.metadata.labels).toEqual({ ...V1, team: "payments" });
    expect(template.metadata.annotations).toEqual({
      "kubectl.kubernetes.io/restartedAt": "2026-11-27T10:00:00Z",
    });
    expect(template.spec.containers[0]?.image).toBe(`${IMAGE}:v2`);
    expect(template.spec.containers[0]?.env).toEqual([{ name: "FEATURE", value: "on" }]);
    expect((deployment("backend-v1").spec as { replicas: number }).replicas).toBe(3);
    expect(deployment("backend-v1").metadata.labels).toEqual(V1);

    const status = await w.waitStable(10_000);
    expect(status).toMatchObject({ name: "shop/backend-v1", ready: true, replicas: 3, problems: [] });
    expect(status.images).toEqual({ backend: `${IMAGE}:v2` });
    expect(status.summary).toBe(`3/3 ready, image ${IMAGE}:v2`);
    const pods = apps.pods(NS, "backend-v1");
    expect(pods).toHaveLength(3);
    for (const pod of pods) {
      expect(pod.metadata.labels?.version).toBe("v1");
      expect((pod.spec as Template["spec"]).containers.map((c) => c.image)).toContain(`${IMAGE}:v2`);
    }
    // Copying again (a resumed finalization) writes nothing.
    const patches = () => kube.audit.filter((e) => e.verb === "patch" && e.resource === "deployments").length;
    const before = patches();
    await w.copyCanaryToStable();
    expect(patches()).toBe(before);
  });

  it("does not overwrite an edit of the stable Deployment made between its read and the patch", async () => {
    await twoVersions();
    let edited = false;
    // Someone scales the stable and annotates it right after the adapter read it.
    const racing: WorkloadApi = Object.assign(Object.create(api) as KubernetesMeshApi, {
      async getDeployment(namespace: string, name: string, signal?: AbortSignal) {
        const read = await api.getDeployment(namespace, name, signal);
        if (name === "backend-v1" && !edited) {
          edited = true;
          apps.edit(NS, "backend-v1", (d) => {
            (d.spec as { replicas: number }).replicas = 4;
            d.metadata.annotations = { ...d.metadata.annotations, owner: "team-payments" };
          });
        }
        return read;
      },
    });
    await workloads({ api: racing }).copyCanaryToStable();
    const patches = kube.audit.filter((e) => e.verb === "patch" && e.resource === "deployments");
    expect(patches.map((e) => e.code)).toEqual([422, 200]);
    const stable = deployment("backend-v1");
    expect((stable.spec as { replicas: number }).replicas).toBe(4);
    expect(stable.metadata.annotations?.owner).toBe("team-payments");
    expect(templateOf("backend-v1").spec.containers[0]?.image).toBe(`${IMAGE}:v2`);
    expect(templateOf("backend-v1").metadata.labels.version).toBe("v1");
  });
});

describe("waitStable and stableStatus", () => {
  it("returns not ready, naming the CrashLoopBackOff and the Warning event, when the new image never starts", async () => {
    await twoVersions();
    apps.edit(NS, "backend-v1", (d) => {
      (d.spec as { template: Template }).template.spec.containers[0]!.image = `${IMAGE}:broken`;
    });
    const status = await workloads().waitStable(1_500);
    expect(status.ready).toBe(false);
    expect(status.images).toEqual({ backend: `${IMAGE}:broken` });
    expect(status.problems.join("\n")).toMatch(
      /pod backend-v1-\S+: container backend waiting: CrashLoopBackOff/,
    );
    expect(status.problems.join("\n")).toMatch(
      /event BackOff on pod backend-v1-\S+: Back-off restarting failed container backend/,
    );
    expect(status.problems.at(-1)).toMatch(/not rolled out after \d+ s \(timeout 2 s\)/);
    expect(status.summary).toMatch(/^3\/3 ready: Deployment shop\/backend-v1: /);
    // The old pods still serve (maxUnavailable 25 % of 3 rounds down to 0), but it is not rolled out.
    expect((await workloads().stableStatus()).ready).toBe(false);
  });

  it("stops waiting when the Deployment exceeds its progress deadline", async () => {
    apps.create(
      deploymentManifest({
        name: "backend-v1",
        namespace: NS,
        labels: V1,
        image: `${IMAGE}:v1`,
        progressDeadlineSeconds: 1,
      }),
    );
    apps.create(deploymentManifest({ name: "backend-v2", namespace: NS, labels: V2, image: `${IMAGE}:v2` }));
    await apps.rolledOut(NS, "backend-v1");
    apps.edit(NS, "backend-v1", (d) => {
      (d.spec as { template: Template }).template.spec.containers[0]!.image = `${IMAGE}:broken`;
    });
    // The time the wait slept between reads, as the product asked for it (not the machine's pace).
    let slept = 0;
    const clock = {
      now: () => systemClock.now(),
      sleep: (ms: number, signal?: AbortSignal) => {
        slept += ms;
        return systemClock.sleep(ms, signal);
      },
    };
    // No timeout given: the Deployment's own progressDeadlineSeconds (1 s here, 600 s by default).
    const byDefault = await workloads({ clock }).waitStable(undefined);
    expect(slept).toBeLessThanOrEqual(1_000);
    expect(byDefault.problems.join("\n")).toMatch(/exceeded its progress deadline|\(timeout 1 s\)/);
    // A longer timeout: the wait still ends as soon as the Deployment says it exceeded its deadline.
    slept = 0;
    const status = await workloads({ clock }).waitStable(8_000);
    expect(slept).toBeLessThan(8_000);
    expect(status.ready).toBe(false);
    expect(status.problems[0]).toBe("Deployment shop/backend-v1: exceeded its progress deadline");
  });
});

describe("scaleCanary", () => {
  it("scales the canary to zero through the scale subresource, then back to the stable's replicas", async () => {
    await twoVersions();
    const w = workloads();
    await w.scaleCanary(0);
    await apps.rolledOut(NS, "backend-v2");
    expect(apps.pods(NS, "backend-v2")).toHaveLength(0);
    expect(await w.waitCanary(1_000)).toMatchObject({ ready: true, replicas: 0 });

    await w.scaleCanary("stable");
    const status = await w.waitCanary(10_000);
    expect(status).toMatchObject({ name: "shop/backend-v2", ready: true, replicas: 3 });
    expect(apps.pods(NS, "backend-v2")).toHaveLength(3);
    const scales = kube.audit.filter((e) => e.resource === "deployments/scale" && e.verb === "patch");
    expect(scales.map((e) => e.code)).toEqual([200, 200]);
  });
});

describe.skipIf(!kubectlInstalled("the comparison of the wait with kubectl rollout status"))(
  "the wait agrees with kubectl rollout status",
  () => {
    /** Runs kubectl without blocking the emulator, which shares this process's event loop. */
    function rolloutStatus(name: string, timeout: string): Promise<number> {
      const dir = mkdtempSync(join(tmpdir(), "workloads-kubectl-"));
      writeFileSync(join(dir, "config"), kube.kubeconfig("admin-token", NS));
      return new Promise((done) =>
        execFile(
          "kubectl",
          [
            "--kubeconfig",
            join(dir, "config"),
            "rollout",
            "status",
            `deployment/${name}`,
            `--timeout=${timeout}`,
          ],
          { timeout: 20_000 },
          (error) => {
            rmSync(dir, { recursive: true, force: true });
            done(error ? Number((error as { code?: number }).code ?? 1) : 0);
          },
        ),
      );
    }

    it("after the copy both see the stable rolled out; with an image that never starts neither does", async () => {
      await twoVersions();
      const w = workloads();
      await w.copyCanaryToStable();
      const [kubectl, ours] = await Promise.all([rolloutStatus("backend-v1", "10s"), w.waitStable(10_000)]);
      expect([kubectl, ours.ready]).toEqual([0, true]);

      apps.edit(NS, "backend-v1", (d) => {
        (d.spec as { template: Template }).template.spec.containers[0]!.image = `${IMAGE}:broken`;
      });
      const [failed, broken] = await Promise.all([rolloutStatus("backend-v1", "1s"), w.waitStable(1_000)]);
      expect([failed, broken.ready]).toEqual([1, false]);
    });
  },
);
