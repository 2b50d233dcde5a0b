/**
 * Pure HTTP representations of the emulator's apps/v1 API (deployments-api.ts serves them): the
 * discovery documents, selectors, the autoscaling/v1 Scale view, the three patch flavours, the
 * server-side Tables `kubectl get` prints, and `Status` errors.
 */
import fastJsonPatch, { type Operation } from "fast-json-patch";
import { selectorString } from "./deployments-model.ts";
import { applyMergePatch, type KubeObject, matchesLabelSelector, status, type Verb } from "./kube-api.ts";

export type Json = Record<string, unknown>;
export type StatusBody = ReturnType<typeof status>;
export class ApiError extends Error {
  readonly body: StatusBody;
  constructor(body: StatusBody) {
    super(body.message);
    this.body = body;
  }
}

export const VERBS: Record<string, Verb[]> = {
  deployments: ["get", "list", "watch", "create", "update", "patch", "delete"],
  "deployments/scale": ["get", "update", "patch"],
  "deployments/status": ["get", "update", "patch"],
  replicasets: ["get", "list", "watch", "delete"],
  "replicasets/status": ["get"],
  events: ["get", "list", "watch"],
  // Only the Tables `kubectl get pods` asks for: the emulator itself serves pods otherwise.
  pods: ["get", "list"],
};

export const resourceEntry = (name: string, kind: string, verbs: Verb[], extra: Json = {}) => ({
  name,
  singularName: name.includes("/") ? "" : kind.toLowerCase(),
  namespaced: true,
  kind,
  verbs,
  ...extra,
});
export const APPS_V1 = {
  kind: "APIResourceList",
  apiVersion: "v1",
  groupVersion: "apps/v1",
  resources: [
    resourceEntry("deployments", "Deployment", VERBS.deployments as Verb[], {
      shortNames: ["deploy"],
      categories: ["all"],
    }),
    resourceEntry("deployments/scale", "Scale", ["get", "patch", "update"], {
      group: "autoscaling",
      version: "v1",
    }),
    resourceEntry("deployments/status", "Deployment", ["get", "patch", "update"]),
    resourceEntry("replicasets", "ReplicaSet", VERBS.replicasets as Verb[], {
      shortNames: ["rs"],
      categories: ["all"],
    }),
    resourceEntry("replicasets/status", "ReplicaSet", ["get"]),
  ],
};
export const APPS_GROUP = {
  kind: "APIGroup",
  apiVersion: "v1",
  name: "apps",
  versions: [{ groupVersion: "apps/v1", version: "v1" }],
  preferredVersion: { groupVersion: "apps/v1", version: "v1" },
};

export const rv = (o: KubeObject) => Number(o.metadata.resourceVersion ?? 0);

/** labelSelector and fieldSelector (dotted paths: metadata.name, involvedObject.name, ...). */
export function selects(query: URLSearchParams): (o: KubeObject) => boolean {
  const labels = query.get("labelSelector") ?? "";
  const fields = (query.get("fieldSelector") ?? "").split(",").filter(Boolean);
  return (o) =>
    matchesLabelSelector(labels, o.metadata.labels ?? {}) &&
    fields.every((requirement) => {
      const m = /^([\w.]+)\s*(!=|==|=)\s*(.*)$/.exec(requirement);
      if (!m)
        throw new ApiError(
          status(400, "BadRequest", `invalid selector: '${requirement}'; can't understand '${requirement}'`),
        );
      const value = (m[1] as string).split(".").reduce<unknown>((v, k) => (v as Json | undefined)?.[k], o);
      return (String(value ?? "") === m[3]) === (m[2] !== "!=");
    });
}

export function scaleOf(deployment: KubeObject): KubeObject {
  const { name, namespace, uid, resourceVersion, creationTimestamp } = deployment.metadata;
  const spec = deployment.spec as Json;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: { name, namespace, uid, resourceVersion, creationTimestamp } as KubeObject["metadata"],
    spec: { replicas: spec.replicas ?? 1 },
    status: {
      replicas: (deployment.status as Json | undefined)?.replicas ?? 0,
      selector: selectorString(spec.selector as Json),
    },
  };
}

export function patched(view: KubeObject, contentType: string, body: string): KubeObject {
  const mediaType = contentType.split(";")[0]?.trim();
  if (mediaType === "application/json-patch+json") {
    const ops = parseBody(body);
    if (!Array.isArray(ops))
      throw new ApiError(
        status(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
      );
    try {
      return fastJsonPatch.applyPatch(structuredClone(view), ops as Operation[], true, false).newDocument;
    } catch {
      // As kube-apiserver (kubernetes PR 68346): a patch that cannot be applied is 422 Invalid.
      throw new ApiError(
        status(422, "Invalid", "the server rejected our request due to an error in our request", {}),
      );
    }
  }
  if (mediaType === "application/merge-patch+json")
    return applyMergePatch(view, parseBody(body)) as KubeObject;
  if (mediaType === "application/strategic-merge-patch+json")
    return strategicMerge(view, parseBody(body)) as KubeObject;
  throw new ApiError(
    status(
      415,
      "UnsupportedMediaType",
      "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
    ),
  );
}

/** kubectl's HumanDuration, as the AGE column shows it. */
export function age(created: unknown): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(String(created))) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  return `${Math.floor(m / 60)}h`;
}

