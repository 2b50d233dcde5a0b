/**
 * Pure builders of the objects the emulator's Deployment controller writes: a Deployment for tests,
 * its ReplicaSets, what Istio's injector adds to a pod, a pod as the
 * ReplicaSet controller creates it, its status as the kubelet reports it, and core/v1 Events.
 */

import { type NotReadyReason, REVISION, seconds, TEMPLATE_HASH } from "./deployments-model.ts";
import type { KubeObject } from "./kube-api.ts";

type Json = Record<string, unknown>;
/** Istio's sidecar injector: on for an `istio-injection=enabled` namespace unless the template opts out. */
export function injectsSidecar(
  namespaceLabels: Record<string, string>,
  template: KubeObject["metadata"],
): boolean {
  const optIn =
    template.labels?.["sidecar.istio.io/inject"] ?? template.annotations?.["sidecar.istio.io/inject"];
  if (optIn === "false") return false;
  return optIn === "true" || namespaceLabels["istio-injection"] === "enabled";
}

/** A pod as the ReplicaSet controller creates it, after Istio's injector when `sidecarImage` is set. */
export function podFor(replicaSet: KubeObject, name: string, sidecarImage: string | undefined): KubeObject {
  const template = structuredClone((replicaSet.spec as Json).template) as { metadata?: Json; spec: Json };
  const labels = { ...((template.metadata?.labels as Record<string, string>) ?? {}) };
  const annotations = { ...((template.metadata?.annotations as Record<string, string>) ?? {}) };
  const containers = [...((template.spec.containers as Json[]) ?? [])];
  if (sidecarImage) {
    const owner = ((replicaSet.metadata.ownerReferences as Json[] | undefined)?.[0]?.name as string) ?? name;
    labels["security.istio.io/tlsMode"] = "istio";
    labels["service.istio.io/canonical-name"] ??= labels["app.kubernetes.io/name"] ?? labels.app ?? owner;
    labels["service.istio.io/canonical-revision"] ??=
      labels["app.kubernetes.io/version"] ?? labels.version ?? "latest";
    annotations["sidecar.istio.io/status"] = JSON.stringify({
      containers: ["istio-proxy"],
      revision: "default",
    });
    annotations["kubectl.kubernetes.io/default-container"] ??= String(containers[0]?.name ?? "");
    containers.push({
      name: "istio-proxy",
      image: sidecarImage,
      args: ["proxy", "sidecar"],
      ports: [{ containerPort: 15090, name: "http-envoy-prom", protocol: "TCP" }],
    });
  }
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      generateName: `${replicaSet.metadata.name}-`,
      namespace: replicaSet.metadata.namespace,
      labels,
      annotations,
      ownerReferences: [ownerReference(replicaSet, "ReplicaSet")],
    },
    spec: { ...template.spec, containers, nodeName: "emulator-node" },
  } as KubeObject;
}

