/**
 * Cluster access with @kubernetes/client-node: the kubeconfig content from the input (loaded from
 * memory, never written to disk), else `KUBECONFIG`, `~/.kube/config` or the in-cluster service
 * account; an optional context. `KubernetesMeshApi` is the only place that talks to the API server.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { FIELD_MANAGER, KUBE_REQUEST_TIMEOUT_MS } from "../constants.ts";
import { abortReason } from "../retry.ts";
import type { ObjectMeta, VirtualService } from "../rollout/model/virtual-service.ts";
import { runningContainerStatuses } from "./containers.ts";
import { describeObject, type KubeRequest, MeshError, toMeshError } from "./errors.ts";
import type { DestinationRule, PodSummary, ServiceEntry } from "./types.ts";

/** Equality-based label selector text, `app=backend,version=v2`, as the API and kubectl take it. */
export const labelSelector = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export const ISTIO_GROUP = "networking.istio.io";
/** Served versions of Istio's networking API, newest first; all share one storage. */
export const ISTIO_VERSIONS = ["v1", "v1beta1", "v1alpha3"] as const;

export interface ClusterOptions {
  kubeconfig?: string;
  context?: string;
  /** Called with each kubeconfig file's text before it is used, so its credentials are masked too. */
  mask?: (text: string) => void;
}

/** Where the in-cluster service account's token lives (what loadFromDefault falls back to). */
const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** Which input a configuration came from, for messages: "Input 'kubeconfig'" plus where it was read. */
const sources = new WeakMap<k8s.KubeConfig, string>();

/** How a loaded configuration is named in messages ("Input 'kubeconfig'" and where it came from). */
export function kubeconfigSource(config: k8s.KubeConfig): string {
  return sources.get(config) ?? "Input 'kubeconfig'";
}

function inputError(source: string, problem: string): MeshError {
  const error = new MeshError(`${source}: ${problem}`);
  error.transient = false;
  return error;
}

/**
 * Loads the kubeconfig: the input's content (parsed from memory, never written to disk), else
 * `KUBECONFIG`, `~/.kube/config` or the in-cluster service account. Every problem names the input
 * (and the file it fell back to); no message quotes the document, which holds credentials.
 */
export function loadKubeConfig(
  options: ClusterOptions,
  env: NodeJS.ProcessEnv = process.env,
): k8s.KubeConfig {
  const config = new k8s.KubeConfig();
  // Where the document came from when the input was not set: named in every message.
  let origin: string | undefined;
  if (options.kubeconfig) {
    try {
      config.loadFromString(options.kubeconfig);
    } catch (error) {
      throw inputError(
        "Input 'kubeconfig'",
        `is not a valid kubeconfig (${parseProblem(error)}; the content is not shown because it holds credentials)`,
      );
    }
  } else {
    const files = (env.KUBECONFIG ?? "").split(delimiter).filter((f) => f !== "");
    const home = env.HOME || homedir();
    const defaultFile = home ? join(home, ".kube", "config") : undefined;
    if (files.length > 0) {
      origin = `KUBECONFIG=${files.join(delimiter)}`;
      const missing = files.filter((f) => !existsSync(f));
      if (missing.length > 0)
        throw inputError(sourceOf(origin), `the file ${missing.join(", ")} does not exist`);
    } else if (defaultFile && existsSync(defaultFile)) {
      origin = defaultFile;
    } else if (existsSync(SERVICE_ACCOUNT_TOKEN)) {
      origin = "the in-cluster service account";
    } else {
      throw inputError(
        "Input 'kubeconfig'",
        `not set, and there is no KUBECONFIG, no ${defaultFile ?? "~/.kube/config"} and no in-cluster service account: set the kubeconfig input (for example kubeconfig: \${{ secrets.KUBECONFIG }})`,
      );
    }
    for (const file of files.length > 0 ? files : origin === defaultFile ? [defaultFile as string] : []) {
      try {
        options.mask?.(readFileSync(file, "utf8"));
      } catch {
        // Unreadable: loading it below says so.
      }
    }
    try {
      // As loadFromDefault does, but from the files checked above (it would fall back silently).
      if (files.length > 0) {
        config.loadFromFile(files[0] as string);
        for (const file of files.slice(1)) {
          const more = new k8s.KubeConfig();
          more.loadFromFile(file);
          config.mergeConfig(more);
        }
      } else if (origin === defaultFile) config.loadFromFile(defaultFile as string);
      else config.loadFromCluster();
    } catch (error) {
      throw inputError(sourceOf(origin), `is not a valid kubeconfig (${parseProblem(error)})`);
    }
  }
  if (options.context) {
    if (!config.getContextObject(options.context)) {
      const known = config.getContexts().map((c) => c.name);
      throw inputError(
        "Input 'context'",
        `the kubeconfig${origin ? ` from ${origin}` : ""} has no context named "${options.context}" (it has ${known.length > 0 ? known.join(", ") : "none"})`,
      );
    }
    config.setCurrentContext(options.context);
  }
  const source = sourceOf(origin);
  const cluster = config.getCurrentCluster();
  if (!cluster) {
    throw inputError(
      options.context ? "Input 'context'" : source,
      config.getContexts().length === 0
        ? "the kubeconfig has no contexts"
        : `the kubeconfig's current context "${config.getCurrentContext()}" names no cluster it defines; set current-context or the context input`,
    );
  }
  if (!isHttpUrl(cluster.server)) {
    // The value is shown only when it cannot carry credentials (no user info, no query).
    const shown = /^[\w.:/[\]-]{1,200}$/.test(cluster.server) ? ` "${cluster.server}"` : "";
    throw inputError(
      source,
      `cluster "${cluster.name}" has server${shown}, which is not an http(s) URL (expected for example https://10.0.0.1:6443)`,
    );
  }
  sources.set(config, source);
  return config;
}

