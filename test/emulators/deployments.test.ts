/**
 * The Kubernetes emulator's Deployment controller as the real `kubectl` (Debian's
 * kubernetes-client) and the real @kubernetes/client-node see it: get, set image, patch, scale and
 * `rollout status` (which lists, then watches the Deployment); pods created from the template with
 * its labels, images and Istio's sidecar; an image that never gets ready; the scale subresource.
 * The kubectl half is skipped, with the reason, when kubectl is not installed.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DeploymentController, deploymentManifest } from "../mesh/deployments.ts";
import { KubeApiEmulator, type KubeObject } from "../mesh/kube-api.ts";
import { kubectlInstalled, runKubectl } from "../support/kube-emulator.ts";
import { loadManifests } from "../support/manifests.ts";

const NS = "shop";
const IMAGE = "registry.example/backend";
const LABELS = { app: "backend", version: "v1" };

const installed = kubectlInstalled("the Deployment controller's checks against kubectl");

let kube: KubeApiEmulator;
let apps: DeploymentController;
let dir: string;

beforeEach(async () => {
  kube = await new KubeApiEmulator({
    tokens: {
      "admin-token": { user: "kubernetes-admin", rules: "all" },
      // The action's Role without the scale subresource.
      "no-scale-token": {
        user: "system:serviceaccount:shop:canary-action",
        namespaces: [NS],
        rules: [{ apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "patch"] }],
      },
    },
  }).start();
  kube.seed("namespaces", { metadata: { name: NS, labels: { "istio-injection": "enabled" } } });
  apps = new DeploymentController(kube, { readyDelayMs: 50 });
  apps.create(
    deploymentManifest({ name: "backend", namespace: NS, labels: LABELS, image: `${IMAGE}:v1`, replicas: 2 }),
  );
  await apps.rolledOut(NS, "backend");
  dir = mkdtempSync(join(tmpdir(), "kubectl-deployments-"));
  writeFileSync(join(dir, "config"), kube.kubeconfig("admin-token", NS));
});
afterEach(async () => {
  apps.stop();
  await kube.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** kubectl against the emulator's kubeconfig. */
const kubectl = (...args: string[]) => runKubectl(["--kubeconfig", join(dir, "config"), ...args], 20_000);

const podsOf = (name = "backend") => apps.pods(NS, name);
const images = (pod: KubeObject) =>
  ((pod.spec as { containers: Array<{ image: string }> }).containers ?? []).map((c) => c.image);
const ready = (pod: KubeObject) =>
  (pod.status as { conditions: Array<{ type: string; status: string }> }).conditions.some(
    (c) => c.type === "Ready" && c.status === "True",
  );

