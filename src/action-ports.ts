/**
 * The composition root's adapters, built from the validated Config: the Kubernetes client, the
 * traffic port (one router, or several in lockstep), the Deployments behind the versions, GitHub's
 * word on other runs, and the Prometheus selectors that tell the versions apart.
 */
import * as core from "@actions/core";
import { splitBudget } from "./checks/budget.ts";
import { preflightChecks } from "./checks/preflight.ts";
import { type CheckVersions, PrometheusChecks } from "./checks/prometheus-checks.ts";
import { errorMessage } from "./error-message.ts";
import { maskKubeconfig } from "./inputs/config.ts";
import type { Config } from "./inputs/types.ts";
import { MeshError } from "./mesh/errors.ts";
import { loadKubeConfig } from "./mesh/kubeconfig.ts";
import { KubernetesMeshApi } from "./mesh/kubernetes.ts";
import { LockstepRouter } from "./mesh/lockstep-router.ts";
import { HttpRouteRouter, VirtualServiceRouter } from "./mesh/router.ts";
import { targetOf } from "./mesh/routes.ts";
import { matcher, serviceMatchers, versionMatcher } from "./metrics/istio-queries.ts";
import type { PrometheusClient } from "./metrics/prometheus-client.ts";
import { type CommitLister, CompareCommitLister } from "./report/commits-github.ts";
import { createOctokit } from "./report/github-client.ts";
import { GitHubRunStatus } from "./report/github-runs.ts";
import { systemClock } from "./rollout/clock.ts";
import type { CustomChecksPort } from "./rollout/custom-checks.ts";
import type { RolloutState } from "./rollout/model/state.ts";
import type { TrafficPort, WorkloadPort } from "./rollout/ports.ts";
import type { RunContext } from "./run-context.ts";
import { logText } from "./untrusted-text.ts";
import { KubernetesWorkloads } from "./workloads/kubernetes-deployments.ts";

/** The cluster the inputs name (kubeconfig and context), its credentials masked in the log. */
export function meshApiFor(config: Config): KubernetesMeshApi {
  return new KubernetesMeshApi(
    loadKubeConfig({ kubeconfig: config.kubeconfig, context: config.context, mask: maskKubeconfig }),
  );
}

/**
 * The Prometheus selectors of each version: the inputs', else the Services' and subsets' labels.
 * `reporter`: the one to query (the input's `auto` resolved by effectiveReporter). In ambient mode
 * the series come from a waypoint, which knows versions by canonical revision only, whatever the
 * reporter label says (early ambient releases wrote `destination`).
 */
export function selectorsFor(
  config: Config,
  labels: { stable: Record<string, string>; canary: Record<string, string> },
  services: { stable: { name: string; namespace: string }; canary: { name: string; namespace: string } },
  reporter: string = config.reporter,
  dataplane: "sidecar" | "ambient" = "sidecar",
) {
  if (config.canarySelector && config.stableSelector) {
    return {
      canary: `${matcher("reporter", reporter)},${config.canarySelector}`,
      stable: `${matcher("reporter", reporter)},${config.stableSelector}`,
    };
  }
  const canaryService = serviceMatchers(reporter, services.canary.name, services.canary.namespace);
  const stableService = serviceMatchers(reporter, services.stable.name, services.stable.namespace);
  if (config.split.mode === "host") return { canary: canaryService, stable: stableService };
  const byWaypoint = dataplane === "ambient" ? "waypoint" : reporter;
  const canary = versionMatcher(labels.canary, byWaypoint);
  const stable = versionMatcher(labels.stable, byWaypoint);
  if (Object.keys(labels.canary).length === 0 || Object.keys(labels.stable).length === 0) {
    throw new MeshError(
      `the subsets' pod labels are unknown: no DestinationRule defining them could be read (see the warnings above), so Istio's metrics cannot be told apart by version; grant the action read access to DestinationRules there, or set canary-selector and stable-selector`,
    );
  }
  if (!canary || !stable) {
    throw new MeshError(
      `the DestinationRule subsets' labels carry no version (neither a 'version' label nor a canonical revision), so Istio's metrics cannot tell the versions apart; set canary-selector and stable-selector (for example destination_workload="backend-v2")`,
    );
  }
  return { canary: `${canaryService},${canary}`, stable: `${stableService},${stable}` };
}

/** The VirtualServices (or HTTPRoutes) the config names, as one traffic port (one router, or several in lockstep). */
export function trafficPortFor(api: KubernetesMeshApi, config: Config): TrafficPort {
  const target = targetOf(config.split);
  const routers = config.virtualServices.map((ref) => {
    const options = {
      namespace: ref.namespace,
      name: ref.name,
      target,
      routes: ref.routes,
      preview: config.preview.policy,
      onRetry: (message: string) => core.info(logText(message)),
    };
    return config.routeKind === "HTTPRoute"
      ? new HttpRouteRouter(api, options)
      : new VirtualServiceRouter(api, options);
  });
  return routers.length === 1
    ? (routers[0] as TrafficPort)
    : new LockstepRouter(routers, { onRetry: (message: string) => core.info(message) });
}

