/**
 * Pure rules of the emulator's Deployment controller, after kube-controller-manager's
 * pkg/controller/deployment and the apps/v1 API's defaulting and validation: the pod-template
 * hash, defaults, validation, a Deployment's status and conditions, kubectl's own reading of a
 * rollout (`kubectl rollout status`), and strategic merge patch for pod templates. No I/O here.
 */
import { type KubeObject, matchesLabelSelector } from "./kube-api.ts";

export const TEMPLATE_HASH = "pod-template-hash";
export const REVISION = "deployment.kubernetes.io/revision";
/** Why a pod never becomes ready, as its container's `waiting.reason` says. */
export type NotReadyReason = "CrashLoopBackOff" | "ImagePullBackOff";

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}
export interface Condition {
  type: string;
  status: "True" | "False";
  reason: string;
  message: string;
  lastUpdateTime: string;
  lastTransitionTime: string;
}
export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: Condition[];
}
type Json = Record<string, unknown>;

export const seconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, canonical((value as Json)[k])]),
  );
}
/** Equality that ignores key order (a PUT may serialise fields in another order). */
export const sameJson = (a: unknown, b: unknown) =>
  JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

/** Kubernetes' rand.SafeEncodeString alphabet: no vowels, no look-alike digits. */
const SAFE = "bcdfghjklmnpqrstvwxz2456789";
/** controller.ComputeHash: FNV-32a of the template, its decimal digits safe-encoded. */
export function templateHash(template: unknown, collisionCount = 0): string {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(JSON.stringify(canonical(template)) + (collisionCount || ""))) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return [...String(hash)].map((c) => SAFE[c.charCodeAt(0) % SAFE.length]).join("");
}

/** A deterministic 5-character pod-name suffix, as the ReplicaSet controller's generateName. */
export const podSuffix = (seed: string) => templateHash(seed).slice(-5).padStart(5, "b");

export function selectorString(selector: LabelSelector | undefined): string {
  const parts = Object.entries(selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = `(${(e.values ?? []).join(",")})`;
    if (e.operator === "In") parts.push(`${e.key} in ${values}`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin ${values}`);
    else if (e.operator === "Exists") parts.push(e.key);
    else parts.push(`!${e.key}`);
  }
  return parts.join(",");
}

/** apps/v1 defaulting (SetDefaults_Deployment and the pod spec's), applied on every write. */
export function applyDeploymentDefaults(deployment: KubeObject): void {
  deployment.spec ??= {};
  const spec = deployment.spec as Json;
  spec.replicas ??= 1;
  spec.revisionHistoryLimit ??= 10;
  spec.progressDeadlineSeconds ??= 600;
  spec.strategy ??= { type: "RollingUpdate" };
  const strategy = spec.strategy as Json;
  if (strategy.type === "RollingUpdate")
    strategy.rollingUpdate ??= { maxSurge: "25%", maxUnavailable: "25%" };
  spec.template ??= {};
  const template = spec.template as Json;
  // Go's ObjectMeta drops the `creationTimestamp: null` kubectl sends (rollout undo, apply).
  const templateMeta = template.metadata as Json | undefined;
  if (templateMeta && templateMeta.creationTimestamp === null) delete templateMeta.creationTimestamp;
  template.spec ??= {};
  const podSpec = template.spec as Json;
  podSpec.restartPolicy ??= "Always";
  podSpec.terminationGracePeriodSeconds ??= 30;
  podSpec.dnsPolicy ??= "ClusterFirst";
  podSpec.schedulerName ??= "default-scheduler";
  podSpec.securityContext ??= {};
  for (const c of [
    ...((podSpec.containers as Json[]) ?? []),
    ...((podSpec.initContainers as Json[]) ?? []),
  ]) {
    const image = String(c.image ?? "");
    const tagged = /:[^/]+$/.test(image.split("@")[0] ?? "");
    c.imagePullPolicy ??= !tagged || image.endsWith(":latest") ? "Always" : "IfNotPresent";
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    c.resources ??= {};
    for (const port of (c.ports as Json[] | undefined) ?? []) port.protocol ??= "TCP";
  }
}

/** apps/v1 validation of a Deployment: field and message of each problem (empty when valid). */
export function deploymentProblems(next: KubeObject, previous?: KubeObject): Array<[string, string]> {
  const spec = (next.spec ?? {}) as Json;
  const selector = spec.selector as LabelSelector | undefined;
  const template = (spec.template ?? {}) as { metadata?: { labels?: Record<string, string> }; spec?: Json };
  const problems: Array<[string, string]> = [];
  if (!selector || selectorString(selector) === "") problems.push(["spec.selector", "Required value"]);
  else if (!matchesLabelSelector(selectorString(selector), template.metadata?.labels ?? {})) {
    problems.push([
      "spec.template.metadata.labels",
      `Invalid value: ${JSON.stringify(template.metadata?.labels ?? {})}: \`selector\` does not match template \`labels\``,
    ]);
  }
  const previousSelector = (previous?.spec as Json | undefined)?.selector;
  if (previous && !sameJson(previousSelector, selector)) {
    problems.push(["spec.selector", `Invalid value: ${JSON.stringify(selector)}: field is immutable`]);
  }
  const containers = template.spec?.containers;
  if (!Array.isArray(containers) || containers.length === 0)
    problems.push(["spec.template.spec.containers", "Required value"]);
  const replicas = spec.replicas;
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0)
    problems.push([
      "spec.replicas",
      `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`,
    ]);
  return problems;
}

