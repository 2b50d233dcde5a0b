/**
 * A Deployment controller for the Kubernetes API emulator, behaving like kube-controller-manager's
 * for what the action and `kubectl` look at: one ReplicaSet per pod template (`<name>-<hash>`,
 * label `pod-template-hash`, owned by the Deployment), pods created from the template (owned by the
 * ReplicaSet, with Istio's sidecar where the injector would add it), a rolling update that removes
 * an old pod for each new pod that is ready, scale (0 removes every pod), and the Deployment's
 * status: observedGeneration, replica counts and the Available/Progressing conditions, with
 * ProgressDeadlineExceeded after `progressDeadlineSeconds` without progress.
 *
 * Pods become ready `readyDelayMs` after creation, except those running an image that never gets
 * ready (default: any image tagged `:broken`; `breakImage`/`repairImage` change that at run time):
 * their container waits in CrashLoopBackOff or ImagePullBackOff and a Warning Event is recorded.
 *
 * Installing one (`new DeploymentController(kube)`) makes the emulator serve apps/v1 Deployments
 * (with the `scale` and `status` subresources and watch), ReplicaSets and core/v1 Events over HTTP
 * (deployments-api.ts). The controller acts after the write that caused it has been answered, so a
 * client sees `observedGeneration` lag `generation` as on a real cluster.
 */

import { markCapturedByZtunnel } from "./ambient.ts";
import { WorkloadsApi } from "./deployments-api.ts";
import {
  applyDeploymentDefaults,
  deploymentProblems,
  deploymentStatus,
  InvalidDeployment,
  type NotReadyReason,
  podSuffix,
  REVISION,
  type ReplicaSetState,
  rolloutStatus,
  sameJson,
  scalingStep,
  TEMPLATE_HASH,
  templateHash,
} from "./deployments-model.ts";
import {
  type EventSource,
  eventFor,
  injectsSidecar,
  kubeletWarning,
  podFor,
  podStatus,
  recordUpdate,
  replicaSetFor,
} from "./deployments-objects.ts";
import type { KubeApiEmulator, KubeObject } from "./kube-api.ts";

export type { NotReadyReason } from "./deployments-model.ts";
export { deploymentManifest } from "./deployments-objects.ts";

export interface DeploymentControllerOptions {
  /** How long a new pod takes to become ready. Default 200 ms. */
  readyDelayMs?: number;
  /** How long after a write the controller acts on it. Default 0 (right after the answer). */
  reconcileDelayMs?: number;
  /** The rule for images that never become ready. Default: a `:broken` tag crash-loops. */
  neverReady?: (image: string) => NotReadyReason | undefined;
  /** Istio's proxy image in injected pods. */
  sidecarImage?: string;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";
export interface Change {
  type: WatchEventType;
  resource: string;
  object: KubeObject;
}

type Json = Record<string, unknown>;
const spec = (o: KubeObject) => (o.spec ?? {}) as Json;
const ownedBy = (o: KubeObject, owner: KubeObject) =>
  ((o.metadata.ownerReferences as Json[] | undefined) ?? []).some((r) => r.uid === owner.metadata.uid);
const revision = (rs: KubeObject) => Number(rs.metadata.annotations?.[REVISION] ?? 0);
const isReady = (pod: KubeObject) =>
  ((pod.status as Json | undefined)?.conditions as Json[] | undefined)?.some(
    (c) => c.type === "Ready" && c.status === "True",
  ) ?? false;

export class DeploymentController {
  readonly api: WorkloadsApi;
  private readonly readyDelayMs: number;
  private readonly reconcileDelayMs: number;
  private readonly rule: (image: string) => NotReadyReason | undefined;
  private readonly sidecarImage: string;
  /** Images set never-ready or ready at run time, overriding the rule. */
  private readonly imageOverrides = new Map<string, NotReadyReason | "ready">();
  private readonly listeners = new Set<(change: Change) => void>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly deadlines = new Map<string, NodeJS.Timeout>();
  /** Per Deployment uid: when it last made progress (for progressDeadlineSeconds). */
  private readonly lastProgress = new Map<string, number>();
  private sequence = 0;

  readonly kube: KubeApiEmulator;

  constructor(kube: KubeApiEmulator, options: DeploymentControllerOptions = {}) {
    this.kube = kube;
    this.readyDelayMs = options.readyDelayMs ?? 200;
    this.reconcileDelayMs = options.reconcileDelayMs ?? 0;
    this.rule =
      options.neverReady ?? ((image) => (image.endsWith(":broken") ? "CrashLoopBackOff" : undefined));
    this.sidecarImage = options.sidecarImage ?? "docker.io/istio/proxyv2:1.24.0";
    this.api = new WorkloadsApi(kube, this);
    kube.workloads = this.api;
    // Like a controller manager starting: Deployments already stored (kube.seed) are synced too.
    for (const d of kube.list("deployments"))
      this.reconcileSoon(d.metadata.namespace as string, d.metadata.name);
  }