describe.skipIf(!installed)("the Deployment controller as kubectl sees it", () => {
  it("get: the server-side table shows ready, up-to-date and available replicas", async () => {
    const run = await kubectl("get", "deploy");
    expect(run.stderr).toBe("");
    expect(run.stdout).toMatch(
      /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\nbackend\s+2\/2\s+2\s+2\s+\d+s\n$/,
    );
  });

  it("set image: rollout status waits through the rolling update, then the pods run the new image with the template's labels", async () => {
    // The new pods are held back until kubectl watches, so the rollout's progress reaches it on the watch.
    apps.breakImage(`${IMAGE}:v2`);
    expect((await kubectl("set", "image", "deployment/backend", `backend=${IMAGE}:v2`)).code).toBe(0);
    const watching = () =>
      kube.audit.some((e) => e.verb === "watch" && /fieldSelector=metadata\.name%3Dbackend/.test(e.path));
    const following = kubectl("rollout", "status", "deployment/backend", "--timeout=10s");
    await vi.waitUntil(watching, { timeout: 5000, interval: 10 });
    apps.repairImage(`${IMAGE}:v2`);
    const rollout = await following;
    expect(rollout.code).toBe(0);
    expect(rollout.stdout).toContain(
      'Waiting for deployment "backend" rollout to finish: 1 out of 2 new replicas',
    );
    expect(rollout.stdout).toContain('deployment "backend" successfully rolled out');

    const pods = JSON.parse((await kubectl("get", "pods", "-l", "app=backend", "-o", "json")).stdout).items;
    expect(pods).toHaveLength(2);
    const sets = JSON.parse((await kubectl("get", "rs", "-o", "json")).stdout).items as KubeObject[];
    const current = sets.find((rs) => (rs.spec as { replicas: number }).replicas === 2) as KubeObject;
    expect(current.metadata.name).toMatch(/^backend-[bcdfghjklmnpqrstvwxz2456789]+$/);
    expect(sets.map((rs) => (rs.spec as { replicas: number }).replicas).sort()).toEqual([0, 2]);
    for (const pod of pods as KubeObject[]) {
      expect(pod.metadata.labels).toMatchObject({
        ...LABELS,
        "pod-template-hash": current.metadata.labels?.["pod-template-hash"],
        "security.istio.io/tlsMode": "istio",
      });
      expect(images(pod)).toEqual([`${IMAGE}:v2`, "docker.io/istio/proxyv2:1.24.0"]);
      expect(pod.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: "ReplicaSet", name: current.metadata.name }),
      ]);
      expect(ready(pod)).toBe(true);
    }
    const deployment = kube.get("deployments", NS, "backend") as KubeObject;
    expect(deployment.metadata.generation).toBe(2);
    expect(deployment.status).toMatchObject({
      observedGeneration: 2,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
    });
  });

  it("a never-ready image: rollout status times out, the old pods keep serving, the kubelet's Warning is an Event", async () => {
    const patch = [
      { op: "replace", path: "/spec/template/spec/containers/0/image", value: `${IMAGE}:broken` },
    ];
    expect(
      (await kubectl("patch", "deployment", "backend", "--type=json", "-p", JSON.stringify(patch))).code,
    ).toBe(0);
    const rollout = await kubectl("rollout", "status", "deployment/backend", "--timeout=300ms");
    expect(rollout.code).not.toBe(0);
    expect(rollout.stderr).toContain("timed out waiting for the condition");
    expect(rollout.stdout).toContain("1 out of 2 new replicas have been updated");

    const waiting = (pod: KubeObject) =>
      (pod.status as { containerStatuses: Array<{ state: { waiting?: { reason: string } } }> })
        .containerStatuses[0]?.state.waiting?.reason;
    const stuck = await vi.waitUntil(() => podsOf().find((p) => waiting(p) === "CrashLoopBackOff"));
    expect(images(stuck)[0]).toBe(`${IMAGE}:broken`);
    expect(podsOf().filter((p) => images(p)[0] === `${IMAGE}:v1` && ready(p))).toHaveLength(2);
    const table = (await kubectl("get", "pods", "-l", "app=backend")).stdout;
    expect(table).toMatch(new RegExp(`${stuck.metadata.name}\\s+1/2\\s+CrashLoopBackOff\\s+1\\s`));
    expect(table.match(/\s2\/2\s+Running\s/g)).toHaveLength(2);
    const events = JSON.parse(
      (
        await kubectl(
          "get",
          "events",
          "--field-selector",
          `involvedObject.name=${stuck.metadata.name}`,
          "-o",
          "json",
        )
      ).stdout,
    ).items;
    expect(events).toEqual([expect.objectContaining({ type: "Warning", reason: "BackOff" })]);
    expect(events[0].message).toContain("Back-off restarting failed container backend");
  });

  it("past progressDeadlineSeconds rollout status fails with the deadline message; a repaired image then rolls out", async () => {
    const patch = {
      spec: {
        progressDeadlineSeconds: 1,
        template: { spec: { containers: [{ name: "backend", image: `${IMAGE}:broken` }] } },
      },
    };
    expect((await kubectl("patch", "deployment", "backend", "-p", JSON.stringify(patch))).code).toBe(0);
    const rollout = await kubectl("rollout", "status", "deployment/backend");
    expect(rollout.code).not.toBe(0);
    expect(rollout.stderr).toContain('error: deployment "backend" exceeded its progress deadline');
    const status = await kubectl(
      "get",
      "deploy",
      "backend",
      "-o",
      "jsonpath={.status.conditions[?(@.type=='Progressing')].reason}",
    );
    expect(status.stdout).toBe("ProgressDeadlineExceeded");
    // The strategic merge patch merged the container by name: its ports survived.
    expect(kube.get("deployments", NS, "backend")?.spec).toMatchObject({
      template: { spec: { containers: [{ name: "backend", ports: [{ containerPort: 8080 }] }] } },
    });

    apps.repairImage(`${IMAGE}:broken`);
    const again = await kubectl("rollout", "status", "deployment/backend", "--timeout=10s");
    expect(again.stdout).toContain('deployment "backend" successfully rolled out');
  });

  it("scale --replicas=0 removes every pod; scaling up creates pods from the template again", async () => {
    expect((await kubectl("scale", "deployment/backend", "--replicas=0")).stdout).toContain("scaled");
    expect(kube.audit.some((e) => e.resource === "deployments/scale" && e.verb === "patch")).toBe(true);
    expect((await kubectl("rollout", "status", "deployment/backend", "--timeout=5s")).code).toBe(0);
    expect((await kubectl("get", "pods", "-l", "app=backend", "-o", "name")).stdout).toBe("");
    expect((await kubectl("get", "deploy", "backend")).stdout).toMatch(/backend\s+0\/0\s+0\s+0/);

    await kubectl("scale", "deployment/backend", "--replicas=3");
    expect((await kubectl("rollout", "status", "deployment/backend", "--timeout=5s")).code).toBe(0);
    expect(podsOf().map(images)).toEqual(Array(3).fill([`${IMAGE}:v1`, "docker.io/istio/proxyv2:1.24.0"]));
  });
});

