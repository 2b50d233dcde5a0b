/**
 * Which Deployment runs a version: the one named by the input, else the owner (through its
 * ReplicaSet) of the pods the version's labels select, else, when it has no pods (scaled to zero),
 * the one whose pod template carries those labels. Anything but exactly one is refused, naming
 * what was seen, before any write. A pod whose owner ReplicaSet cannot be read (gone: orphaned, or
 * being deleted) is left out with a warning: owner lookups only explain, they never block.
 */
import type * as k8s from "@kubernetes/client-node";
import { errorMessage } from "../error-message.ts";
import { MeshError } from "../mesh/errors.ts";
import { labelSelector, type WorkloadApi } from "../mesh/kubernetes.ts";

export type Version = "stable" | "canary";

export interface ResolveContext {
  api: WorkloadApi;
  namespace: string;
  signal?: AbortSignal;
  /** Runs one API call with the adapter's retries. */
  call: <T>(run: () => Promise<T>) => Promise<T>;
  /** Reports a read that failed but only explains (an owner ReplicaSet that is gone). */
  warn?: (message: string) => void;
}

/** True when the labels carry every key=value of `wanted`. */
export function satisfies(
  labels: Record<string, string> | undefined,
  wanted: Record<string, string>,
): boolean {
  return Object.entries(wanted).every(([k, v]) => labels?.[k] === v);
}

const controllerOf = (o: { metadata?: k8s.V1ObjectMeta }) =>
  (o.metadata?.ownerReferences ?? []).find((r) => r.controller) ?? o.metadata?.ownerReferences?.[0];

function refused(message: string): MeshError {
  return new MeshError(message);
}

export async function findDeployment(
  ctx: ResolveContext,
  version: Version,
  labels: Record<string, string>,
  name: string | undefined,
): Promise<string> {
  const { api, namespace, signal } = ctx;
  const input = `${version}-deployment`;
  if (name) {
    let deployment: k8s.V1Deployment;
    try {
      deployment = await ctx.call(() => api.getDeployment(namespace, name, signal));
    } catch (error) {
      if ((error as MeshError).status === 404)
        throw refused(`Input '${input}': Deployment ${namespace}/${name} does not exist`);
      throw error;
    }
    const templateLabels = deployment.spec?.template?.metadata?.labels;
    if (!satisfies(templateLabels, labels))
      throw refused(
        `Input '${input}': Deployment ${namespace}/${name} does not run the ${version} version: its pods are labelled ${labelSelector(templateLabels ?? {}) || "(none)"}, the ${version} version is selected by ${labelSelector(labels)}`,
      );
    return name;
  }
  if (Object.keys(labels).length === 0)
    throw refused(`the ${version} version's pod labels are unknown: set the input '${input}'`);
  const pods = await ctx.call(() => api.listPodObjects(namespace, labelSelector(labels), signal));
  const owners = new Set<string>();
  const others: string[] = [];
  // By ReplicaSet name: its Deployment, undefined when it has none, null when it cannot be read.
  const replicaSets = new Map<string, string | undefined | null>();
  const unreadable = new Map<string, { pods: string[]; why: string }>();
  for (const pod of pods) {
    const owner = controllerOf(pod);
    if (owner?.kind !== "ReplicaSet") {
      others.push(
        `pod ${pod.metadata?.name} (${owner ? `owned by ${owner.kind} ${owner.name}` : "no owner"})`,
      );
      continue;
    }
    if (!replicaSets.has(owner.name)) {
      try {
        const rs = await ctx.call(() => api.getReplicaSet(namespace, owner.name, signal));
        const deployment = controllerOf(rs);
        replicaSets.set(owner.name, deployment?.kind === "Deployment" ? deployment.name : undefined);
      } catch (error) {
        if (signal?.aborted) throw error;
        replicaSets.set(owner.name, null);
        unreadable.set(owner.name, { pods: [], why: errorMessage(error) });
      }
    }
    const deployment = replicaSets.get(owner.name);
    if (deployment === null) unreadable.get(owner.name)?.pods.push(pod.metadata?.name ?? "");
    else if (deployment) owners.add(deployment);
    else others.push(`pod ${pod.metadata?.name} (ReplicaSet ${owner.name} has no Deployment)`);
  }
  for (const [rs, { pods: names, why }] of unreadable)
    ctx.warn?.(
      `the ${version} version's pod${names.length > 1 ? "s" : ""} ${names.join(", ")} in ${namespace}: owner ReplicaSet ${rs} could not be read (${why}); left out when finding the ${version} Deployment`,
    );
  const seen = [...[...owners].map((d) => `Deployment ${d}`), ...others];
  if (owners.size === 1 && others.length === 0) return [...owners][0] as string;
  if (seen.length > 1 || (owners.size === 0 && others.length > 0))
    throw refused(
      `the ${version} version's pods (${labelSelector(labels)}) in ${namespace} are not run by exactly one Deployment: ${seen.join(", ")}; set the input '${input}'`,
    );
  // No pods: a Deployment scaled to zero, found by its pod template's labels.
  const templates = (await ctx.call(() => api.listDeployments(namespace, signal))).filter((d) =>
    satisfies(d.spec?.template?.metadata?.labels, labels),
  );
  const names = templates.map((d) => d.metadata?.name ?? "");
  if (names.length === 1) return names[0] as string;
  throw refused(
    names.length === 0
      ? `no Deployment in ${namespace} runs the ${version} version: no pod and no pod template is labelled ${labelSelector(labels)}; set the input '${input}'`
      : `the ${version} version (${labelSelector(labels)}) has no pods and the pod templates of ${names.map((n) => `Deployment ${n}`).join(", ")} all match it; set the input '${input}'`,
  );
}