  // ---- For tests: the user's own writes (kubectl apply / set image) and the cluster's faults ----

  /** Creates a Deployment as `kubectl apply` would (defaults, validation); the controller rolls it out. */
  create(deployment: KubeObject): KubeObject {
    const next = structuredClone(deployment);
    applyDeploymentDefaults(next);
    this.validate(next);
    recordUpdate(next, undefined, "kubectl-client-side-apply");
    const stored = this.add("deployments", next);
    this.reconcileSoon(stored.metadata.namespace as string, stored.metadata.name);
    return stored;
  }

  /**
   * Another writer edits a Deployment (a user's `kubectl set image`, field manager `kubectl-set`);
   * the controller follows. `manager` and `subresource` go into managedFields as the API server records them.
   */
  edit(
    namespace: string,
    name: string,
    change: (deployment: KubeObject) => void,
    manager = "kubectl-set",
    subresource?: "scale",
  ): KubeObject {
    const previous = this.kube.get("deployments", namespace, name);
    const stored = this.write("deployments", namespace, name, (d) => {
      change(d);
      applyDeploymentDefaults(d);
      this.validate(d, previous);
      recordUpdate(d, previous, manager, subresource);
    });
    this.reconcileSoon(namespace, name);
    return stored;
  }

  /** Pods with `image` stop becoming ready from now on (existing ready pods keep running). */
  breakImage(image: string, reason: NotReadyReason = "CrashLoopBackOff"): void {
    this.imageOverrides.set(image, reason);
  }

  /** Pods with `image` can start again: those waiting in a back-off become ready after the delay. */
  repairImage(image: string): void {
    this.imageOverrides.set(image, "ready");
    for (const pod of this.kube.list("pods")) {
      const images = (spec(pod).containers as Json[]).map((c) => c.image);
      if (!isReady(pod) && images.includes(image)) this.startLater(pod);
    }
  }

  /** The pods a Deployment owns through its ReplicaSets. */
  pods(namespace: string, name: string): KubeObject[] {
    const deployment = this.kube.get("deployments", namespace, name);
    if (!deployment) return [];
    const sets = this.kube.list("replicasets", namespace).filter((rs) => ownedBy(rs, deployment));
    return this.kube.list("pods", namespace).filter((p) => sets.some((rs) => ownedBy(p, rs)));
  }