/** maxSurge and maxUnavailable resolved against the desired replicas (deployment/util ResolveFenceposts). */
export function fenceposts(spec: Json, desired: number): { surge: number; unavailable: number } {
  const strategy = spec.strategy as
    | { type?: string; rollingUpdate?: Record<string, number | string> }
    | undefined;
  if (strategy?.type === "Recreate") return { surge: 0, unavailable: 0 };
  const rolling = strategy?.rollingUpdate;
  const resolve = (value: number | string | undefined, round: (n: number) => number) =>
    typeof value === "number" ? value : round((desired * Number.parseInt(value ?? "25%", 10)) / 100);
  const surge = resolve(rolling?.maxSurge, Math.ceil);
  const unavailable = resolve(rolling?.maxUnavailable, Math.floor);
  return { surge, unavailable: surge === 0 && unavailable === 0 ? 1 : unavailable };
}

export interface ReplicaSetState {
  name: string;
  replicas: number;
  /** Ready pods (available: minReadySeconds is not modelled). */
  ready: number;
  revision: number;
}

/**
 * One sync of the Deployment controller's scaling (rolling.go, recreate.go): the ReplicaSets whose
 * replicas change and to what. The new ReplicaSet grows within maxSurge; old ones shrink first by
 * their unhealthy pods, then while more than desired - maxUnavailable pods stay available. Applied
 * again after every change until nothing moves.
 */
