/**
 * The WorkloadPort on Kubernetes Deployments (issue 14's release model): finds the Deployment
 * behind each version, copies the canary's pod template onto the stable one, scales the canary and
 * waits as `kubectl rollout status` would, with the pods' istio-proxy sidecars. Reads and writes go
 * through the WorkloadApi of src/mesh/kubernetes.ts; every call is retried as the router's are.
 */
import type * as k8s from "@kubernetes/client-node";
import {
  DEPLOYMENT_PROGRESS_DEADLINE_DEFAULT_S,
  FIELD_MANAGER,
  TRAFFIC_RETRY_BUDGET_MS,
} from "../constants.ts";
import { errorMessage } from "../error-message.ts";
import { MeshError } from "../mesh/errors.ts";
import { labelSelector, type WorkloadApi } from "../mesh/kubernetes.ts";
import { retry } from "../retry.ts";
import type { Clock, CopiedTemplate, WorkloadPort, WorkloadStatus } from "../rollout/ports.ts";
import {
  type DeploymentLike,
  promotedTemplate,
  templateImages,
  templatePatch,
} from "./deployment-template.ts";
import { findDeployment, type Version } from "./resolve-deployments.ts";
import { podVerdict, rolloutVerdict } from "./rollout-status.ts";
import { runsImages, templateChange, writerKeys, writersSince } from "./stable-check.ts";

/** How often a wait reads the Deployment and its pods. */
const DEFAULT_POLL_MS = 2_000;
/** Warning events named per status, newest first. */
const MAX_EVENTS = 5;

export interface KubernetesWorkloadsOptions {
  api: WorkloadApi;
  namespace: string;
  /** The pod labels each version is selected by (PreflightResult.stableLabels / canaryLabels). */
  stableLabels: Record<string, string>;
  canaryLabels: Record<string, string>;
  /** Inputs `stable-deployment` / `canary-deployment`; found from the pods when absent. */
  stableDeployment?: string;
  canaryDeployment?: string;
  clock: Clock;
  pollMs?: number;
  /** Retry budget of each API call (default: the traffic router's). */
  retryBudgetMs?: number;
  /** Where reads that only explain a problem (events, owner ReplicaSets) report that they failed. */
  warn?: (message: string) => void;
}

type Deployment = k8s.V1Deployment & DeploymentLike;

export class KubernetesWorkloads implements WorkloadPort {
  private readonly o: KubernetesWorkloadsOptions;
  private resolved?: { stable: string; canary: string };
  private readonly warned = new Set<string>();

  constructor(options: KubernetesWorkloadsOptions) {
    this.o = options;
  }

  async resolve(signal?: AbortSignal): Promise<{ stable: string; canary: string }> {
    if (this.resolved) return this.resolved;
    const find = (version: Version, labels: Record<string, string>, name: string | undefined) =>
      findDeployment(
        {
          api: this.o.api,
          namespace: this.o.namespace,
          signal,
          call: (run) => this.call(run, signal),
          warn: (message) => this.warnOnce(message),
        },
        version,
        labels,
        name,
      );
    const stable = await find("stable", this.o.stableLabels, this.o.stableDeployment);
    const canary = await find("canary", this.o.canaryLabels, this.o.canaryDeployment);
    if (stable === canary)
      throw new MeshError(
        `the stable and the canary version are both run by Deployment ${this.o.namespace}/${stable}: promotion needs one Deployment per version (set stable-deployment and canary-deployment)`,
      );
    this.resolved = { stable, canary };
    return this.resolved;
  }