/** YAML parser messages quote the document: only the client's own field checks are safe to show. */
function parseProblem(error: unknown): string {
  const safe = /^(clusters|users|contexts)\[\d+\]\S* is missing$/.exec((error as Error).message)?.[0];
  return safe ?? "its YAML or JSON could not be parsed";
}

function sourceOf(origin: string | undefined): string {
  return origin ? `Input 'kubeconfig' (not set; read from ${origin})` : "Input 'kubeconfig'";
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "https:" || url.protocol === "http:") && url.hostname !== "";
  } catch {
    return false;
  }
}

/** What the traffic router and preflight need from the cluster. */
export interface MeshApi {
  getVirtualService(namespace: string, name: string, signal?: AbortSignal): Promise<VirtualService>;
  patchVirtualService(
    namespace: string,
    name: string,
    apiVersion: string,
    patch: object[],
    signal?: AbortSignal,
  ): Promise<VirtualService>;
  listDestinationRules(namespace: string, signal?: AbortSignal): Promise<DestinationRule[]>;
  /** Read only when a route's host has no Kubernetes Service (src/mesh/istio-lookup.ts). */
  listServiceEntries(namespace: string, signal?: AbortSignal): Promise<ServiceEntry[]>;
  getServiceSelector(
    namespace: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<Record<string, string> | undefined>;
  listPods(namespace: string, labelSelector: string, signal?: AbortSignal): Promise<PodSummary[]>;
  getNamespaceLabels(name: string, signal?: AbortSignal): Promise<Record<string, string>>;
}

export interface KubernetesMeshApiOptions {
  /** Per-request timeout; a hung API server must not hang the step. */
  timeoutMs?: number;
}

/** Connection failures that mean the configured server is wrong or down, not merely slow. */
const CONNECTION_FAILURE =
  /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS/;

/**
 * What the workloads adapter (src/workloads/) needs besides MeshApi: Deployments, the ReplicaSets
 * that own pods, full pods (owners, container statuses) and Warning events. A separate interface
 * so the mesh's fakes need not grow.
 */
export interface WorkloadApi {
  getDeployment(namespace: string, name: string, signal?: AbortSignal): Promise<k8s.V1Deployment>;
  listDeployments(namespace: string, signal?: AbortSignal): Promise<k8s.V1Deployment[]>;
  /** A JSON Patch of the Deployment (a failed `test` is answered 422). */
  patchDeployment(
    namespace: string,
    name: string,
    patch: object[],
    signal?: AbortSignal,
  ): Promise<k8s.V1Deployment>;
  /** Sets spec.replicas through the `scale` subresource (RBAC `deployments/scale`). */
  scaleDeployment(namespace: string, name: string, replicas: number, signal?: AbortSignal): Promise<void>;
  getReplicaSet(namespace: string, name: string, signal?: AbortSignal): Promise<k8s.V1ReplicaSet>;
  listPodObjects(namespace: string, labelSelector: string, signal?: AbortSignal): Promise<k8s.V1Pod[]>;
  listWarningEvents(namespace: string, signal?: AbortSignal): Promise<k8s.CoreV1Event[]>;
}

export class KubernetesMeshApi implements MeshApi, WorkloadApi {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;
  private readonly timeoutMs: number;
  /** The input the configuration came from and its server, named when the server cannot be reached. */
  private readonly source: string;
  private readonly server: string;
  /** The Istio API version this cluster serves, found on the first read. */
  private istioVersion?: string;