export function scalingStep(
  spec: Json,
  desired: number,
  current: ReplicaSetState,
  old: ReplicaSetState[],
): Map<string, number> {
  const next = new Map<string, number>();
  const oldest = [...old].sort((a, b) => a.revision - b.revision);
  const oldTotal = old.reduce((sum, rs) => sum + rs.replicas, 0);
  const scaleOld = (replicas: (rs: ReplicaSetState) => number) => {
    for (const rs of oldest) if (replicas(rs) !== rs.replicas) next.set(rs.name, replicas(rs));
  };
  if (desired === 0 || (spec.strategy as Json | undefined)?.type === "Recreate") {
    scaleOld(() => 0);
    if (oldTotal === 0 && current.replicas !== desired) next.set(current.name, desired);
    if (desired === 0 && current.replicas !== 0) next.set(current.name, 0);
    return next;
  }
  if (oldTotal === 0 || current.replicas > desired) {
    if (current.replicas !== desired) next.set(current.name, desired);
    return next;
  }
  const { surge, unavailable } = fenceposts(spec, desired);
  const room = desired + surge - (oldTotal + current.replicas);
  const newReplicas =
    room > 0 ? current.replicas + Math.min(room, desired - current.replicas) : current.replicas;
  if (newReplicas !== current.replicas) return next.set(current.name, newReplicas);
  const minAvailable = desired - unavailable;
  const maxScaledDown = oldTotal + newReplicas - minAvailable - (newReplicas - current.ready);
  if (maxScaledDown <= 0) return next;
  const after = new Map(old.map((rs) => [rs.name, rs.replicas]));
  let cleaned = 0;
  for (const rs of oldest) {
    const n = Math.min(rs.replicas - rs.ready, maxScaledDown - cleaned);
    if (n <= 0) continue;
    after.set(rs.name, rs.replicas - n);
    cleaned += n;
  }
  const available =
    current.ready + old.reduce((sum, rs) => sum + Math.min(rs.ready, after.get(rs.name) ?? 0), 0);
  let scaleDown = available - minAvailable;
  for (const rs of oldest) {
    const replicas = after.get(rs.name) ?? 0;
    const n = Math.min(replicas, scaleDown);
    if (n <= 0) continue;
    after.set(rs.name, replicas - n);
    scaleDown -= n;
  }
  scaleOld((rs) => after.get(rs.name) ?? 0);
  return next;
}

export interface PodCounts {
  /** Pods of every ReplicaSet the Deployment owns, new and old. */
  total: number;
  /** Pods of the ReplicaSet of the current template. */
  updated: number;
  ready: number;
  /** Sum of the owned ReplicaSets' spec.replicas. */
  wanted: number;
}

const positive = (n: number) => (n > 0 ? n : undefined);

/**
 * The Deployment's status after a sync (sync.go calculateStatus and progress.go): counts, the
 * Available condition, and Progressing, which turns to ProgressDeadlineExceeded once no progress
 * was seen for progressDeadlineSeconds (`lastProgressMs`, kept by the caller).
 */