  async copyCanaryToStable(signal?: AbortSignal): Promise<CopiedTemplate> {
    const { stable, canary } = await this.resolve(signal);
    const ns = this.o.namespace;
    const source = plain(await this.call(() => this.o.api.getDeployment(ns, canary, signal), signal));
    // A concurrent edit between read and patch fails the patch's `test` (422) or answers 409: read
    // again and re-plan, as the traffic writes do.
    return retry(
      async (): Promise<CopiedTemplate> => {
        const at = this.o.clock.now();
        const target = plain(await this.o.api.getDeployment(ns, stable, signal));
        const template = promotedTemplate(target, source, {
          stable: this.o.stableLabels,
          canary: this.o.canaryLabels,
        });
        // Already copied (a resumed finalization): the template as stored is the one to check.
        if (sameJson(template, target.spec?.template))
          return { template: target.spec?.template, at, writers: writerKeys(target) };
        try {
          // As stored, with the API server's defaults: what the check before routing compares with.
          const written = plain(
            await this.o.api.patchDeployment(ns, stable, templatePatch(target, template), signal),
          );
          return { template: written.spec?.template ?? template, at, writers: writerKeys(written) };
        } catch (error) {
          const status = (error as MeshError).status;
          if (status === 409) throw new ConcurrentEdit(ns, stable, error as MeshError);
          if (status !== 422) throw error;
          // A failed `test` and an invalid template are both 422: only a new resourceVersion is a conflict.
          const now = await this.o.api.getDeployment(ns, stable, signal);
          if (now.metadata?.resourceVersion !== target.metadata?.resourceVersion)
            throw new ConcurrentEdit(ns, stable, error as MeshError);
          throw error;
        }
      },
      {
        budgetMs: this.o.retryBudgetMs ?? TRAFFIC_RETRY_BUDGET_MS,
        signal,
        sleep: (ms, s) => this.o.clock.sleep(ms, s),
        now: () => this.o.clock.now().getTime(),
        retryAlso: (error) => error instanceof ConcurrentEdit,
      },
    );
  }

  async waitStable(timeoutMs: number | undefined, signal?: AbortSignal): Promise<WorkloadStatus> {
    return this.wait((await this.resolve(signal)).stable, timeoutMs, signal);
  }

  async waitCanary(timeoutMs: number | undefined, signal?: AbortSignal): Promise<WorkloadStatus> {
    return this.wait((await this.resolve(signal)).canary, timeoutMs, signal);
  }

  async servesPromoted(copied: CopiedTemplate, signal?: AbortSignal): Promise<string | undefined> {
    const { stable, canary } = await this.resolve(signal);
    const now = await this.status(stable, signal);
    const canaryNow = await this.status(canary, signal);
    const problems: string[] = [];
    if (!sameJson(now.deployment.spec?.template, copied.template))
      problems.push(templateChange(copied.template, now.deployment));
    const promoted = templateImages({ spec: { template: copied.template } } as Deployment);
    const serving = now.pods.filter((p) => p.ready && runsImages(p.pod, promoted)).length;
    const needed = Math.max(1, canaryNow.status.readyPods);
    if (serving < needed)
      problems.push(
        `it has ${serving} pod(s) ready in the mesh (with their sidecar, or in ambient mode captured by ztunnel) running the promoted version (spec.replicas ${now.status.replicas}), and the canary ${canaryNow.status.readyPods}: at least ${needed} are needed to carry all traffic`,
      );
    if (problems.length === 0) return undefined;
    const writers = writersSince(now.deployment, copied.at, FIELD_MANAGER, copied.writers);
    const who =
      writers.length > 0
        ? `; changed since the copy by ${writers.join(", ")}`
        : "; its managedFields name no other writer since the copy";
    return `Deployment ${now.status.name} cannot take all traffic: ${problems.join("; and ")}${who}`;
  }

  async stableStatus(signal?: AbortSignal): Promise<WorkloadStatus> {
    const name = (await this.resolve(signal)).stable;
    return (await this.status(name, signal)).status;
  }

  async scaleCanary(replicas: number | "stable", signal?: AbortSignal): Promise<void> {
    const { stable, canary } = await this.resolve(signal);
    const ns = this.o.namespace;
    const count =
      replicas === "stable"
        ? ((await this.call(() => this.o.api.getDeployment(ns, stable, signal), signal)).spec?.replicas ?? 1)
        : replicas;
    await this.call(() => this.o.api.scaleDeployment(ns, canary, count, signal), signal);
  }

