/**
 * The composition root: builds the ports from the validated Config (Kubernetes, Prometheus, clock,
 * reporters) and runs the engine. The only module that knows every adapter; main.ts only calls it.
 */
import * as core from "@actions/core";
import {
  recordedDeploymentsCheckable,
  recordedNamesRefused,
  recordedRunContext,
  versionLabels,
} from "./action-records.ts";
import {
  REPORT_FLUSH_MAX_RETRY_AFTER_MS,
  REPORT_FLUSH_ON_CANCEL_MS,
  REPORT_FLUSH_TIMEOUT_MS,
} from "./constants.ts";
import { errorMessage } from "./error-message.ts";
import { maskKubeconfig } from "./inputs/config.ts";
import type { Config } from "./inputs/types.ts";
import { MeshError } from "./mesh/errors.ts";
import { loadKubeConfig } from "./mesh/kubeconfig.ts";
import { KubernetesMeshApi } from "./mesh/kubernetes.ts";
import { preflightAll } from "./mesh/lockstep-preflight.ts";
import { LockstepRouter } from "./mesh/lockstep-router.ts";
import { PreflightError } from "./mesh/preflight.ts";
import { VirtualServiceRouter } from "./mesh/router.ts";
import { targetOf } from "./mesh/routes.ts";
import { IstioPrometheusObserver } from "./metrics/istio-observer.ts";
import { matcher, serviceMatchers, versionMatcher } from "./metrics/istio-queries.ts";
import { PrometheusClient } from "./metrics/prometheus-client.ts";
import { createGitHubReporter, type GitHubReporter } from "./report/github.ts";
import { createOctokit } from "./report/github-client.ts";
import { GitHubRunStatus } from "./report/github-runs.ts";
import { renderMarkdown } from "./report/markdown.ts";
import { buildReport, type ReportModel } from "./report/model.ts";
import { progressLine } from "./report/progress.ts";
import { systemClock } from "./rollout/clock.ts";
import { type EngineOutcome, RolloutEngine } from "./rollout/engine.ts";
import type { EventSink, RolloutEvent } from "./rollout/events.ts";
import { canaryScaledDown, readyCanary } from "./rollout/finalize.ts";
import type { RolloutState } from "./rollout/model/state.ts";
import type { MetricsPort, TrafficPort, TrafficView, WorkloadPort } from "./rollout/ports.ts";
import type { RunContext } from "./run-context.ts";
import { engineSettings } from "./settings.ts";
import { clearInFlight, type InFlight, recordInFlight } from "./state-helper.ts";
import { logText } from "./untrusted-text.ts";
import { KubernetesWorkloads } from "./workloads/kubernetes-deployments.ts";

export interface ActionRun {
  outcome: EngineOutcome;
  report: ReportModel;
  markdown: string;
}