export function deploymentStatus(input: {
  deployment: KubeObject;
  counts: PodCounts;
  newReplicaSet: string;
  createdReplicaSet: boolean;
  lastProgressMs: number;
  now: number;
}): { status: DeploymentStatus; progressed: boolean; complete: boolean } {
  const { deployment, counts, newReplicaSet, now } = input;
  const spec = deployment.spec as Json;
  const previous = (deployment.status ?? {}) as DeploymentStatus;
  const desired = (spec.replicas as number | undefined) ?? 1;
  const generation = deployment.metadata.generation as number;
  const status: DeploymentStatus = {
    observedGeneration: generation,
    replicas: positive(counts.total),
    updatedReplicas: positive(counts.updated),
    readyReplicas: positive(counts.ready),
    availableReplicas: positive(counts.ready),
    unavailableReplicas: positive(counts.wanted - counts.ready),
  };
  const old = (s: DeploymentStatus) => (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  const progressed =
    input.createdReplicaSet ||
    (status.updatedReplicas ?? 0) > (previous.updatedReplicas ?? 0) ||
    old(status) < old(previous) ||
    (status.readyReplicas ?? 0) > (previous.readyReplicas ?? 0);
  const complete = counts.updated === desired && counts.total === desired && counts.ready === desired;
  const conditions = previous.conditions ?? [];
  const set = (c: Omit<Condition, "lastUpdateTime" | "lastTransitionTime">, touch: boolean): Condition => {
    const before = conditions.find((p) => p.type === c.type);
    const same = before?.status === c.status && before?.reason === c.reason;
    return {
      ...c,
      lastUpdateTime: same && !touch ? before.lastUpdateTime : seconds(now),
      lastTransitionTime: before?.status === c.status ? before.lastTransitionTime : seconds(now),
    };
  };
  const availableEnough = counts.ready >= desired - fenceposts(spec, desired).unavailable;
  const available = set(
    availableEnough
      ? {
          type: "Available",
          status: "True",
          reason: "MinimumReplicasAvailable",
          message: "Deployment has minimum availability.",
        }
      : {
          type: "Available",
          status: "False",
          reason: "MinimumReplicasUnavailable",
          message: "Deployment does not have minimum availability.",
        },
    false,
  );
  const rs = `ReplicaSet "${newReplicaSet}"`;
  const deadlineMs = ((spec.progressDeadlineSeconds as number | undefined) ?? 600) * 1000;
  const before = conditions.find((c) => c.type === "Progressing");
  let progressing: Condition;
  if (complete) {
    progressing = set(
      {
        type: "Progressing",
        status: "True",
        reason: "NewReplicaSetAvailable",
        message: `${rs} has successfully progressed.`,
      },
      false,
    );
  } else if (progressed) {
    const reason = input.createdReplicaSet ? "NewReplicaSetCreated" : "ReplicaSetUpdated";
    const message = input.createdReplicaSet
      ? `Created new replica set "${newReplicaSet}"`
      : `${rs} is progressing.`;
    progressing = set({ type: "Progressing", status: "True", reason, message }, true);
  } else if (before?.reason !== "ProgressDeadlineExceeded" && now - input.lastProgressMs >= deadlineMs) {
    progressing = set(
      {
        type: "Progressing",
        status: "False",
        reason: "ProgressDeadlineExceeded",
        message: `${rs} has timed out progressing.`,
      },
      true,
    );
  } else {
    progressing =
      before ??
      set(
        {
          type: "Progressing",
          status: "True",
          reason: "ReplicaSetUpdated",
          message: `${rs} is progressing.`,
        },
        true,
      );
  }
  status.conditions = [available, progressing];
  return { status, progressed, complete };
}

/** kubectl's DeploymentStatusViewer (`kubectl rollout status`): its message, done, or its error. */
export function rolloutStatus(deployment: KubeObject): { done: boolean; message: string; error?: string } {
  const name = deployment.metadata.name;
  const spec = deployment.spec as Json;
  const status = (deployment.status ?? {}) as DeploymentStatus;
  if ((deployment.metadata.generation as number) > (status.observedGeneration ?? 0))
    return { done: false, message: "Waiting for deployment spec update to be observed..." };
  if (status.conditions?.some((c) => c.type === "Progressing" && c.reason === "ProgressDeadlineExceeded"))
    return { done: false, message: "", error: `deployment "${name}" exceeded its progress deadline` };
  const desired = (spec.replicas as number | undefined) ?? 1;
  const updated = status.updatedReplicas ?? 0;
  const wait = `Waiting for deployment "${name}" rollout to finish: `;
  if (updated < desired)
    return { done: false, message: `${wait}${updated} out of ${desired} new replicas have been updated...` };
  if ((status.replicas ?? 0) > updated)
    return {
      done: false,
      message: `${wait}${(status.replicas ?? 0) - updated} old replicas are pending termination...`,
    };
  if ((status.availableReplicas ?? 0) < updated)
    return {
      done: false,
      message: `${wait}${status.availableReplicas ?? 0} of ${updated} updated replicas are available...`,
    };
  return { done: true, message: `deployment "${name}" successfully rolled out` };
}

/** A Deployment the apps/v1 validation refuses (422 Invalid), with each field's problem. */
export class InvalidDeployment extends Error {
  readonly deployment: string;
  readonly problems: Array<[string, string]>;
  constructor(deployment: string, problems: Array<[string, string]>) {
    super(`Deployment.apps "${deployment}" is invalid: ${problems.map(([f, m]) => `${f}: ${m}`).join(", ")}`);
    this.deployment = deployment;
    this.problems = problems;
  }
}