export function ownerReference(owner: KubeObject, kind: string) {
  const apiVersion = kind === "Deployment" || kind === "ReplicaSet" ? "apps/v1" : "v1";
  return {
    apiVersion,
    kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * A pod's status: `creating` before the kubelet started it, `ready`, or not ready because the
 * containers named in `failing` crash-loop or cannot pull their image (the others run).
 */
export function podStatus(
  pod: KubeObject,
  state: "creating" | "started",
  failing: Map<string, NotReadyReason>,
  podIP: string,
  now: number,
): Json {
  const containers = (pod.spec as { containers: Json[] }).containers;
  const at = seconds(now);
  const ready = state === "started" && failing.size === 0;
  const pulling = [...failing.values()].includes("ImagePullBackOff");
  const condition = (type: string, ok: boolean) => ({
    type,
    status: ok ? "True" : "False",
    lastTransitionTime: at,
  });
  return {
    phase: state === "creating" || pulling ? "Pending" : "Running",
    conditions: [
      condition("PodReadyToStartContainers", state === "started"),
      condition("Initialized", true),
      condition("Ready", ready),
      condition("ContainersReady", ready),
      condition("PodScheduled", true),
    ],
    hostIP: "10.0.0.1",
    podIP,
    startTime: at,
    containerStatuses: containers.map((c) => {
      const name = c.name as string;
      const reason = failing.get(name);
      const base = { name, image: c.image, imageID: "", restartCount: reason === "CrashLoopBackOff" ? 1 : 0 };
      if (state === "creating")
        return { ...base, ready: false, started: false, state: { waiting: { reason: "ContainerCreating" } } };
      if (reason === "ImagePullBackOff")
        return {
          ...base,
          ready: false,
          started: false,
          state: { waiting: { reason, message: `Back-off pulling image "${c.image}"` } },
        };
      if (reason === "CrashLoopBackOff") {
        const message = `back-off 10s restarting failed container=${name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
        return {
          ...base,
          ready: false,
          started: false,
          state: { waiting: { reason, message } },
          lastState: { terminated: { exitCode: 1, reason: "Error", startedAt: at, finishedAt: at } },
        };
      }
      return { ...base, ready: true, started: true, state: { running: { startedAt: at } } };
    }),
  };
}

/** Who records an Event and what it says. */
export interface EventSource {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  component: string;
  fieldPath?: string;
}

/** A core/v1 Event as the kubelet or a controller records it. */
export function eventFor(involved: KubeObject, e: EventSource, suffix: string, now: number): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: `${involved.metadata.name}.${suffix}`, namespace: involved.metadata.namespace },
    involvedObject: {
      apiVersion: involved.apiVersion,
      kind: involved.kind,
      namespace: involved.metadata.namespace,
      name: involved.metadata.name,
      uid: involved.metadata.uid,
      resourceVersion: involved.metadata.resourceVersion,
      ...(e.fieldPath ? { fieldPath: e.fieldPath } : {}),
    },
    type: e.type,
    reason: e.reason,
    message: e.message,
    source: { component: e.component },
    reportingComponent: e.component,
    firstTimestamp: seconds(now),
    lastTimestamp: seconds(now),
    count: 1,
  } as KubeObject;
}

/** The kubelet's Warning for a container that crash-loops or whose image cannot be pulled. */
export function kubeletWarning(pod: KubeObject, container: string, reason: NotReadyReason): EventSource {
  const { name, namespace, uid } = pod.metadata;
  const image = ((pod.spec as Json).containers as Json[]).find((c) => c.name === container)?.image;
  const fieldPath = `spec.containers{${container}}`;
  if (reason === "ImagePullBackOff") {
    const message = `Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found`;
    return { type: "Warning", reason: "Failed", component: "kubelet", message, fieldPath };
  }
  const message = `Back-off restarting failed container ${container} in pod ${name}_${namespace}(${uid})`;
  return { type: "Warning", reason: "BackOff", component: "kubelet", message, fieldPath };
}

/** A Deployment in the shape `kubectl create deployment` gives, selected by `labels`. */
export function deploymentManifest(options: {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  image: string;
  replicas?: number;
  container?: string;
  progressDeadlineSeconds?: number;
}): KubeObject {
  const container = options.container ?? options.labels.app ?? options.name;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: options.name, namespace: options.namespace, labels: { ...options.labels } },
    spec: {
      replicas: options.replicas ?? 1,
      ...(options.progressDeadlineSeconds
        ? { progressDeadlineSeconds: options.progressDeadlineSeconds }
        : {}),
      selector: { matchLabels: { ...options.labels } },
      template: {
        metadata: { labels: { ...options.labels } },
        spec: { containers: [{ name: container, image: options.image, ports: [{ containerPort: 8080 }] }] },
      },
    },
  } as KubeObject;
}

/** The ReplicaSet the Deployment controller creates for a template (`<deployment>-<hash>`). */
export function replicaSetFor(deployment: KubeObject, hash: string, rev: number): KubeObject {
  const d = deployment.spec as Json;
  const template = structuredClone(d.template) as { metadata?: Json };
  template.metadata = {
    ...template.metadata,
    labels: { ...((template.metadata?.labels as Json) ?? {}), [TEMPLATE_HASH]: hash },
  };
  const selector = structuredClone(d.selector) as { matchLabels?: Json };
  selector.matchLabels = { ...selector.matchLabels, [TEMPLATE_HASH]: hash };
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `${deployment.metadata.name}-${hash}`,
      namespace: deployment.metadata.namespace,
      labels: template.metadata.labels as Record<string, string>,
      annotations: {
        [REVISION]: String(rev),
        "deployment.kubernetes.io/desired-replicas": String(d.replicas ?? 1),
        "deployment.kubernetes.io/max-replicas": String((d.replicas as number) ?? 1),
      },
      ownerReferences: [ownerReference(deployment, "Deployment")],
    },
    spec: { replicas: 0, minReadySeconds: d.minReadySeconds ?? 0, selector, template },
  } as KubeObject;
}

/**
 * kube-apiserver's `metadata.managedFields` bookkeeping for an Update (server-side field tracking):
 * one entry per manager, operation and subresource, whose `time` is that manager's last write and
 * whose `fieldsV1` holds the fields its writes set (here the spec fields that changed, list items
 * keyed by `name` as for containers). The manager is the request's `fieldManager`, else kubectl's
 * own name (`kubectl-set`, `kubectl-scale`...).
 */
export function recordUpdate(
  next: KubeObject,
  previous: KubeObject | undefined,
  manager: string,
  subresource?: string,
  now = Date.now(),
): void {
  const changed = changedFields(previous?.spec, next.spec);
  const fields: Json = Object.keys(changed).length > 0 || !previous ? { "f:spec": changed } : {};
  const entries = [...((next.metadata.managedFields as Json[] | undefined) ?? [])];
  const at = entries.findIndex(
    (e) => e.manager === manager && e.operation === "Update" && e.subresource === subresource,
  );
  const before = at >= 0 ? (entries[at] as Json) : undefined;
  const entry: Json = {
    manager,
    operation: "Update",
    apiVersion: String(next.apiVersion ?? "apps/v1"),
    time: seconds(now),
    fieldsType: "FieldsV1",
    fieldsV1: mergeFields((before?.fieldsV1 as Json | undefined) ?? {}, fields),
    ...(subresource ? { subresource } : {}),
  };
  if (at >= 0) entries[at] = entry;
  else entries.push(entry);
  next.metadata.managedFields = entries;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The fieldsV1 set of what differs between `a` and `b`: `f:<key>` per field, `k:{"name":...}` per named list item. */
function changedFields(a: unknown, b: unknown): Json {
  const out: Json = {};
  if (!isObject(b)) return out;
  const before = isObject(a) ? a : {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(b)])) {
    const x = before[key];
    const y = b[key];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    if (isObject(y) && isObject(x)) out[`f:${key}`] = changedFields(x, y);
    else if (Array.isArray(y) && y.every((item) => isObject(item) && typeof item.name === "string")) {
      const items: Json = {};
      for (const item of y as Json[]) {
        const old = Array.isArray(x)
          ? (x as Json[]).find((o) => isObject(o) && o.name === item.name)
          : undefined;
        if (JSON.stringify(old) !== JSON.stringify(item))
          items[`k:${JSON.stringify({ name: item.name })}`] = changedFields(old, item);
      }
      out[`f:${key}`] = items;
    } else out[`f:${key}`] = {};
  }
  return out;
}

function mergeFields(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [key, value] of Object.entries(b))
    out[key] = isObject(out[key]) && isObject(value) ? mergeFields(out[key] as Json, value) : value;
  return out;
}