type Column = [name: string, type: string, priority: number];
const COLUMNS: Record<string, Column[]> = {
  deployments: [
    ["Name", "string", 0],
    ["Ready", "string", 0],
    ["Up-to-date", "integer", 0],
    ["Available", "integer", 0],
    ["Age", "string", 0],
    ["Containers", "string", 1],
    ["Images", "string", 1],
    ["Selector", "string", 1],
  ],
  replicasets: [
    ["Name", "string", 0],
    ["Desired", "integer", 0],
    ["Current", "integer", 0],
    ["Ready", "integer", 0],
    ["Age", "string", 0],
    ["Containers", "string", 1],
    ["Images", "string", 1],
    ["Selector", "string", 1],
  ],
  pods: [
    ["Name", "string", 0],
    ["Ready", "string", 0],
    ["Status", "string", 0],
    ["Restarts", "string", 0],
    ["Age", "string", 0],
    ["IP", "string", 1],
    ["Node", "string", 1],
  ],
  events: [
    ["Name", "string", 0],
    ["Type", "string", 0],
    ["Reason", "string", 0],
    ["Message", "string", 0],
    ["Age", "string", 0],
  ],
};

/** One row's cells, as kube-apiserver's printers (pkg/printers/internalversion) fill them. */
function cells(resource: string, o: KubeObject): unknown[] {
  const n = (v: unknown) => (typeof v === "number" ? v : 0);
  const spec = (o.spec ?? {}) as Json;
  const st = (o.status ?? {}) as Json;
  const created = age(o.metadata.creationTimestamp);
  const containers =
    (((spec.template as Json | undefined)?.spec as Json | undefined)?.containers as Json[]) ?? [];
  const wide = [
    containers.map((c) => c.name).join(","),
    containers.map((c) => c.image).join(","),
    selectorString(spec.selector as Json),
  ];
  if (resource === "deployments")
    return [
      o.metadata.name,
      `${n(st.readyReplicas)}/${n(spec.replicas)}`,
      n(st.updatedReplicas),
      n(st.availableReplicas),
      created,
      ...wide,
    ];
  if (resource === "replicasets")
    return [o.metadata.name, n(spec.replicas), n(st.replicas), n(st.readyReplicas), created, ...wide];
  if (resource === "pods") {
    const statuses =
      (st.containerStatuses as Array<{
        ready?: boolean;
        restartCount?: number;
        state?: { waiting?: { reason?: string } };
      }>) ?? [];
    const waiting = statuses.find((c) => c.state?.waiting?.reason)?.state?.waiting?.reason;
    const restarts = statuses.reduce((sum, c) => sum + (c.restartCount ?? 0), 0);
    const ready = `${statuses.filter((c) => c.ready).length}/${((spec.containers as Json[]) ?? []).length}`;
    return [
      o.metadata.name,
      ready,
      waiting ?? st.phase ?? "Unknown",
      String(restarts),
      created,
      st.podIP ?? "<none>",
      spec.nodeName ?? "<none>",
    ];
  }
  return [o.metadata.name, o.type, o.reason, o.message, created];
}

/** The server-side Table `kubectl get` asks for (`Accept: application/json;as=Table;g=meta.k8s.io`). */
export function toTable(resource: string, items: KubeObject[], resourceVersion: string): Json {
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion },
    columnDefinitions: (COLUMNS[resource] ?? []).map(([name, type, priority]) => ({
      name,
      type,
      format: name === "Name" ? "name" : "",
      description: "",
      priority,
    })),
    rows: items.map((o) => ({
      cells: cells(resource, o),
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function parseBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new ApiError(
      status(400, "BadRequest", `the object provided is unrecognized (${(e as Error).message})`),
    );
  }
}

/** patchMergeKey of the pod spec's lists (k8s.io/api core/v1 struct tags). */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  env: "name",
  volumeMounts: "mountPath",
  ports: "containerPort",
  imagePullSecrets: "name",
  hostAliases: "ip",
};

/**
 * Strategic merge patch as kubectl sends it (`kubectl set image`, `kubectl patch`): maps merge,
 * null deletes, lists with a merge key merge element by element (`$patch: delete` removes one),
 * other lists replace; ordering directives (`$setElementOrder/...`, `$retainKeys`) are ignored.
 */
export function strategicMerge(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return structuredClone(patch);
  const directive = (patch as Json).$patch;
  const base = typeof target === "object" && target !== null && !Array.isArray(target) ? target : {};
  const result: Json = directive === "replace" ? {} : { ...(base as Json) };
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) continue;
    const mergeKey = MERGE_KEYS[key];
    if (value === null) delete result[key];
    else if (mergeKey && Array.isArray(value) && Array.isArray(result[key]))
      result[key] = mergeList(result[key] as Json[], value as Json[], mergeKey);
    else result[key] = strategicMerge(result[key], value);
  }
  return result;
}

function mergeList(current: Json[], patch: Json[], key: string): Json[] {
  const result = [...current];
  for (const element of patch) {
    const at = result.findIndex((e) => e[key] === element[key]);
    if (element.$patch === "delete") {
      if (at >= 0) result.splice(at, 1);
    } else if (at >= 0) result[at] = strategicMerge(result[at], element) as Json;
    else result.push(strategicMerge({}, element) as Json);
  }
  return result;
}