/** The Deployments behind the versions, found from the labels preflight read (or the inputs). */
export function workloadPortFor(
  api: KubernetesMeshApi,
  config: Config,
  checked: { stableLabels: Record<string, string>; canaryLabels: Record<string, string> },
): WorkloadPort {
  return new KubernetesWorkloads({
    api,
    namespace: config.namespace,
    stableLabels: checked.stableLabels,
    canaryLabels: checked.canaryLabels,
    stableDeployment: config.finalize.stableDeployment,
    canaryDeployment: config.finalize.canaryDeployment,
    clock: systemClock,
    warn: (message) => core.warning(message),
  });
}

/**
 * The port once it has found one Deployment per version. When it cannot, `finalize: copy` is
 * refused before any write; `auto` (the default) warns and promotes as `none` does.
 */
export async function resolvedWorkloads(
  port: WorkloadPort,
  config: Config,
  signal?: AbortSignal,
): Promise<WorkloadPort | undefined> {
  try {
    await port.resolve(signal);
    return port;
  } catch (error) {
    if (signal?.aborted) throw error;
    if (config.finalize.policy === "copy")
      throw new MeshError(
        `Input 'finalize': copy needs one Deployment per version, and ${errorMessage(error)}. Nothing was changed. Set stable-deployment and canary-deployment, or finalize: auto (copy where it can, else warn) or none`,
      );
    core.warning(
      `finalize: auto (the default) copies a promotion onto the stable Deployment only where each version is one Deployment, and ${errorMessage(error)}. This promotion will not be finalized: the canary keeps 100 % as with finalize: none. Set stable-deployment and canary-deployment, or finalize: none to silence this`,
    );
    return undefined;
  }
}

/**
 * The Deployments by name, before preflight: the inputs, else those the last finalization recorded.
 * Enough to scale and wait (it copies no template, which needs the versions' labels).
 */
export function scaledDownCanaryPort(
  api: KubernetesMeshApi,
  config: Config,
  previous: RolloutState | undefined,
  labels: { stable: Record<string, string>; canary: Record<string, string> } = { stable: {}, canary: {} },
): WorkloadPort {
  return new KubernetesWorkloads({
    api,
    namespace: config.namespace,
    stableLabels: labels.stable,
    canaryLabels: labels.canary,
    stableDeployment: config.finalize.stableDeployment ?? previous?.deployments?.stable,
    canaryDeployment: config.finalize.canaryDeployment ?? previous?.deployments?.canary,
    clock: systemClock,
    warn: (message) => core.warning(message),
  });
}

/** GitHub's word on a lease holder's run, to take over a dead run's lease (needs a token and a repository). */
export function runStatusFor(config: Config, context: RunContext): GitHubRunStatus | undefined {
  if (!config.githubToken || !context.repository || config.dryRun) return undefined;
  return new GitHubRunStatus(
    createOctokit(config.githubToken, { baseUrl: context.apiUrl }),
    context.repository,
    (message) => core.warning(message),
  );
}

/** The commits since the last promoted release, asked of GitHub's compare API (needs a token and a repository). */
export function commitListerFor(config: Config, context: RunContext, onChange: () => void): CommitLister {
  const ask = config.githubToken && context.repository;
  return new CompareCommitLister(
    {
      octokit: ask ? createOctokit(config.githubToken, { baseUrl: context.apiUrl }) : undefined,
      repository: context.repository,
      serverUrl: context.serverUrl,
    },
    onChange,
  );
}

/** `VirtualService shop/backend`, `VirtualServices shop/backend, istio-system/backend-gateway`, `HTTPRoute shop/backend`. */
export function describeVirtualServices(config: Config): string {
  const names = config.virtualServices.map((r) => `${r.namespace}/${r.name}`);
  return `${config.routeKind ?? "VirtualService"}${names.length > 1 ? "s" : ""} ${names.join(", ")}`;
}

/** What `{{ version }}` and `{{ selector }}` stand for in a custom check, for each version. */
function checkVersions(
  labels: { stable: Record<string, string>; canary: Record<string, string> },
  selectors: { stable: string; canary: string },
): CheckVersions {
  const value = (l: Record<string, string>) =>
    l.version ?? l["service.istio.io/canonical-revision"] ?? l["app.kubernetes.io/version"];
  const of = (l: Record<string, string>, selector: string) => {
    const version = value(l);
    return version === undefined ? { selector } : { version, selector };
  };
  return { canary: of(labels.canary, selectors.canary), stable: of(labels.stable, selectors.stable) };
}

/**
 * The custom checks (issue 23), their queries run once against Prometheus first (refused by name
 * before any write); undefined without checks.
 */
export async function customChecksFor(
  config: Config,
  client: PrometheusClient,
  labels: { stable: Record<string, string>; canary: Record<string, string> },
  selectors: { stable: string; canary: string },
): Promise<CustomChecksPort | undefined> {
  if (config.checks.length === 0) return undefined;
  const versions = checkVersions(labels, selectors);
  await preflightChecks(client, config.checks, versions.stable);
  const budget = splitBudget(
    config.falseRollbackBudget,
    config.latencyThresholdMs !== undefined,
    config.checks,
  );
  core.info(
    `custom checks ready: ${config.checks.map((c) => `${c.name} (${c.kind}, ${c.mode})`).join(", ")}; each harm test at α = ${budget.perTest.toPrecision(3)}`,
  );
  return new PrometheusChecks(client, config.checks, versions, budget.perTest);
}