describe("the Deployment controller through @kubernetes/client-node", () => {
  const client = (token = "admin-token") => {
    const config = new k8s.KubeConfig();
    config.loadFromString(kube.kubeconfig(token, NS));
    return config.makeApiClient(k8s.AppsV1Api);
  };
  const k8sCore = () => {
    const config = new k8s.KubeConfig();
    config.loadFromString(kube.kubeconfig("admin-token", NS));
    return config.makeApiClient(k8s.CoreV1Api);
  };
  const jsonPatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);
  const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  const failure = async (call: Promise<unknown>) => {
    try {
      await call;
    } catch (e) {
      if (e instanceof k8s.ApiException) return { code: e.code, body: JSON.parse(String(e.body)) };
      throw e;
    }
    throw new Error("expected the call to fail");
  };

  it("a guarded template patch moves generation; observedGeneration lags until the controller acts", async () => {
    const api = client();
    const before = await api.readNamespacedDeployment({ name: "backend", namespace: NS });
    expect(before.metadata?.generation).toBe(1);
    expect(before.status?.observedGeneration).toBe(1);
    const patch = [
      { op: "test", path: "/metadata/resourceVersion", value: before.metadata?.resourceVersion },
      { op: "replace", path: "/spec/template/spec/containers/0/image", value: `${IMAGE}:v2` },
    ];
    const written = await api.patchNamespacedDeployment(
      { name: "backend", namespace: NS, body: patch },
      jsonPatch,
    );
    expect(written.metadata?.generation).toBe(2);
    expect(written.status?.observedGeneration).toBe(1);
    // The same guard on the old version is refused, as kube-apiserver refuses a failed `test`.
    expect(
      (
        await failure(
          api.patchNamespacedDeployment({ name: "backend", namespace: NS, body: patch }, jsonPatch),
        )
      ).code,
    ).toBe(422);
    // A replace from the stale read is a 409 Conflict.
    expect(
      (await failure(api.replaceNamespacedDeployment({ name: "backend", namespace: NS, body: before }))).code,
    ).toBe(409);

    await apps.rolledOut(NS, "backend");
    const after = await api.readNamespacedDeployment({ name: "backend", namespace: NS });
    expect(after.status).toMatchObject({
      observedGeneration: 2,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
    });
    expect(after.status?.conditions?.find((c) => c.type === "Progressing")?.reason).toBe(
      "NewReplicaSetAvailable",
    );
    expect(after.metadata?.annotations?.["deployment.kubernetes.io/revision"]).toBe("2");
    expect(podsOf().map((p) => images(p)[0])).toEqual([`${IMAGE}:v2`, `${IMAGE}:v2`]);
  });

  it("the scale subresource: read, patch and replace; 0 removes the pods; the generation moves", async () => {
    const api = client();
    const scale = await api.readNamespacedDeploymentScale({ name: "backend", namespace: NS });
    expect(scale).toMatchObject({ kind: "Scale", apiVersion: "autoscaling/v1", spec: { replicas: 2 } });
    expect(scale.status).toEqual({ replicas: 2, selector: "app=backend,version=v1" });

    await api.patchNamespacedDeploymentScale(
      { name: "backend", namespace: NS, body: { spec: { replicas: 3 } } },
      mergePatch,
    );
    await apps.rolledOut(NS, "backend");
    expect(podsOf()).toHaveLength(3);

    const current = await api.readNamespacedDeploymentScale({ name: "backend", namespace: NS });
    const replaced = await api.replaceNamespacedDeploymentScale({
      name: "backend",
      namespace: NS,
      body: { ...current, spec: { replicas: 0 } },
    });
    expect(replaced.spec?.replicas).toBe(0);
    // A replace carrying the version it read is refused once the Scale has moved on.
    expect(
      (await failure(api.replaceNamespacedDeploymentScale({ name: "backend", namespace: NS, body: current })))
        .code,
    ).toBe(409);
    await apps.rolledOut(NS, "backend");
    expect(podsOf()).toEqual([]);
    const deployment = await api.readNamespacedDeployment({ name: "backend", namespace: NS });
    expect(deployment.metadata?.generation).toBe(3);
    expect(deployment.status?.replicas).toBeUndefined();
  });

  it("RBAC: the scale subresource is its own resource; the audit log names it", async () => {
    const api = client("no-scale-token");
    expect((await api.readNamespacedDeployment({ name: "backend", namespace: NS })).metadata?.name).toBe(
      "backend",
    );
    const denied = await failure(
      api.patchNamespacedDeploymentScale(
        { name: "backend", namespace: NS, body: { spec: { replicas: 0 } } },
        mergePatch,
      ),
    );
    expect(denied.code).toBe(403);
    expect(denied.body.message).toContain('cannot patch resource "deployments/scale" in API group "apps"');
    expect(kube.audit.at(-1)).toMatchObject({ verb: "patch", resource: "deployments/scale", code: 403 });
  });

  it("the selector is immutable and must select the template's labels", async () => {
    const api = client();
    const selector = await failure(
      api.patchNamespacedDeployment(
        { name: "backend", namespace: NS, body: { spec: { selector: { matchLabels: { version: null } } } } },
        mergePatch,
      ),
    );
    expect(selector.code).toBe(422);
    expect(selector.body.message).toContain("spec.selector: Invalid value");
    expect(selector.body.message).toContain("field is immutable");
    const labels = await failure(
      api.patchNamespacedDeployment(
        {
          name: "backend",
          namespace: NS,
          body: { spec: { template: { metadata: { labels: { version: "v2" } } } } },
        },
        mergePatch,
      ),
    );
    expect(labels.body.message).toContain("`selector` does not match template `labels`");
  });

  it("a template that opts out of injection gets no sidecar; ReplicaSets are listed by the Deployment's selector", async () => {
    const manifest = deploymentManifest({
      name: "batch",
      namespace: NS,
      labels: { app: "batch" },
      image: "registry.example/batch:1",
    });
    (manifest.spec as { template: KubeObject }).template.metadata.annotations = {
      "sidecar.istio.io/inject": "false",
    };
    await client().createNamespacedDeployment({ namespace: NS, body: manifest as k8s.V1Deployment });
    await apps.rolledOut(NS, "batch");
    expect(apps.pods(NS, "batch").map(images)).toEqual([["registry.example/batch:1"]]);
    const sets = await client().listNamespacedReplicaSet({ namespace: NS, labelSelector: "app=batch" });
    expect(sets.items.map((rs) => rs.metadata?.ownerReferences?.[0]?.name)).toEqual(["batch"]);
  });

  it("the repository's manifests/ Deployments roll out: pods selected by their subsets, READY 2/2 with the sidecar", async () => {
    apps.delete("deployments", NS, "backend");
    const deployments = loadManifests().filter((d) => d.object.kind === "Deployment");
    expect(deployments.map((d) => d.object.metadata.name).sort()).toEqual(["backend-v1", "backend-v2"]);
    for (const { object } of deployments) {
      await client().createNamespacedDeployment({ namespace: NS, body: object as k8s.V1Deployment });
    }
    for (const version of ["v1", "v2"]) {
      await apps.rolledOut(NS, `backend-${version}`);
      const pods = await k8sCore().listNamespacedPod({
        namespace: NS,
        labelSelector: `app=backend,version=${version}`,
      });
      expect(pods.items).toHaveLength(2);
      for (const pod of pods.items) {
        expect(pod.spec?.containers.map((c) => c.name)).toEqual(["backend", "istio-proxy"]);
        expect(pod.status?.containerStatuses?.every((c) => c.ready)).toBe(true);
      }
    }
  });

  it("breakImage: new pods wait in ImagePullBackOff until the image is repaired", async () => {
    apps.breakImage(`${IMAGE}:v3`, "ImagePullBackOff");
    apps.edit(NS, "backend", (d) => {
      (d.spec as { template: { spec: { containers: Array<{ image: string }> } } }).template.spec
        .containers[0]!.image = `${IMAGE}:v3`;
    });
    await expect(apps.rolledOut(NS, "backend", 300)).rejects.toThrow(
      "1 out of 2 new replicas have been updated",
    );
    const stuck = podsOf().find((p) => images(p)[0] === `${IMAGE}:v3`) as KubeObject;
    expect(stuck.status).toMatchObject({ phase: "Pending" });
    const events = kube
      .list("events", NS)
      .filter((e) => (e.involvedObject as { name: string }).name === stuck.metadata.name);
    expect(events).toEqual([expect.objectContaining({ type: "Warning", reason: "Failed" })]);

    apps.repairImage(`${IMAGE}:v3`);
    await apps.rolledOut(NS, "backend");
    expect(podsOf().map((p) => images(p)[0])).toEqual([`${IMAGE}:v3`, `${IMAGE}:v3`]);
  });
});
