/**
 * What the finalization and lease fault cases (./cases-finalize-lease.ts) measure on a mesh with
 * the runbook's versions as Deployments: what the stable Deployment runs and how many of its pods
 * can serve, whether all traffic went to a stable that cannot serve the promoted version or a pass
 * was undone, and hooks that strike at the finalization's own requests.
 */
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import type { Mesh, MeshOptions } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import {
  canaryShare,
  currentVs,
  HEALTHY,
  stateOf,
  storedWrites,
  type TimedRun,
  weightsOf,
} from "./harness.ts";

export const IMAGE = `registry.example/${SERVICE}`;
/** The image the canary Deployment runs and every stage analysed: what finalization promotes. */
export const PROMOTED = `${IMAGE}:v2`;
export const STABLE = `${SERVICE}-v1`;
export const CANARY = `${SERVICE}-v2`;
export const WITH_DEPLOYMENTS: MeshOptions = { ...HEALTHY, deployments: { readyDelayMs: 300 } };
/** The lease holder of the first run (runTimed's default run id and attempt). */
export const FIRST_RUN = "acme/shop run 1001 attempt 1";

export interface StableView {
  image: string;
  replicas: number;
  /** Pods Ready with a ready istio-proxy, not terminating. */
  readyPods: number;
}

export function stableView(mesh: Mesh): StableView {
  const d = mesh.kube.get("deployments", NAMESPACE, STABLE) as
    | (KubeObject & {
        spec: { replicas: number; template: { spec: { containers: Array<{ image: string }> } } };
      })
    | undefined;
  const pods = (mesh.apps?.pods(NAMESPACE, STABLE) ?? []).filter((p) => {
    const status = p.status as
      | {
          conditions?: Array<{ type: string; status: string }>;
          containerStatuses?: Array<{ name: string; ready: boolean }>;
        }
      | undefined;
    return (
      !p.metadata.deletionTimestamp &&
      (status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True") &&
      (status?.containerStatuses ?? []).some((c) => c.name === "istio-proxy" && c.ready)
    );
  });
  return {
    image: d?.spec.template.spec.containers[0]?.image ?? "",
    replicas: d?.spec.replicas ?? -1,
    readyPods: pods.length,
  };
}

/** The rollout reached its last stage: a stored write gave the canary all traffic. */
export function reachedFull(mesh: Mesh): boolean {
  return storedWrites(mesh).some((w) => canaryShare(w.object) === 100);
}

/**
 * 1 when, after the canary carried all traffic, all traffic went back to a stable that does not run
 * the promoted image or has no ready pod.
 */
export function unservingStable(mesh: Mesh): number {
  const stable = stableView(mesh);
  const unfit = stable.image !== PROMOTED || stable.readyPods === 0;
  return reachedFull(mesh) && canaryShare(currentVs(mesh)) === 0 && unfit ? 1 : 0;
}

/** 1 when a canary that carried all traffic was rolled back: all traffic on a stable still at the old version. */
export function passUndone(mesh: Mesh): number {
  return reachedFull(mesh) && canaryShare(currentVs(mesh)) === 0 && stableView(mesh).image !== PROMOTED
    ? 1
    : 0;
}

export function endOf(mesh: Mesh, run: TimedRun): string {
  const state = stateOf(mesh, STATE_ANNOTATION);
  const stable = stableView(mesh);
  return (
    `final ${weightsOf(currentVs(mesh))}; stable ${stable.image.replace(`${IMAGE}:`, "")} ` +
    `${stable.readyPods}/${stable.replicas} ready; result ${run.outputs.result ?? "none"}, ` +
    `finalized ${run.outputs.finalized ?? "none"}, exit ${run.exitCode}; state ${state ? `${state.status}` : "none"}`
  );
}

/** Calls `fault` once, when the action's `count`-th patch of the VirtualService arrives (before it is served). */
export function atVsPatch(mesh: Mesh, count: number, fault: (mesh: Mesh) => void): void {
  let patches = 0;
  mesh.kube.faultPlan.onRequest((info) => {
    if (info.resource !== "virtualservices" || info.verb !== "patch") return;
    patches += 1;
    if (patches === count) fault(mesh);
  });
}

/**
 * The write that records `finalizing` is the 4th patch with stages 10,50,100 on a healthy canary
 * (one per stage, then the record); these cases check that it is.
 */
export const FINALIZING_WRITE = 4;

/** Calls `edit` 100 ms after the action's template copy onto the stable Deployment is served. */
export function afterTemplateCopy(mesh: Mesh, edit: (mesh: Mesh) => void): void {
  let done = false;
  mesh.kube.faultPlan.onRequest((info) => {
    if (done || info.resource !== "deployments" || info.verb !== "patch" || info.name !== STABLE) return;
    done = true;
    setTimeout(() => edit(mesh), 100);
  });
}
