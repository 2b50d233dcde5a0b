/**
 * Cluster access with @kubernetes/client-node: the kubeconfig content from the input (loaded from
 * memory, never written to disk), else `KUBECONFIG`, `~/.kube/config` or the in-cluster service
 * account; an optional context. `KubernetesMeshApi` is the only place that talks to the API server.
 */
import * as k8s from "@kubernetes/client-node";
import { type KubeRequest, MeshError, toMeshError } from "./errors.ts";
import type { DestinationRule, ObjectMeta, PodSummary, VirtualService } from "./types.ts";

export const ISTIO_GROUP = "networking.istio.io";
/** Served versions of Istio's networking API, newest first; all share one storage. */
export const ISTIO_VERSIONS = ["v1", "v1beta1", "v1alpha3"] as const;

export interface ClusterOptions {
  kubeconfig?: string;
  context?: string;
}

export function loadKubeConfig(options: ClusterOptions): k8s.KubeConfig {
  const config = new k8s.KubeConfig();
  if (options.kubeconfig) config.loadFromString(options.kubeconfig);
  else config.loadFromDefault();
  if (options.context) {
    if (!config.getContextObject(options.context))
      throw new MeshError(`kubeconfig has no context named "${options.context}"`);
    config.setCurrentContext(options.context);
  }
  if (!config.getCurrentCluster()) {
    throw new MeshError(
      "no Kubernetes cluster configured: set the kubeconfig input, KUBECONFIG, ~/.kube/config, or run in a cluster",
    );
  }
  return config;
}

/** What the traffic router and preflight need from the cluster. */
export interface MeshApi {
  getVirtualService(namespace: string, name: string): Promise<VirtualService>;
  patchVirtualService(
    namespace: string,
    name: string,
    apiVersion: string,
    patch: object[],
  ): Promise<VirtualService>;
  listDestinationRules(namespace: string): Promise<DestinationRule[]>;
  getServiceSelector(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  listPods(namespace: string, labelSelector: string): Promise<PodSummary[]>;
  getNamespaceLabels(name: string): Promise<Record<string, string>>;
}

export interface KubernetesMeshApiOptions {
  /** Per-request timeout; a hung API server must not hang the step. */
  timeoutMs?: number;
}

export class KubernetesMeshApi implements MeshApi {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly timeoutMs: number;
  /** The Istio API version this cluster serves, found on the first read. */
  private istioVersion?: string;

  constructor(config: k8s.KubeConfig, options: KubernetesMeshApiOptions = {}) {
    this.custom = config.makeApiClient(k8s.CustomObjectsApi);
    this.core = config.makeApiClient(k8s.CoreV1Api);
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Request options: a timeout signal on every request, plus any extra headers. */
  private options(headers: Record<string, string> = {}): k8s.ConfigurationOptions {
    const timeoutMs = this.timeoutMs;
    // The generated client's middleware speaks its own minimal Observable (a wrapped promise).
    const middleware = {
      pre: (context: k8s.RequestContext) => {
        context.setSignal(AbortSignal.timeout(timeoutMs));
        for (const [k, v] of Object.entries(headers)) context.setHeaderParam(k, v);
        return new k8s.Observable(Promise.resolve(context));
      },
      post: (response: k8s.ResponseContext) => new k8s.Observable(Promise.resolve(response)),
    };
    return { middleware: [middleware], middlewareMergeStrategy: "append" } as k8s.ConfigurationOptions;
  }

  private async call<T>(request: KubeRequest, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw toMeshError(error, request);
    }
  }

  async getVirtualService(namespace: string, name: string): Promise<VirtualService> {
    const versions = this.istioVersion ? [this.istioVersion] : ISTIO_VERSIONS;
    let unserved: MeshError | undefined;
    for (const version of versions) {
      try {
        const vs = (await this.call(
          { verb: "get", group: ISTIO_GROUP, resource: "virtualservices", namespace, name },
          () =>
            this.custom.getNamespacedCustomObject(
              { group: ISTIO_GROUP, version, namespace, plural: "virtualservices", name },
              this.options(),
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
  ): Promise<VirtualService> {
    const version = apiVersion.split("/")[1] ?? this.istioVersion ?? "v1";
    return (await this.call(
      { verb: "patch", group: ISTIO_GROUP, resource: "virtualservices", namespace, name },
      () =>
        this.custom.patchNamespacedCustomObject(
          {
            group: ISTIO_GROUP,
            version,
            namespace,
            plural: "virtualservices",
            name,
            body: patch,
            fieldManager: "istio-canary-action",
          },
          this.options({ "Content-Type": k8s.PatchStrategy.JsonPatch }),
        ),
    )) as VirtualService;
  }

  async listDestinationRules(namespace: string): Promise<DestinationRule[]> {
    const version = this.istioVersion ?? "v1";
    const list = (await this.call(
      { verb: "list", group: ISTIO_GROUP, resource: "destinationrules", namespace },
      () =>
        this.custom.listNamespacedCustomObject(
          { group: ISTIO_GROUP, version, namespace, plural: "destinationrules" },
          this.options(),
        ),
    )) as { items?: DestinationRule[] };
    return list.items ?? [];
  }

  async getServiceSelector(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    try {
      const service = await this.call({ verb: "get", group: "", resource: "services", namespace, name }, () =>
        this.core.readNamespacedService({ name, namespace }, this.options()),
      );
      return service.spec?.selector;
    } catch (error) {
      if ((error as MeshError).status === 404) return undefined;
      throw error;
    }
  }

  async listPods(namespace: string, labelSelector: string): Promise<PodSummary[]> {
    const pods = await this.call({ verb: "list", group: "", resource: "pods", namespace }, () =>
      this.core.listNamespacedPod({ namespace, labelSelector }, this.options()),
    );
    return pods.items.map((pod) => summarisePod(pod));
  }

  async getNamespaceLabels(name: string): Promise<Record<string, string>> {
    const ns = await this.call(
      { verb: "get", group: "", resource: "namespaces", name, namespace: name },
      () => this.core.readNamespace({ name }, this.options()),
    );
    return (ns.metadata as ObjectMeta | undefined)?.labels ?? {};
  }
}

/**
 * READY 2/2 as kubectl shows it: every container ready, and an `istio-proxy` sidecar, either a
 * regular container or (Istio's native sidecars) a restartable init container.
 */
export function summarisePod(pod: k8s.V1Pod): PodSummary {
  const containers = (pod.spec?.containers ?? []).map((c) => c.name);
  const nativeSidecar = (pod.spec?.initContainers ?? []).some(
    (c) => c.name === "istio-proxy" && c.restartPolicy === "Always",
  );
  const statuses = [
    ...(pod.status?.containerStatuses ?? []),
    ...(nativeSidecar
      ? (pod.status?.initContainerStatuses ?? []).filter((s) => s.name === "istio-proxy")
      : []),
  ];
  const podReady = (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
  return {
    name: pod.metadata?.name ?? "",
    containers: nativeSidecar ? [...containers, "istio-proxy"] : containers,
    hasSidecar: containers.includes("istio-proxy") || nativeSidecar,
    ready: podReady && statuses.length > 0 && statuses.every((s) => s.ready),
  };
}
