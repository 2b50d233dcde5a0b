/**
 * The composition root: builds the ports from the validated Config (Kubernetes, Prometheus, clock,
 * reporters) and runs the engine. The only module that knows every adapter; main.ts only calls it.
 * The adapters are built in action-ports.ts, the event sink is action-reporters.ts, and the post
 * step's cleanup is action-post.ts.
 */
import * as core from "@actions/core";
import {
  commitListerFor,
  customChecksFor,
  describeVirtualServices,
  meshApiFor,
  resolvedWorkloads,
  runStatusFor,
  scaledDownCanaryPort,
  selectorsFor,
  trafficPortFor,
  workloadPortFor,
} from "./action-ports.ts";
import {
  recordedDeploymentsCheckable,
  recordedNamesRefused,
  recordedRunContext,
  versionLabels,
} from "./action-records.ts";
import { Reporters } from "./action-reporters.ts";
import {
  REPORT_COMMITS_WAIT_MS,
  REPORT_FLUSH_MAX_RETRY_AFTER_MS,
  REPORT_FLUSH_ON_CANCEL_MS,
  REPORT_FLUSH_TIMEOUT_MS,
} from "./constants.ts";
import type { Config } from "./inputs/types.ts";
import type { KubernetesMeshApi } from "./mesh/kubernetes.ts";
import { preflightAll } from "./mesh/lockstep-preflight.ts";
import { PreflightError, type PreflightResult } from "./mesh/preflight.ts";
import { targetOf } from "./mesh/routes.ts";
import { IstioPrometheusObserver } from "./metrics/istio-observer.ts";
import { effectiveReporter } from "./metrics/istio-queries.ts";
import { PrometheusClient } from "./metrics/prometheus-client.ts";
import { createGitHubReporter, type GitHubReporter } from "./report/github.ts";
import { renderMarkdown } from "./report/markdown.ts";
import { buildReport, type ReportContext, type ReportModel } from "./report/model.ts";
import { systemClock } from "./rollout/clock.ts";
import type { CustomChecksPort } from "./rollout/custom-checks.ts";
import { type EngineOutcome, RolloutEngine } from "./rollout/engine.ts";
import { canaryScaledDown, readyCanary } from "./rollout/finalize.ts";
import type { MetricsPort, TrafficPort, WorkloadPort } from "./rollout/ports.ts";
import type { RunContext } from "./run-context.ts";
import { engineSettings } from "./settings.ts";
import { logText } from "./untrusted-text.ts";

export interface ActionRun {
  outcome: EngineOutcome;
  report: ReportModel;
  markdown: string;
}

/** The ports only a checked mesh gives: Prometheus' observer and the Deployments behind the versions. */
interface CheckedPorts {
  metrics?: MetricsPort;
  checks?: CustomChecksPort;
  queries?: { canary: string; stable: string };
  workloads?: WorkloadPort;
}

