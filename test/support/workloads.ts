/**
 * A promotion's finalization through the Deployments adapter (src/workloads/), with a given
 * identity, on a mesh whose pods were seeded from manifests/: the manifests' Deployments are
 * handed to the emulator's Deployment controller (which then owns their pods), the canary starting
 * at zero replicas as after the previous promotion. Used to check that the Role grants what the
 * finalization calls, until the bundled action runs it itself.
 */
import { loadKubeConfig } from "../../src/mesh/kubeconfig.ts";
import { KubernetesMeshApi } from "../../src/mesh/kubernetes.ts";
import { systemClock } from "../../src/rollout/clock.ts";
import { KubernetesWorkloads } from "../../src/workloads/kubernetes-deployments.ts";
import { DeploymentController } from "../mesh/deployments.ts";
import type { KubeApiEmulator } from "../mesh/kube-api.ts";
import { loadManifests } from "./manifests.ts";

export async function finalizeManifestDeployments(kube: KubeApiEmulator, kubeconfig: string): Promise<void> {
  const deployments = loadManifests()
    .map((d) => d.object)
    .filter((o) => o.kind === "Deployment");
  const namespace = deployments[0]?.metadata.namespace as string;
  for (const pod of kube.list("pods", namespace)) kube.remove("pods", namespace, pod.metadata.name);
  const apps = new DeploymentController(kube, { readyDelayMs: 300 });
  try {
    for (const d of deployments) {
      const object = structuredClone(d);
      if (object.metadata.labels?.version === "v2") {
        // The next release, as deploy.yml sets it on the canary, which is at zero since the last promotion.
        const spec = object.spec as {
          replicas: number;
          template: { spec: { containers: Array<{ image: string }> } };
        };
        spec.replicas = 0;
        for (const c of spec.template.spec.containers) c.image = c.image.replace(/:[^:/]+$/, ":next-release");
      }
      apps.create(object);
    }
    for (const d of deployments) await apps.rolledOut(namespace, d.metadata.name);
    const labels = (version: string) => ({ app: "backend", version });
    const workloads = new KubernetesWorkloads({
      api: new KubernetesMeshApi(loadKubeConfig({ kubeconfig })),
      namespace,
      stableLabels: labels("v1"),
      canaryLabels: labels("v2"),
      clock: systemClock,
      pollMs: 50,
    });
    await workloads.scaleCanary("stable");
    if (!(await workloads.waitCanary(10_000)).ready) throw new Error("the canary did not scale up");
    await workloads.copyCanaryToStable();
    // Right after the copy the new pods are still starting: the status names their problems.
    await workloads.stableStatus();
    if (!(await workloads.waitStable(10_000)).ready) throw new Error("the stable did not roll out");
    await workloads.scaleCanary(0);
  } finally {
    apps.stop();
  }
}