function selectorsFor(
  config: Config,
  labels: { stable: Record<string, string>; canary: Record<string, string> },
  services: { stable: { name: string; namespace: string }; canary: { name: string; namespace: string } },
) {
  if (config.canarySelector && config.stableSelector) {
    return {
      canary: `${matcher("reporter", config.reporter)},${config.canarySelector}`,
      stable: `${matcher("reporter", config.reporter)},${config.stableSelector}`,
    };
  }
  const canaryService = serviceMatchers(config.reporter, services.canary.name, services.canary.namespace);
  const stableService = serviceMatchers(config.reporter, services.stable.name, services.stable.namespace);
  if (config.split.mode === "host") return { canary: canaryService, stable: stableService };
  const canary = versionMatcher(labels.canary);
  const stable = versionMatcher(labels.stable);
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

/** Collects events, prints progress, keeps the post step informed, and updates GitHub. */
class Reporters implements EventSink {
  readonly events: RolloutEvent[] = [];
  private stages = 0;
  private inFlight: InFlight | undefined;
  private readonly github: GitHubReporter | undefined;
  private readonly render: () => { model: ReportModel; markdown: string };
  constructor(github: GitHubReporter | undefined, render: () => { model: ReportModel; markdown: string }) {
    this.github = github;
    this.render = render;
  }

  async emit(event: RolloutEvent): Promise<void> {
    this.events.push(event);
    if (event.type === "started") {
      this.stages = event.stages.length;
    }
    if (event.type === "analysis" || event.type === "stage-end")
      core.debug(
        `${event.type} at ${event.weight} %: ${JSON.stringify(event.type === "analysis" ? event.verdict : event)}`,
      );
    const headline = event.type === "finished" ? this.render().model.headline : undefined;
    const line = progressLine(event, this.stages, headline);
    if (line) (event.type === "warning" ? core.warning : core.info)(line);
    // The post step must know of a weight before it is written: a kill right after the write
    // leaves no chance to say so afterwards.
    if (event.type === "moving") {
      this.inFlight = { rolloutId: event.rolloutId, weight: event.weight, stage: event.stage };
      recordInFlight(this.inFlight);
    }
    // A pass is never undone: a kill from here on leaves the post step only the pass to record.
    if (event.type === "passed" && this.inFlight) {
      this.inFlight = { ...this.inFlight, passed: { reason: event.reason, finalize: event.finalize } };
      recordInFlight(this.inFlight);
    }
    if (event.type === "finished") {
      this.inFlight = undefined;
      clearInFlight();
    }
    // The comment is updated when something a person cares about changes, not at every interval.
    if (this.github && (event.type === "weight" || event.type === "stage-end" || event.type === "finished")) {
      const { model, markdown } = this.render();
      // Returns at once: the report goes out in the background and never holds a traffic decision.
      this.github.update(model, markdown);
    }
  }
}

/** The VirtualServices the config names, as one traffic port (one router, or several in lockstep). */
function trafficPortFor(api: KubernetesMeshApi, config: Config): TrafficPort {
  const target = targetOf(config.split);
  const routers = config.virtualServices.map(
    (ref) =>
      new VirtualServiceRouter(api, {
        namespace: ref.namespace,
        name: ref.name,
        target,
        routes: ref.routes,
        onRetry: (message: string) => core.info(logText(message)),
      }),
  );
  return routers.length === 1
    ? (routers[0] as VirtualServiceRouter)
    : new LockstepRouter(routers, { onRetry: (message: string) => core.info(message) });
}

/** The Deployments behind the versions, found from the labels preflight read (or the inputs). */
function workloadPortFor(
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
async function resolvedWorkloads(
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
function scaledDownCanaryPort(
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
function runStatusFor(config: Config, context: RunContext): GitHubRunStatus | undefined {
  if (!config.githubToken || !context.repository || config.dryRun) return undefined;
  return new GitHubRunStatus(
    createOctokit(config.githubToken, { baseUrl: context.apiUrl }),
    context.repository,
    (message) => core.warning(message),
  );
}

/** `VirtualService shop/backend`, or `VirtualServices shop/backend, istio-system/backend-gateway`. */
function describeVirtualServices(config: Config): string {
  const names = config.virtualServices.map((r) => `${r.namespace}/${r.name}`);
  return `VirtualService${names.length > 1 ? "s" : ""} ${names.join(", ")}`;
}

export async function runAction(
  config: Config,
  context: RunContext,
  signal?: AbortSignal,
): Promise<ActionRun> {
  const kubeConfig = loadKubeConfig({
    kubeconfig: config.kubeconfig,
    context: config.context,
    mask: maskKubeconfig,
  });
  const api = new KubernetesMeshApi(kubeConfig);
  const where = describeVirtualServices(config);
  const target = targetOf(config.split);
  const traffic = trafficPortFor(api, config);

  let metrics: MetricsPort | undefined;
  let queries: { canary: string; stable: string } | undefined;
  let workloads: WorkloadPort | undefined;
  const moves = config.command === "rollout" || config.command === "promote";
  const finalizing = config.finalize.policy !== "none";
  if (moves) {
    const check = () =>
      preflightAll(api, config.virtualServices, config.split, target, {
        rootNamespace: config.istioRootNamespace,
      });
    const all = await check().catch(async (error: unknown) => {
      // After a finalized promotion the canary runs no pods, which preflight refuses: scale it up
      // by the names the finalization recorded (no pods are left to find it by) and check again.
      const previous =
        error instanceof PreflightError && finalizing && config.command === "rollout" && !config.dryRun
          ? (await traffic.read(signal)).state
          : undefined;
      if (!canaryScaledDown(previous)) throw error;
      const labels = recordedDeploymentsCheckable(config, error as PreflightError);
      if (!labels) throw error;
      const ready = await readyCanary(
        scaledDownCanaryPort(api, config, previous, labels),
        config.finalize,
        previous,
        signal,
      ).catch((failure: unknown) => {
        throw recordedNamesRefused(config, previous, failure);
      });
      core.info(
        logText(
          `◇ finalize: the canary Deployment was scaled back up for this release: ${ready?.status.summary}`,
        ),
      );
      return check();
    });
    const checked = all.primary;
    for (const w of all.warnings) core.warning(w);
    for (const n of all.notes) core.info(logText(n));
    const rule = checked.destinationRule ? `; DestinationRule ${checked.destinationRule}` : "";
    core.info(
      logText(
        `preflight passed: managed routes ${all.managedRoutes}${rule}; canary pods ready with their sidecar`,
      ),
    );
    if (!config.skipAnalysis && config.prometheus) {
      const selectors = selectorsFor(
        config,
        { stable: checked.stableLabels, canary: checked.canaryLabels },
        { stable: checked.stableService, canary: checked.canaryService },
      );
      const client = new PrometheusClient({
        url: config.prometheus.url,
        displayUrl: config.prometheus.displayUrl,
        headers: config.prometheus.headers,
        intervalMs: config.intervalMs,
      });
      metrics = new IstioPrometheusObserver(client, selectors, config.latencyThresholdMs);
      await metrics.checkReady();
      queries = metrics.queries();
      core.info(logText(`Prometheus answers and has series for the stable version: {${selectors.stable}}`));
    }
    if (finalizing)
      workloads = await resolvedWorkloads(workloadPortFor(api, config, checked), config, signal);
  } else if (finalizing && config.command === "rollback") {
    // A rollback while a promotion is being finalized checks the stable Deployment first, by the
    // names the record gives only where the subsets' labels vouch for them (issue 20).
    const previous = (await traffic.read(signal)).state;
    if (previous?.status === "finalizing") {
      const labels = await versionLabels(api, config, target, signal);
      workloads = scaledDownCanaryPort(api, config, labels ? previous : undefined, labels);
    }
  }

  const reportContext = {
    namespace: config.namespace,
    virtualService: config.virtualService,
    latencyThresholdMs: config.latencyThresholdMs,
    runUrl: context.runUrl,
    prometheusUrl: config.prometheus?.url,
    queries,
    maxErrorRate: config.maxErrorRate,
    maxRatio: config.maxRatioToStable,
  };
  let reporters: Reporters | undefined;
  const render = () => {
    const model = buildReport(reporters?.events ?? [], reportContext);
    return { model, markdown: renderMarkdown(model) };
  };
  const reportOn =
    config.command === "rollout" ? context : await recordedRunContext(traffic, config, context);
  const github = config.dryRun ? undefined : createGitHubReporter(config, reportOn);
  reporters = new Reporters(github, render);

  const engine = new RolloutEngine(
    engineSettings(config),
    {
      holder: context.holder,
      commit: context.commit,
      // Each attempt of a run is its own rollout: a re-run after a rollback starts afresh.
      newRolloutId: `${context.commit.slice(0, 7)}-${context.runId ?? Date.now().toString(36)}${context.runAttempt && context.runAttempt !== "1" ? `-${context.runAttempt}` : ""}`,
    },
    {
      traffic,
      metrics,
      workloads,
      runs: runStatusFor(config, context),
      clock: systemClock,
      events: reporters,
      signal,
    },
    where,
  );
  let outcome: EngineOutcome;
  try {
    outcome = await engine.run();
  } finally {
    // The final report is always attempted, within what the runner leaves after a cancel.
    await (signal?.aborted
      ? github?.flush(REPORT_FLUSH_ON_CANCEL_MS)
      : github?.flush(REPORT_FLUSH_TIMEOUT_MS, REPORT_FLUSH_MAX_RETRY_AFTER_MS));
  }
  if (outcome.plan) {
    for (const { weight, patches } of outcome.plan)
      for (const { object, patch } of patches)
        core.info(
          logText(`dry run: the JSON Patch for ${weight} % (${object}):\n${JSON.stringify(patch, null, 2)}`),
        );
  }
  const { model, markdown } = render();
  return { outcome, report: model, markdown };
}

export interface Cleanup {
  /** What the post step wrote, when it restored 100 % stable. */
  outcome?: EngineOutcome;
  /** One line for the log: what it did, or why nothing was left to do. */
  note: string;
}

/**
 * The post step's work. `inFlight`: main stopped in the middle of a stage; otherwise `lastMove` is
 * the last weight main moved to before it ended. Either way the routes decide, not the saved
 * state: when any VirtualService is still on the canary in a rollout that is progressing there
 * (main stopped, or one of several refused the rollback until main ended), restore 100 % stable
 * and record why.
 */
export async function runCleanup(
  config: Config,
  context: RunContext,
  lastMove: InFlight,
  inFlight: boolean,
): Promise<Cleanup> {
  const api = new KubernetesMeshApi(
    loadKubeConfig({ kubeconfig: config.kubeconfig, context: config.context, mask: maskKubeconfig }),
  );
  const traffic = trafficPortFor(api, config);
  const events: RolloutEvent[] = [];
  const engine = new RolloutEngine(
    { ...engineSettings(config), command: "rollback", dryRun: false },
    { holder: context.holder, commit: context.commit, newRolloutId: "" },
    { traffic, clock: systemClock, events: { emit: (e) => void events.push(e) } },
    describeVirtualServices(config),
  );
  const several = config.virtualServices.length > 1;
  const reason = (left: string) =>
    inFlight
      ? `The job stopped during stage ${lastMove.stage + 1} (${lastMove.weight} % canary), cancelled or crashed; the post step restored 100 % stable${several ? `; left on the canary: ${left}` : ""}`
      : `The main step ended rollout ${lastMove.rolloutId} with a rollback, but ${left} had not taken it (refused until the main step ended); the post step restored 100 % stable`;
  // After the last stage passed nothing rolls the canary back: the pass is recorded if main could not.
  const outcome = lastMove.passed
    ? await engine.recordPass(lastMove.rolloutId, lastMove.passed.reason, lastMove.passed.finalize)
    : await engine.abandon(lastMove.rolloutId, reason, [lastMove.weight], !inFlight);
  if (!outcome) return { note: leftAsItIs(await traffic.read()) };
  const github = createGitHubReporter(config, {
    ...context,
    commit: outcome.state?.commit ?? context.commit,
  });
  const model = buildReport(events, {
    namespace: config.namespace,
    virtualService: config.virtualService,
    runUrl: context.runUrl,
  });
  github?.update(model, renderMarkdown(model));
  await github?.flush(REPORT_FLUSH_ON_CANCEL_MS);
  return { outcome, note: outcome.reason };
}

/** Why the post step left the routes alone: all on stable, or on the canary as recorded. */
function leftAsItIs(view: TrafficView): string {
  if (view.weights.every((w) => w === 0))
    return "Every managed route sends all traffic to stable: nothing to clean up";
  const state = view.state;
  const recorded = state
    ? `rollout ${state.rolloutId} is recorded as ${state.status}`
    : "no rollout is recorded";
  return `The managed routes send ${view.weights.join(", ")} % to the canary and ${recorded}: the post step leaves them as they are (a paused or promoted rollout, another run's, or someone else's weights)`;
}