  constructor(config: k8s.KubeConfig, options: KubernetesMeshApiOptions = {}) {
    this.custom = config.makeApiClient(k8s.CustomObjectsApi);
    this.core = config.makeApiClient(k8s.CoreV1Api);
    this.apps = config.makeApiClient(k8s.AppsV1Api);
    this.timeoutMs = options.timeoutMs ?? KUBE_REQUEST_TIMEOUT_MS;
    this.source = kubeconfigSource(config);
    const server = config.getCurrentCluster()?.server ?? "";
    // Only scheme, host and port: a server URL could carry user info.
    this.server = URL.canParse(server) ? new URL(server).origin : "(no server)";
  }

  /**
   * Request options: the caller's signal and a timeout on every request (both reach the HTTP
   * request itself, so an abort ends a hung call at once), plus any extra headers.
   */
  private options(
    signal: AbortSignal | undefined,
    headers: Record<string, string> = {},
  ): k8s.ConfigurationOptions {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const requestSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
    // The generated client's middleware speaks its own minimal Observable (a wrapped promise).
    const middleware = {
      pre: (context: k8s.RequestContext) => {
        context.setSignal(requestSignal);
        for (const [k, v] of Object.entries(headers)) context.setHeaderParam(k, v);
        return new k8s.Observable(Promise.resolve(context));
      },
      post: (response: k8s.ResponseContext) => new k8s.Observable(Promise.resolve(response)),
    };
    return { middleware: [middleware], middlewareMergeStrategy: "append" } as k8s.ConfigurationOptions;
  }

  private async call<T>(
    request: KubeRequest,
    signal: AbortSignal | undefined,
    run: () => Promise<T>,
  ): Promise<T> {
    if (signal?.aborted) throw abortReason(signal);
    try {
      return await run();
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      const meshError = toMeshError(error, request);
      if (meshError.status !== undefined || !CONNECTION_FAILURE.test(meshError.code ?? "")) throw meshError;
      // The server in the kubeconfig could not be reached at all: say which input named it.
      const unreachable = new MeshError(
        `${this.source}: the Kubernetes API server ${this.server} is unreachable (${meshError.code}) while trying to ${request.verb} ${describeObject(request)}`,
      );
      unreachable.transient = meshError.transient;
      unreachable.code = meshError.code;
      throw unreachable;
    }
  }

  async getVirtualService(namespace: string, name: string, signal?: AbortSignal): Promise<VirtualService> {
    const versions = this.istioVersion ? [this.istioVersion] : ISTIO_VERSIONS;
    let unserved: MeshError | undefined;
    for (const version of versions) {
      try {
        const vs = (await this.call(
          { verb: "get", group: ISTIO_GROUP, resource: "virtualservices", namespace, name },
          signal,
          () =>
            this.custom.getNamespacedCustomObject(
              { group: ISTIO_GROUP, version, namespace, plural: "virtualservices", name },
              this.options(signal),
            ),
        )) as VirtualService;
        this.istioVersion = version;
        return vs;
      } catch (error) {
        // A 404 for the object is final; a 404 for an API version this cluster does not serve is not.
        if (!(error instanceof MeshError) || !error.isUnservedVersion) throw error;
        unserved = error;
      }
    }
    throw new MeshError(
      `the cluster serves no networking.istio.io version the action knows (${ISTIO_VERSIONS.join(", ")}): is Istio installed?`,
      404,
      unserved?.reason,
      unserved?.server,
    );
  }

  async patchVirtualService(
    namespace: string,
    name: string,
    apiVersion: string,
    patch: object[],
    signal?: AbortSignal,
  ): Promise<VirtualService> {
    const version = apiVersion.split("/")[1] ?? this.istioVersion ?? "v1";
    return (await this.call(
      { verb: "patch", group: ISTIO_GROUP, resource: "virtualservices", namespace, name },
      signal,
      () =>
        this.custom.patchNamespacedCustomObject(
          {
            group: ISTIO_GROUP,
            version,
            namespace,
            plural: "virtualservices",
            name,
            body: patch,
            fieldManager: FIELD_MANAGER,
          },
          this.options(signal, { "Content-Type": k8s.PatchStrategy.JsonPatch }),
        ),
    )) as VirtualService;
  }

  async listDestinationRules(namespace: string, signal?: AbortSignal): Promise<DestinationRule[]> {
    return this.listIstio<DestinationRule>("destinationrules", namespace, signal);
  }

  async listServiceEntries(namespace: string, signal?: AbortSignal): Promise<ServiceEntry[]> {
    return this.listIstio<ServiceEntry>("serviceentries", namespace, signal);
  }

  private async listIstio<T>(plural: string, namespace: string, signal?: AbortSignal): Promise<T[]> {
    const version = this.istioVersion ?? "v1";
    const list = (await this.call(
      { verb: "list", group: ISTIO_GROUP, resource: plural, namespace },
      signal,
      () =>
        this.custom.listNamespacedCustomObject(
          { group: ISTIO_GROUP, version, namespace, plural },
          this.options(signal),
        ),
    )) as { items?: T[] };
    return list.items ?? [];
  }

