/**
 * The local mesh in one call: the Kubernetes API emulator seeded with the runbook's objects, the
 * Istio traffic simulator following the VirtualService, a real Prometheus scraping it every second,
 * and the GitHub API emulator. Everything listens on 127.0.0.1 and `stop()` ends all of it.
 */
import { DeploymentController, type DeploymentControllerOptions, deploymentManifest } from "./deployments.ts";
import { NAMESPACE, SERVICE, seedRunbook } from "./fixtures.ts";
import { GitHubApiEmulator } from "./github-api.ts";
import { KubeApiEmulator, type KubeApiEmulatorOptions } from "./kube-api.ts";
import { PrometheusServer } from "./prometheus.ts";
import { type TrafficFlow, TrafficSimulator, type VersionBehaviour } from "./traffic.ts";

export interface MeshOptions {
  requestsPerSecond?: number;
  stable?: Partial<VersionBehaviour>;
  canary?: Partial<VersionBehaviour>;
  kube?: KubeApiEmulatorOptions;
  seed?: number;
  /** Set false to skip Prometheus (for tests of the Kubernetes side only). */
  prometheus?: boolean;
  runbook?: Parameters<typeof seedRunbook>[1];
  /** Seeds the cluster instead of the runbook (for example from manifests/). */
  seedWith?: (kube: KubeApiEmulator) => void;
  /** The VirtualService the default traffic follows, and its namespace (default the runbook's). */
  namespace?: string;
  virtualService?: string;
  /** The traffic mix (see TrafficSimulator); default every request follows that VirtualService's first route. */
  traffic?: TrafficFlow[];
  /** Istio's root namespace for DestinationRule lookup (default istio-system). */
  rootNamespace?: string;
  /** The reporter label of waypoint series (default `waypoint`; early ambient releases: `destination`). */
  waypointReporter?: string;
  /** Behaviours of versions other than v1/v2, by version label. */
  versions?: Record<string, VersionBehaviour>;
  /** The version label whose series `scraped()` waits for (default v1). */
  stableVersion?: string;
  /**
   * Installs the Deployment controller and runs the runbook's versions as Deployments
   * `backend-v1` and `backend-v2` (image registry.example/backend:v1 / :v2, or `images`) instead of
   * hand-made pods.
   */
  deployments?: DeploymentControllerOptions & {
    replicas?: number;
    progressDeadlineSeconds?: number;
    images?: Partial<Record<"v1" | "v2", string>>;
  };
}

/** The runbook's two versions as Deployments, rolled out before the mesh is handed over. */
async function runbookDeployments(
  kube: KubeApiEmulator,
  options: NonNullable<MeshOptions["deployments"]>,
): Promise<DeploymentController> {
  for (const version of ["v1", "v2"])
    for (const pod of kube.list("pods", NAMESPACE).filter((p) => p.metadata.labels?.version === version))
      kube.remove("pods", NAMESPACE, pod.metadata.name);
  const apps = new DeploymentController(kube, options);
  for (const version of ["v1", "v2"]) {
    apps.create(
      deploymentManifest({
        name: `${SERVICE}-${version}`,
        namespace: NAMESPACE,
        labels: { app: SERVICE, version },
        image: options.images?.[version as "v1" | "v2"] ?? `registry.example/${SERVICE}:${version}`,
        replicas: options.replicas ?? 2,
        progressDeadlineSeconds: options.progressDeadlineSeconds,
      }),
    );
  }
  for (const version of ["v1", "v2"]) await apps.rolledOut(NAMESPACE, `${SERVICE}-${version}`);
  return apps;
}

/** The stable version's series: a sidecar's, or (ambient) a waypoint's, which knows the version by canonical revision only. */
const stableSeries = (version: string) =>
  `istio_requests_total{destination_version="${version}"} or istio_requests_total{destination_version="unknown",destination_canonical_revision="${version}"}`;

export interface Mesh {
  kube: KubeApiEmulator;
  /** The Deployment controller, with `deployments`. */
  apps?: DeploymentController;
  traffic: TrafficSimulator;
  prometheus?: PrometheusServer;
  github: GitHubApiEmulator;
  namespace: string;
  virtualService: string;
  /** Resolves once Prometheus holds series for the stable version (Istio metrics are being scraped). */
  scraped(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  const kube = await new KubeApiEmulator(options.kube).start();
  const started: Array<{ stop(): Promise<void> }> = [kube];
  try {
    if (options.seedWith) options.seedWith(kube);
    else seedRunbook(kube, options.runbook);
    let apps: DeploymentController | undefined;
    if (options.deployments) {
      apps = await runbookDeployments(kube, options.deployments);
      started.push({ stop: async () => apps?.stop() });
    }
    const traffic = await new TrafficSimulator({
      kube,
      namespace: options.namespace ?? NAMESPACE,
      virtualService: options.virtualService ?? SERVICE,
      requestsPerSecond: options.requestsPerSecond ?? 100,
      seed: options.seed ?? 7,
      traffic: options.traffic,
      rootNamespace: options.rootNamespace,
      waypointReporter: options.waypointReporter,
      versions: {
        ...options.versions,
        v1: { errorRate: 0.005, latencyMedianMs: 20, ...options.stable },
        v2: { errorRate: 0.005, latencyMedianMs: 20, ...options.canary },
      },
    }).start();
    started.push(traffic);
    const github = await new GitHubApiEmulator().start();
    started.push(github);
    let prometheus: PrometheusServer | undefined;
    if (options.prometheus !== false) {
      prometheus = await new PrometheusServer().start({ targets: [traffic.target] });
      started.push(prometheus);
    }
    return {
      kube,
      apps,
      traffic,
      prometheus,
      github,
      namespace: options.namespace ?? NAMESPACE,
      virtualService: options.virtualService ?? SERVICE,
      scraped: async (timeoutMs = 10_000) => {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          const res = await fetch(
            `${prometheus?.url}/api/v1/query?query=${encodeURIComponent(stableSeries(options.stableVersion ?? "v1"))}`,
          );
          const body = (await res.json()) as { data?: { result?: unknown[] } };
          if ((body.data?.result?.length ?? 0) > 0) return;
          await new Promise((r) => setTimeout(r, 200));
        }
        throw new Error("Prometheus has not scraped the traffic simulator yet");
      },
      stop: async () => {
        await Promise.all(started.map((s) => s.stop()));
      },
    };
  } catch (error) {
    await Promise.all(started.map((s) => s.stop()));
    throw error;
  }
}