  private async wait(
    name: string,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<WorkloadStatus> {
    const started = this.o.clock.now().getTime();
    for (;;) {
      const { status, deadlineMs, deadlineExceeded } = await this.status(name, signal);
      if (status.ready || deadlineExceeded) return status;
      const limit = timeoutMs ?? deadlineMs;
      const waited = this.o.clock.now().getTime() - started;
      if (waited >= limit) {
        status.problems.push(
          `not rolled out after ${Math.round(waited / 1000)} s (timeout ${Math.round(limit / 1000)} s)`,
        );
        return status;
      }
      await this.o.clock.sleep(Math.min(this.o.pollMs ?? DEFAULT_POLL_MS, limit - waited), signal);
    }
  }

  /** One reading: the Deployment, the pods its selector selects, and the Warning events of those pods. */
  private async status(name: string, signal?: AbortSignal) {
    const ns = this.o.namespace;
    const deployment = await this.call(() => this.o.api.getDeployment(ns, name, signal), signal);
    const selector = labelSelector(deployment.spec?.selector?.matchLabels ?? {});
    // Terminating pods (the old ReplicaSet's, in their grace period) no longer count, as for kubectl.
    const pods = (await this.call(() => this.o.api.listPodObjects(ns, selector, signal), signal)).filter(
      (p) => !p.metadata?.deletionTimestamp,
    );
    const verdict = rolloutVerdict(deployment);
    const podVerdicts = pods.map((p) => podVerdict(p));
    const readyPods = podVerdicts.filter((p) => p.ready).length;
    const ready = verdict.done && podVerdicts.every((p) => p.ready);
    const problems = ready ? [] : [...podVerdicts.flatMap((p) => p.problems)];
    if (!ready) {
      if (!verdict.done) problems.unshift(`Deployment ${ns}/${name}: ${verdict.message}`);
      problems.push(...(await this.warnings(new Set(podVerdicts.map((p) => p.name)), signal)));
    }
    const images = templateImages(deployment as Deployment);
    const replicas = deployment.spec?.replicas ?? 1;
    const imageList = [...new Set(Object.values(images))].join(", ");
    const status: WorkloadStatus = {
      name: `${ns}/${name}`,
      ready,
      summary: ready
        ? `${readyPods}/${replicas} ready, image ${imageList}`
        : `${readyPods}/${replicas} ready: ${problems[0] ?? verdict.message}`,
      problems,
      images,
      replicas,
      readyPods,
    };
    const deadlineS = deployment.spec?.progressDeadlineSeconds ?? DEPLOYMENT_PROGRESS_DEADLINE_DEFAULT_S;
    return {
      status,
      deadlineMs: deadlineS * 1000,
      deadlineExceeded: verdict.deadlineExceeded,
      deployment: plain(deployment),
      pods: pods.map((pod, i) => ({ pod, ready: podVerdicts[i]?.ready === true })),
    };
  }

  /**
   * The latest Warning events of these pods, one line each, without repeats. They only explain a
   * problem: when they cannot be read (403 without `list events`, 404) that is a warning, not a failure.
   */
  private async warnings(pods: Set<string>, signal?: AbortSignal): Promise<string[]> {
    if (pods.size === 0) return [];
    let events: k8s.CoreV1Event[];
    try {
      events = await this.call(() => this.o.api.listWarningEvents(this.o.namespace, signal), signal);
    } catch (error) {
      if (signal?.aborted) throw error;
      this.warnOnce(
        `Could not list the Warning events of namespace ${this.o.namespace} that explain why pods are not ready (${errorMessage(error)}); going on without them`,
      );
      return [];
    }
    const time = (e: k8s.CoreV1Event) =>
      new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? 0).getTime();
    const lines = events
      .filter((e) => pods.has(e.involvedObject?.name ?? ""))
      .sort((a, b) => time(b) - time(a))
      .map((e) => `event ${e.reason} on pod ${e.involvedObject.name}: ${e.message ?? ""}`.trim());
    return [...new Set(lines)].slice(0, MAX_EVENTS);
  }

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.o.warn?.(message);
  }

  private call<T>(run: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return retry(run, {
      budgetMs: this.o.retryBudgetMs ?? TRAFFIC_RETRY_BUDGET_MS,
      signal,
      sleep: (ms, s) => this.o.clock.sleep(ms, s),
      now: () => this.o.clock.now().getTime(),
    });
  }
}

/** The stable Deployment changed between read and patch; retried after reading it again. */
class ConcurrentEdit extends Error {
  constructor(namespace: string, name: string, cause: MeshError) {
    super(`Deployment ${namespace}/${name} changed while its pod template was being replaced`, { cause });
    this.name = "ConcurrentEdit";
  }
}

/** The client's typed object as the JSON the server sent (Dates as strings, no undefined fields). */
function plain(deployment: k8s.V1Deployment): Deployment {
  return JSON.parse(JSON.stringify(deployment)) as Deployment;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, canonical(v)]),
    );
  return value;
}