  async getServiceSelector(
    namespace: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<Record<string, string> | undefined> {
    try {
      const service = await this.call(
        { verb: "get", group: "", resource: "services", namespace, name },
        signal,
        () => this.core.readNamespacedService({ name, namespace }, this.options(signal)),
      );
      return service.spec?.selector;
    } catch (error) {
      if ((error as MeshError).status === 404) return undefined;
      throw error;
    }
  }

  async listPods(namespace: string, labelSelector: string, signal?: AbortSignal): Promise<PodSummary[]> {
    const pods = await this.call({ verb: "list", group: "", resource: "pods", namespace }, signal, () =>
      this.core.listNamespacedPod({ namespace, labelSelector }, this.options(signal)),
    );
    return pods.items.map((pod) => summarisePod(pod));
  }

  async getNamespaceLabels(name: string, signal?: AbortSignal): Promise<Record<string, string>> {
    const ns = await this.call(
      { verb: "get", group: "", resource: "namespaces", name, namespace: name },
      signal,
      () => this.core.readNamespace({ name }, this.options(signal)),
    );
    return (ns.metadata as ObjectMeta | undefined)?.labels ?? {};
  }
  // ---- Workloads (src/workloads/): Deployments, their ReplicaSets, pods and Warning events ----

  getDeployment(namespace: string, name: string, signal?: AbortSignal): Promise<k8s.V1Deployment> {
    return this.call({ verb: "get", group: "apps", resource: "deployments", namespace, name }, signal, () =>
      this.apps.readNamespacedDeployment({ name, namespace }, this.options(signal)),
    );
  }

  async listDeployments(namespace: string, signal?: AbortSignal): Promise<k8s.V1Deployment[]> {
    const list = await this.call(
      { verb: "list", group: "apps", resource: "deployments", namespace },
      signal,
      () => this.apps.listNamespacedDeployment({ namespace }, this.options(signal)),
    );
    return list.items;
  }

  patchDeployment(
    namespace: string,
    name: string,
    patch: object[],
    signal?: AbortSignal,
  ): Promise<k8s.V1Deployment> {
    return this.call({ verb: "patch", group: "apps", resource: "deployments", namespace, name }, signal, () =>
      this.apps.patchNamespacedDeployment(
        { name, namespace, body: patch, fieldManager: FIELD_MANAGER },
        this.options(signal, { "Content-Type": k8s.PatchStrategy.JsonPatch }),
      ),
    );
  }

  async scaleDeployment(
    namespace: string,
    name: string,
    replicas: number,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.call(
      { verb: "patch", group: "apps", resource: "deployments/scale", namespace, name },
      signal,
      () =>
        this.apps.patchNamespacedDeploymentScale(
          { name, namespace, body: { spec: { replicas } }, fieldManager: FIELD_MANAGER },
          this.options(signal, { "Content-Type": k8s.PatchStrategy.MergePatch }),
        ),
    );
  }

  getReplicaSet(namespace: string, name: string, signal?: AbortSignal): Promise<k8s.V1ReplicaSet> {
    return this.call({ verb: "get", group: "apps", resource: "replicasets", namespace, name }, signal, () =>
      this.apps.readNamespacedReplicaSet({ name, namespace }, this.options(signal)),
    );
  }

  async listPodObjects(namespace: string, labelSelector: string, signal?: AbortSignal): Promise<k8s.V1Pod[]> {
    const pods = await this.call({ verb: "list", group: "", resource: "pods", namespace }, signal, () =>
      this.core.listNamespacedPod({ namespace, labelSelector }, this.options(signal)),
    );
    return pods.items;
  }

  async listWarningEvents(namespace: string, signal?: AbortSignal): Promise<k8s.CoreV1Event[]> {
    const events = await this.call({ verb: "list", group: "", resource: "events", namespace }, signal, () =>
      this.core.listNamespacedEvent({ namespace, fieldSelector: "type=Warning" }, this.options(signal)),
    );
    return events.items;
  }
}

/**
 * READY 2/2 as kubectl shows it: every container ready, and an `istio-proxy` sidecar, either a
 * regular container or (Istio's native sidecars) a restartable init container.
 */
export function summarisePod(pod: k8s.V1Pod): PodSummary {
  const containers = (pod.spec?.containers ?? []).map((c) => c.name);
  const statuses = runningContainerStatuses(pod);
  const nativeSidecar = (pod.spec?.initContainers ?? []).some(
    (c) => c.name === "istio-proxy" && c.restartPolicy === "Always",
  );
  const podReady = (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
  return {
    name: pod.metadata?.name ?? "",
    containers: nativeSidecar ? [...containers, "istio-proxy"] : containers,
    hasSidecar: containers.includes("istio-proxy") || nativeSidecar,
    ready: podReady && statuses.length > 0 && statuses.every((s) => s.ready),
  };
}