export async function runAction(
  config: Config,
  context: RunContext,
  signal?: AbortSignal,
): Promise<ActionRun> {
  const api = meshApiFor(config);
  const traffic = trafficPortFor(api, config);
  const { metrics, checks, queries, workloads } = await checkedPorts(api, traffic, config, signal);

  const reportContext: ReportContext = {
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
  const reportOn =
    config.command === "rollout" || config.command === "preview"
      ? context
      : await recordedRunContext(traffic, config, context);
  const commits = commitListerFor(config, reportOn, () => reporters?.refresh());
  const render = () => {
    const model = buildReport(reporters?.events ?? [], { ...reportContext, commits: commits.current() });
    return { model, markdown: renderMarkdown(model) };
  };
  const github = config.dryRun ? undefined : createGitHubReporter(config, reportOn);
  reporters = new Reporters(github, render, commits);

  const engine = new RolloutEngine(
    engineSettings(config),
    { holder: context.holder, commit: context.commit, newRolloutId: newRolloutId(context) },
    {
      traffic,
      metrics,
      checks,
      workloads,
      runs: runStatusFor(config, context),
      clock: systemClock,
      events: reporters,
      signal,
    },
    describeVirtualServices(config),
  );
  const outcome = await runThenFlush(engine, github, signal, () =>
    commits.settle(signal?.aborted ? 0 : REPORT_COMMITS_WAIT_MS),
  );
  logDryRunPlan(outcome);
  const { model, markdown } = render();
  return { outcome, report: model, markdown };
}

/** Each attempt of a run is its own rollout: a re-run after a rollback starts afresh. */
function newRolloutId(context: RunContext): string {
  const attempt = context.runAttempt && context.runAttempt !== "1" ? `-${context.runAttempt}` : "";
  return `${context.commit.slice(0, 7)}-${context.runId ?? Date.now().toString(36)}${attempt}`;
}

/** Runs the engine; the final report is always attempted, within what the runner leaves after a cancel. */
async function runThenFlush(
  engine: RolloutEngine,
  github: GitHubReporter | undefined,
  signal: AbortSignal | undefined,
  beforeFlush: () => Promise<void>,
): Promise<EngineOutcome> {
  try {
    return await engine.run();
  } finally {
    // Every traffic decision is written by now: what the report still waits for, it waits for here.
    await beforeFlush();
    await (signal?.aborted
      ? github?.flush(REPORT_FLUSH_ON_CANCEL_MS)
      : github?.flush(REPORT_FLUSH_TIMEOUT_MS, REPORT_FLUSH_MAX_RETRY_AFTER_MS));
  }
}

function logDryRunPlan(outcome: EngineOutcome): void {
  for (const { weight, patches } of outcome.plan ?? [])
    for (const { object, patch } of patches)
      core.info(
        logText(`dry run: the JSON Patch for ${weight} % (${object}):\n${JSON.stringify(patch, null, 2)}`),
      );
}

/**
 * A command that moves traffic checks the mesh first (preflight, then Prometheus), and finds the
 * Deployments to finalize onto; a rollback while a promotion is being finalized checks the stable
 * Deployment first. The other commands need neither.
 */
async function checkedPorts(
  api: KubernetesMeshApi,
  traffic: TrafficPort,
  config: Config,
  signal?: AbortSignal,
): Promise<CheckedPorts> {
  const finalizing = config.finalize.policy !== "none";
  // A preview sends its requests to the canary: its subset and ready pods are checked as for a rollout.
  if (config.command === "preview") {
    await checkMesh(api, traffic, config, signal);
    return {};
  }
  if (config.command === "rollout" || config.command === "promote") {
    const checked = await checkMesh(api, traffic, config, signal);
    const observed = await observerFor(config, checked);
    const workloads = finalizing
      ? await resolvedWorkloads(workloadPortFor(api, config, checked), config, signal)
      : undefined;
    return { ...observed, workloads };
  }
  if (finalizing && config.command === "rollback") {
    const previous = (await traffic.read(signal)).state;
    if (previous?.status === "finalizing") {
      // The record's Deployment names are used only where the subsets' labels vouch for them (issue 20).
      const labels = await versionLabels(api, config, targetOf(config.split), signal);
      return { workloads: scaledDownCanaryPort(api, config, labels ? previous : undefined, labels) };
    }
  }
  return {};
}

/** Preflight of every VirtualService, logged; the primary one's result. */
async function checkMesh(
  api: KubernetesMeshApi,
  traffic: TrafficPort,
  config: Config,
  signal?: AbortSignal,
): Promise<PreflightResult> {
  const check = () =>
    preflightAll(api, config.virtualServices, config.split, targetOf(config.split), {
      rootNamespace: config.istioRootNamespace,
      kind: config.routeKind,
    });
  const all = await check().catch(async (error: unknown) => {
    await scaleUpFinalizedCanary(api, traffic, config, error, signal);
    return check();
  });
  const checked = all.primary;
  for (const w of all.warnings) core.warning(w);
  for (const n of all.notes) core.info(logText(n));
  const rule = checked.destinationRule ? `; DestinationRule ${checked.destinationRule}` : "";
  const pods =
    checked.dataplane === "ambient"
      ? `canary pods ready in ambient mode, served by waypoint ${checked.waypoints.join(", ")}`
      : "canary pods ready with their sidecar";
  core.info(logText(`preflight passed: managed routes ${all.managedRoutes}${rule}; ${pods}`));
  return checked;
}

/**
 * After a finalized promotion the canary runs no pods, which preflight refuses: scale it up by the
 * names the finalization recorded (no pods are left to find it by), so that preflight can check
 * again. A preview needs the canary's pods as much as a rollout does. Rethrows preflight's error when that is not the case.
 */
async function scaleUpFinalizedCanary(
  api: KubernetesMeshApi,
  traffic: TrafficPort,
  config: Config,
  error: unknown,
  signal?: AbortSignal,
): Promise<void> {
  const finalizing = config.finalize.policy !== "none";
  const previous =
    error instanceof PreflightError &&
    finalizing &&
    (config.command === "rollout" || config.command === "preview") &&
    !config.dryRun
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
}

/** Prometheus' observer of the two versions, checked to answer, unless the analysis is skipped. */
async function observerFor(
  config: Config,
  checked: PreflightResult,
): Promise<Pick<CheckedPorts, "metrics" | "checks" | "queries">> {
  if (config.skipAnalysis || !config.prometheus) {
    if (config.checks.length > 0) core.warning("skip-analysis is true: the custom checks are not judged");
    return {};
  }
  const { reporter, warning } = effectiveReporter(config.reporter, checked.dataplane);
  if (warning) core.warning(warning);
  else if (reporter !== config.reporter)
    core.info(`reporter auto: reading ${reporter}'s metrics (${checked.dataplane} mode)`);
  const selectors = selectorsFor(
    config,
    { stable: checked.stableLabels, canary: checked.canaryLabels },
    { stable: checked.stableService, canary: checked.canaryService },
    reporter,
    checked.dataplane,
  );
  const client = new PrometheusClient({
    url: config.prometheus.url,
    displayUrl: config.prometheus.displayUrl,
    headers: config.prometheus.headers,
    intervalMs: config.intervalMs,
  });
  const metrics = new IstioPrometheusObserver(client, selectors, config.latencyThresholdMs);
  await metrics.checkReady();
  core.info(logText(`Prometheus answers and has series for the stable version: {${selectors.stable}}`));
  const labels = { stable: checked.stableLabels, canary: checked.canaryLabels };
  const checks = await customChecksFor(config, client, labels, selectors);
  return { metrics, checks, queries: metrics.queries() };
}
