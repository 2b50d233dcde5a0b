/**
 * Cluster access with @kubernetes/client-node (the kubeconfig is loaded by ./kubeconfig.ts):
 * `KubernetesMeshApi` is the only place that talks to the API server.
 */
import * as k8s from "@kubernetes/client-node";
import { FIELD_MANAGER, KUBE_REQUEST_TIMEOUT_MS } from "../constants.ts";
import { abortReason } from "../retry.ts";
import { GATEWAY_API_GROUP, type GatewayHttpRoute } from "../rollout/model/http-route.ts";
import type { ObjectMeta, VirtualService } from "../rollout/model/virtual-service.ts";
import { summarisePod } from "./containers.ts";
import { describeObject, type KubeRequest, MeshError, toMeshError } from "./errors.ts";
import { kubeconfigSource } from "./kubeconfig.ts";
import type { DestinationRule, Gateway, PodSummary, ServiceEntry } from "./types.ts";

/** Equality-based label selector text, `app=backend,version=v2`, as the API and kubectl take it. */
export const labelSelector = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export const ISTIO_GROUP = "networking.istio.io";
/** Served versions of Istio's networking API, newest first; all share one storage. */
export const ISTIO_VERSIONS = ["v1", "v1beta1", "v1alpha3"] as const;

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
  /** A Service's own labels (ambient's `istio.io/use-waypoint`); undefined when there is no such Service. */
  getServiceLabels(
    namespace: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<Record<string, string> | undefined>;
  /** A Gateway API Gateway (an ambient waypoint); undefined when there is none. */
  getGateway(namespace: string, name: string, signal?: AbortSignal): Promise<Gateway | undefined>;
  listPods(namespace: string, labelSelector: string, signal?: AbortSignal): Promise<PodSummary[]>;
  getNamespaceLabels(name: string, signal?: AbortSignal): Promise<Record<string, string>>;
}

/** The Gateway API's HTTPRoute (gateway.networking.k8s.io/v1): the other kind of traffic target. */
export interface GatewayApi {
  getHttpRoute(namespace: string, name: string, signal?: AbortSignal): Promise<GatewayHttpRoute>;
  patchHttpRoute(
    namespace: string,
    name: string,
    apiVersion: string,
    patch: object[],
    signal?: AbortSignal,
  ): Promise<GatewayHttpRoute>;
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

export class KubernetesMeshApi implements MeshApi, WorkloadApi, GatewayApi {
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

  async getHttpRoute(namespace: string, name: string, signal?: AbortSignal): Promise<GatewayHttpRoute> {
    const where = { group: GATEWAY_API_GROUP, version: "v1", namespace, plural: "httproutes", name };
    return (await this.call(
      { verb: "get", group: GATEWAY_API_GROUP, resource: "httproutes", namespace, name },
      signal,
      () => this.custom.getNamespacedCustomObject(where, this.options(signal)),
    )) as GatewayHttpRoute;
  }

  async patchHttpRoute(
    namespace: string,
    name: string,
    apiVersion: string,
    patch: object[],
    signal?: AbortSignal,
  ): Promise<GatewayHttpRoute> {
    const version = apiVersion.split("/")[1] ?? "v1";
    const where = { group: GATEWAY_API_GROUP, version, namespace, plural: "httproutes", name };
    return (await this.call(
      { verb: "patch", group: GATEWAY_API_GROUP, resource: "httproutes", namespace, name },
      signal,
      () =>
        this.custom.patchNamespacedCustomObject(
          { ...where, body: patch, fieldManager: FIELD_MANAGER },
          this.options(signal, { "Content-Type": k8s.PatchStrategy.JsonPatch }),
        ),
    )) as GatewayHttpRoute;
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
    return (await this.readService(namespace, name, signal))?.spec?.selector;
  }

  async getServiceLabels(
    namespace: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<Record<string, string> | undefined> {
    const service = await this.readService(namespace, name, signal);
    return service ? (service.metadata?.labels ?? {}) : undefined;
  }

  private async readService(namespace: string, name: string, signal?: AbortSignal) {
    return this.call({ verb: "get", group: "", resource: "services", namespace, name }, signal, () =>
      this.core.readNamespacedService({ name, namespace }, this.options(signal)),
    ).catch(notFoundAsUndefined);
  }

  async getGateway(namespace: string, name: string, signal?: AbortSignal): Promise<Gateway | undefined> {
    const request = { verb: "get", group: GATEWAY_API_GROUP, resource: "gateways", namespace, name } as const;
    const gateway = await this.call(request, signal, () =>
      this.custom.getNamespacedCustomObject(
        { group: GATEWAY_API_GROUP, version: "v1", namespace, plural: "gateways", name },
        this.options(signal),
      ),
    ).catch(notFoundAsUndefined);
    return gateway as Gateway | undefined;
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

/** A 404 is "there is none"; every other failure is thrown. */
function notFoundAsUndefined(error: unknown): undefined {
  if ((error as MeshError).status === 404) return undefined;
  throw error;
}