  /** Resolves once `kubectl rollout status` would say the Deployment rolled out; rejects as it would fail. */
  async rolledOut(namespace: string, name: string, timeoutMs = 10_000): Promise<KubeObject> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const deployment = this.kube.get("deployments", namespace, name);
      if (!deployment) throw new Error(`deployments.apps "${name}" not found`);
      const verdict = rolloutStatus(deployment);
      if (verdict.error) throw new Error(verdict.error);
      if (verdict.done) return deployment;
      if (Date.now() > deadline) throw new Error(`timed out: ${verdict.message}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Cancels pending readiness, reconcile and deadline timers. */
  stop(): void {
    for (const t of [...this.timers, ...this.pending.values()]) clearTimeout(t);
    this.timers.clear();
    this.pending.clear();
  }

  // ---- For the HTTP API: every write of the controller's resources, so watches see it ----

  subscribe(listener: (change: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  validate(next: KubeObject, previous?: KubeObject): void {
    const problems = deploymentProblems(next, previous);
    if (problems.length > 0) throw new InvalidDeployment(next.metadata.name, problems);
  }

  add(resource: string, object: KubeObject): KubeObject {
    return this.emit("ADDED", resource, this.kube.seed(resource, object));
  }

  write(resource: string, namespace: string, name: string, change: (o: KubeObject) => void): KubeObject {
    return this.emit("MODIFIED", resource, this.kube.editOutOfBand(resource, namespace, name, change));
  }

  /** Deletes an object and, as the garbage collector's background propagation, what it owns. */
  delete(resource: string, namespace: string, name: string): KubeObject | undefined {
    const removed = this.kube.remove(resource, namespace, name);
    if (!removed) return undefined;
    this.emit("DELETED", resource, removed);
    const dependents = resource === "deployments" ? "replicasets" : resource === "replicasets" ? "pods" : "";
    if (dependents) {
      for (const o of this.kube.list(dependents, namespace)) {
        if (ownedBy(o, removed)) this.delete(dependents, namespace, o.metadata.name);
      }
    }
    return removed;
  }

  reconcileSoon(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (this.pending.has(key)) return;
    const timer = setTimeout(() => {
      this.pending.delete(key);
      this.reconcile(namespace, name);
    }, this.reconcileDelayMs);
    timer.unref();
    this.pending.set(key, timer);
  }

  // ---- The controller ----

  private emit(type: WatchEventType, resource: string, object: KubeObject): KubeObject {
    for (const listener of this.listeners) listener({ type, resource, object: structuredClone(object) });
    return object;
  }

  private later(ms: number, run: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    timer.unref();
    this.timers.add(timer);
    return timer;
  }

  private reconcile(namespace: string, name: string): void {
    const deployment = this.kube.get("deployments", namespace, name);
    if (!deployment) return;
    const uid = deployment.metadata.uid as string;
    const now = Date.now();
    if (!this.lastProgress.has(uid)) this.lastProgress.set(uid, now);
    const desired = (spec(deployment).replicas as number | undefined) ?? 1;
    const hash = templateHash(spec(deployment).template);
    const owned = () => this.kube.list("replicasets", namespace).filter((rs) => ownedBy(rs, deployment));
    const newest = Math.max(0, ...owned().map(revision));
    const found = owned().find((rs) => rs.metadata.labels?.[TEMPLATE_HASH] === hash);
    const newName = found?.metadata.name ?? `${name}-${hash}`;
    if (!found) this.add("replicasets", replicaSetFor(deployment, hash, newest + 1));
    else if (revision(found) < newest) {
      // Back to an older template: its ReplicaSet becomes the newest revision again.
      this.write("replicasets", namespace, newName, (rs) => {
        rs.metadata.annotations = { ...rs.metadata.annotations, [REVISION]: String(newest + 1) };
      });
    }
    // Scale step by step (each step creates or deletes pods) until nothing moves.
    for (let step = 0; step < 20; step++) {
      const states = owned().map((rs) => ({
        name: rs.metadata.name,
        replicas: (spec(rs).replicas as number) ?? 0,
        ready: this.podsOf(rs).filter(isReady).length,
        revision: revision(rs),
      }));
      const current = states.find((rs) => rs.name === newName) as ReplicaSetState;
      const changes = scalingStep(
        spec(deployment),
        desired,
        current,
        states.filter((rs) => rs !== current),
      );
      if (changes.size === 0) break;
      for (const [rsName, replicas] of changes) this.scale(deployment, rsName, replicas);
    }
    const sets = owned();
    for (const rs of sets) this.syncReplicaSetStatus(rs);
    const pods = sets.flatMap((rs) => this.podsOf(rs));
    const newSet = sets.find((rs) => rs.metadata.name === newName) as KubeObject;
    const { status, progressed, complete } = deploymentStatus({
      deployment,
      counts: {
        total: pods.length,
        updated: this.podsOf(newSet).length,
        ready: pods.filter(isReady).length,
        wanted: sets.reduce((sum, rs) => sum + ((spec(rs).replicas as number) ?? 0), 0),
      },
      newReplicaSet: newName,
      createdReplicaSet: !found,
      lastProgressMs: this.lastProgress.get(uid) ?? now,
      now,
    });
    if (progressed) this.lastProgress.set(uid, now);
    const revisionNow = String(revision(newSet));
    if (!sameJson(status, deployment.status) || deployment.metadata.annotations?.[REVISION] !== revisionNow) {
      this.write("deployments", namespace, name, (d) => {
        d.status = status;
        d.metadata.annotations = { ...d.metadata.annotations, [REVISION]: revisionNow };
      });
    }
    const timedOut = status.conditions?.some((c) => c.reason === "ProgressDeadlineExceeded");
    if (!complete && !timedOut) {
      const deadlineMs = ((spec(deployment).progressDeadlineSeconds as number) ?? 600) * 1000;
      const due = (this.lastProgress.get(uid) ?? now) + deadlineMs - now;
      // One deadline check per Deployment: a later sync replaces the one scheduled before.
      const key = `${namespace}/${name}`;
      const previous = this.deadlines.get(key);
      if (previous) {
        clearTimeout(previous);
        this.timers.delete(previous);
      }
      this.deadlines.set(
        key,
        this.later(Math.max(due, 0) + 5, () => this.reconcileSoon(namespace, name)),
      );
    }
  }

  private podsOf(replicaSet: KubeObject): KubeObject[] {
    return this.kube
      .list("pods", replicaSet.metadata.namespace)
      .filter((p) => ownedBy(p, replicaSet))
      .sort((a, b) =>
        String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)),
      );
  }

  /** Sets a ReplicaSet's replicas, then creates or deletes its pods to match, as the ReplicaSet controller. */
  private scale(deployment: KubeObject, rsName: string, replicas: number): void {
    const namespace = deployment.metadata.namespace as string;
    const before = this.kube.get("replicasets", namespace, rsName) as KubeObject;
    const from = (spec(before).replicas as number) ?? 0;
    const rs = this.write("replicasets", namespace, rsName, (o) => {
      (o.spec as Json).replicas = replicas;
      const annotations = { ...o.metadata.annotations };
      annotations["deployment.kubernetes.io/desired-replicas"] = String(spec(deployment).replicas ?? 1);
      o.metadata.annotations = annotations;
    });
    const direction = replicas > from ? "up" : "down";
    const message = `Scaled ${direction} replica set ${rsName} to ${replicas} from ${from}`;
    this.record(deployment, {
      type: "Normal",
      reason: "ScalingReplicaSet",
      component: "deployment-controller",
      message,
    });
    const pods = this.podsOf(rs);
    const namespaceLabels = this.kube.get("namespaces", undefined, namespace)?.metadata.labels ?? {};
    const template = (spec(rs).template as KubeObject | undefined)?.metadata ?? { name: "" };
    const sidecar = injectsSidecar(namespaceLabels, template) ? this.sidecarImage : undefined;
    for (let i = pods.length; i < replicas; i++) {
      this.sequence += 1;
      const pod = podFor(rs, `${rsName}-${podSuffix(`${rsName}/${this.sequence}`)}`, sidecar);
      if (!sidecar) markCapturedByZtunnel(pod, namespaceLabels);
      pod.status = podStatus(pod, "creating", new Map(), this.podIP(), Date.now());
      this.startLater(this.add("pods", pod));
    }
    // Scale down: pods that are not ready go first, then the newest (controller.ActivePods order).
    const victims = [...pods].reverse().sort((a, b) => Number(isReady(a)) - Number(isReady(b)));
    for (const pod of victims.slice(0, Math.max(0, pods.length - replicas))) {
      this.delete("pods", namespace, pod.metadata.name);
    }
  }

  private syncReplicaSetStatus(rs: KubeObject): void {
    const pods = this.podsOf(rs);
    const ready = pods.filter(isReady).length;
    const next: Json = { replicas: pods.length, observedGeneration: rs.metadata.generation };
    if (pods.length) next.fullyLabeledReplicas = pods.length;
    if (ready) Object.assign(next, { readyReplicas: ready, availableReplicas: ready });
    if (sameJson(next, rs.status)) return;
    this.write("replicasets", rs.metadata.namespace as string, rs.metadata.name, (o) => {
      o.status = next;
    });
  }

  private podIP(): string {
    return `10.244.${(this.sequence >> 8) & 255}.${this.sequence & 255}`;
  }

  /** The kubelet starts a pod after the delay: ready, or stuck on an image that never gets ready. */
  private startLater(pod: KubeObject): void {
    const namespace = pod.metadata.namespace as string;
    this.later(this.readyDelayMs, () => {
      const current = this.kube.get("pods", namespace, pod.metadata.name);
      if (!current) return;
      const failing = new Map<string, NotReadyReason>();
      for (const c of spec(current).containers as Json[]) {
        const reason = this.notReady(String(c.image));
        if (reason && c.name !== "istio-proxy") failing.set(c.name as string, reason);
      }
      const ip = String((current.status as Json | undefined)?.podIP ?? this.podIP());
      const started = this.write("pods", namespace, current.metadata.name, (p) => {
        p.status = podStatus(p, "started", failing, ip, Date.now());
      });
      for (const [container, reason] of failing)
        this.record(started, kubeletWarning(started, container, reason));
      const rsName = (started.metadata.ownerReferences as Json[] | undefined)?.[0]?.name as
        | string
        | undefined;
      const rs = rsName ? this.kube.get("replicasets", namespace, rsName) : undefined;
      const owner = (rs?.metadata.ownerReferences as Json[] | undefined)?.[0]?.name as string | undefined;
      if (owner) this.reconcileSoon(namespace, owner);
    });
  }

  private notReady(image: string): NotReadyReason | undefined {
    const override = this.imageOverrides.get(image);
    if (override) return override === "ready" ? undefined : override;
    return this.rule(image);
  }

  private record(involved: KubeObject, event: EventSource): void {
    this.sequence += 1;
    const suffix = this.sequence.toString(16).padStart(16, "0");
    this.add("events", eventFor(involved, event, suffix, Date.now()));
  }
}
