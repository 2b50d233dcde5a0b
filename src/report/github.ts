/**
 * Reports to GitHub: one pull-request comment per VirtualService (found again by a hidden marker
 * among the token's own comments, across every page), a commit status, and optionally a
 * deployment with its statuses.
 *
 * Reporting never holds a traffic decision: `update()` only records the latest report and returns;
 * one background chain sends it (reports that were superseded meanwhile are skipped). A failure
 * that may pass (a 502, a timeout, a rate limit) is retried with the next update, after any
 * Retry-After; only an answer that proves the token may not write (401, 403, 404: a fork's
 * read-only token, a missing permission) switches that channel off, with one warning.
 * `flush(timeoutMs)` always attempts the final report and waits at most `timeoutMs`. The comment
 * itself (finding it, cutting it to a length GitHub takes) is github-comment.ts.
 */
import * as core from "@actions/core";
import type { Config } from "../inputs/types.ts";
import { scrub } from "../redact.ts";
import type { RunContext } from "../run-context.ts";
import { logText } from "../untrusted-text.ts";
import {
  createOctokit,
  type Failure,
  failureOf,
  type Octokit,
  ReportAborted,
  within,
} from "./github-client.ts";
import { PullRequestComment } from "./github-comment.ts";
import { marker } from "./markdown.ts";
import type { ReportModel } from "./model.ts";

export interface GitHubReporter {
  /** Records the latest report and returns at once; it is sent in the background. */
  update(model: ReportModel, markdown: string): void;
  /**
   * Sends the latest report if it is not sent yet, waiting at most `timeoutMs`, or until GitHub's
   * Retry-After has passed (and `timeoutMs` more) when it asks for no more than `maxRetryAfterMs`;
   * then stops reporting.
   */
  flush(timeoutMs: number, maxRetryAfterMs?: number): Promise<void>;
}

interface Repo {
  owner: string;
  repo: string;
}
interface Report {
  model: ReportModel;
  markdown: string;
}
type Channel = "comment" | "status" | "deployment";

/** How long a flush waits after a failed final report before trying again (within its deadline). */
const FLUSH_RETRY_DELAY_MS = 1_000;

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, Math.max(0, ms)));

class OctokitReporter implements GitHubReporter {
  private latest?: Report;
  private version = 0;
  private sentVersion = 0;
  private loop?: Promise<void>;
  private notBefore = 0;
  /** `notBefore` is GitHub's own Retry-After (not a guess at when a rate limit resets). */
  private askedToWait = false;
  private stopped = false;
  /** Set by flush: from then on Octokit neither retries nor waits by itself (flush does, within its deadline). */
  flushing = false;
  private readonly shutdown = new AbortController();
  private inFlight?: { version: number; final: boolean; controller: AbortController };

  private readonly off = new Set<Channel>();
  private readonly pullRequestComment: PullRequestComment;
  private lastStatus?: string;
  private deploymentId?: number;
  private lastDeploymentState?: string;

  private readonly octokit: Octokit;
  private readonly repo: Repo;
  private readonly config: Config;
  private readonly context: RunContext;

  constructor(octokit: Octokit, repo: Repo, config: Config, context: RunContext) {
    this.octokit = octokit;
    this.repo = repo;
    this.config = config;
    this.context = context;
    this.pullRequestComment = new PullRequestComment({
      octokit,
      repo,
      mark: marker(config.namespace, config.virtualService),
      commit: context.commit,
      // The pull request named by the input or the event payload, without calling GitHub.
      pullRequest: config.pullRequest || context.pullRequest,
      requestOptions: (signal) => this.requestOptions(signal),
    });
  }

  update(model: ReportModel, markdown: string): void {
    if (this.stopped) return;
    this.latest = { model, markdown };
    this.version++;
    // The final report need not wait for an older one still in flight.
    if (model.result && this.inFlight && !this.inFlight.final) this.inFlight.controller.abort();
    // Even the synchronous start of a request (Octokit's hooks, the first use of its limiters)
    // runs after the caller has moved on.
    setImmediate(() => this.kick());
  }

  async flush(timeoutMs: number, maxRetryAfterMs = 0): Promise<void> {
    if (this.stopped) return;
    const start = Date.now();
    let deadline = start + timeoutMs;
    let told = false;
    this.flushing = true;
    // An older report still in flight is not worth waiting for: the final one goes next.
    if (this.inFlight && this.inFlight.version < this.version) this.inFlight.controller.abort();
    // The deadline is looked at again after every wait: a Retry-After can arrive during one (an
    // answer to the request in flight when the flush began), and it moves the deadline.
    while (!this.stopped && this.sentVersion < this.version) {
      // GitHub said when to come back: within the bound, the final report waits for it.
      if (this.askedToWait && this.notBefore + 1 > deadline && this.notBefore - start <= maxRetryAfterMs) {
        deadline = this.notBefore + timeoutMs;
        if (!told)
          core.info(
            `GitHub asked to wait ${Math.ceil((this.notBefore - Date.now()) / 1000)}s (Retry-After): the final report waits for it`,
          );
        told = true;
      }
      if (Date.now() >= deadline) break;
      if (Date.now() < this.notBefore) await sleep(Math.min(this.notBefore, deadline) - Date.now());
      if (Date.now() >= deadline) break;
      this.kick();
      await within(this.loop, deadline - Date.now());
      if (this.sentVersion < this.version && !this.loop)
        await sleep(Math.min(FLUSH_RETRY_DELAY_MS, deadline - Date.now()));
    }
    const unsent = this.sentVersion < this.version;
    this.stopped = true;
    this.shutdown.abort();
    if (unsent) {
      core.warning(
        `The final report did not reach GitHub within ${Math.round((deadline - start) / 1000)}s; the job summary and the step outputs have it`,
      );
    }
  }

  /** Per-call request options: the signal, and no retries by Octokit once a flush retries by itself. */
  private requestOptions(signal: AbortSignal): { signal: AbortSignal; retries?: number } {
    return this.flushing ? { signal, retries: 0 } : { signal };
  }

  /** Starts the background chain unless it runs already (one request chain at a time). */
  private kick(): void {
    if (this.loop || this.stopped) return;
    this.loop = this.drain().finally(() => {
      this.loop = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.sentVersion < this.version && Date.now() >= this.notBefore) {
      const version = this.version;
      const controller = new AbortController();
      const report = this.latest as Report;
      this.inFlight = { version, final: report.model.result !== undefined, controller };
      const signal = AbortSignal.any([controller.signal, this.shutdown.signal]);
      const sent = await this.send(report, signal);
      this.inFlight = undefined;
      if (sent) this.sentVersion = Math.max(this.sentVersion, version);
      // A failure waits for the next update (or the flush), unless a newer report is already waiting.
      else if (version === this.version) return;
    }
  }

  /** One attempt at every channel; true when each one is up to date or switched off. */
  private async send(report: Report, signal: AbortSignal): Promise<boolean> {
    const results = await Promise.all([
      this.attempt("comment", () => this.pullRequestComment.write(report.markdown, signal)),
      this.attempt("status", () => this.status(report.model, signal)),
      this.attempt("deployment", () => this.deployment(report.model, signal)),
    ]);
    return results.every(Boolean);
  }

  private async attempt(channel: Channel, call: () => Promise<void>): Promise<boolean> {
    if (this.off.has(channel)) return true;
    try {
      await call();
      return true;
    } catch (error) {
      if (error instanceof ReportAborted) return false;
      const failure = failureOf(error, {
        updatingComment: channel === "comment" && this.pullRequestComment.exists,
      });
      this.onFailure(channel, failure);
      return failure.kind === "gone" ? false : failure.kind === "forbidden";
    }
  }

  private describe(channel: Channel): string {
    if (channel === "comment")
      return `pull request comment${this.pullRequestComment.pullRequest ? ` on #${this.pullRequestComment.pullRequest}` : ""}`;
    if (channel === "deployment") return `deployment for environment ${this.config.environment}`;
    return "commit status";
  }

  private onFailure(channel: Channel, failure: Failure): void {
    if (failure.kind === "gone") {
      this.pullRequestComment.forget();
      core.info(logText(`The ${this.describe(channel)} was deleted (${failure.text}); it is created again`));
      return;
    }
    if (failure.kind === "forbidden") {
      this.off.add(channel);
      const hint =
        failure.status === 403 || failure.status === 404
          ? " (the token is read-only here, as for a fork's pull request, or lacks the permission)"
          : "";
      core.warning(
        `Could not update the ${this.describe(channel)}: ${failure.text}${hint}. The rollout goes on; this channel is not tried again.`,
      );
      return;
    }
    if (failure.retryAfterMs) {
      this.notBefore = Math.max(this.notBefore, Date.now() + failure.retryAfterMs);
      this.askedToWait = failure.asked === true;
    }
    const when = failure.retryAfterMs
      ? `after ${Math.ceil(failure.retryAfterMs / 1000)}s (Retry-After)`
      : "with the next update";
    core.info(
      logText(`Could not update the ${this.describe(channel)}: ${failure.text}; trying again ${when}`),
    );
  }

  private async status(model: ReportModel, signal: AbortSignal): Promise<void> {
    if (this.context.commit === "unknown" || model.command === "status" || model.command === "preview")
      return;
    const state = !model.result ? "pending" : model.failed ? "failure" : "success";
    const description = scrub(model.reason ?? `canary at ${model.weight} %`).slice(0, 139);
    // GitHub asks for a second between writes: a status is written when its state changes (and at
    // the end), not at every stage; the comment carries the progress.
    if (this.lastStatus === state || this.lastStatus === `${state}:${description}`) return;
    await this.octokit.rest.repos.createCommitStatus({
      ...this.repo,
      sha: this.context.commit,
      state,
      context: `istio-canary/${this.config.namespace}/${this.config.virtualService}`,
      description,
      ...(this.context.runUrl ? { target_url: this.context.runUrl } : {}),
      request: this.requestOptions(signal),
    });
    this.lastStatus = model.result ? `${state}:${description}` : state;
  }

  private async deployment(model: ReportModel, signal: AbortSignal): Promise<void> {
    const environment = this.config.environment;
    if (
      !environment ||
      this.context.commit === "unknown" ||
      model.command === "status" ||
      model.command === "preview"
    )
      return;
    const state =
      !model.result || model.result === "paused"
        ? "in_progress"
        : model.result === "promoted" && !model.failed
          ? "success"
          : model.failed
            ? "failure"
            : "inactive";
    if (state === this.lastDeploymentState) return;
    if (!this.deploymentId) {
      const created = await this.octokit.rest.repos.createDeployment({
        ...this.repo,
        ref: this.context.commit,
        environment,
        auto_merge: false,
        required_contexts: [],
        description: `Canary rollout of ${this.config.namespace}/${this.config.virtualService}`,
        transient_environment: false,
        request: this.requestOptions(signal),
      });
      this.deploymentId = (created.data as { id: number }).id;
    }
    await this.octokit.rest.repos.createDeploymentStatus({
      ...this.repo,
      deployment_id: this.deploymentId,
      state,
      description: scrub(model.reason ?? `canary at ${model.weight} %`).slice(0, 139),
      ...(this.context.runUrl ? { log_url: this.context.runUrl } : {}),
      request: this.requestOptions(signal),
    });
    this.lastDeploymentState = state;
  }
}

/**
 * The reporter for this run, or undefined without a token or repository. Makes no call: the pull
 * request and the token's login are looked up by the first update, in the background.
 */
export function createGitHubReporter(
  config: Config,
  context: RunContext,
  options: { retries?: number } = {},
): GitHubReporter | undefined {
  if (!config.githubToken || !context.repository) {
    core.info("No GitHub token or repository: reporting to the job summary only");
    return undefined;
  }
  const [owner, repo] = context.repository.split("/") as [string, string];
  let reporter: OctokitReporter | undefined;
  const octokit = createOctokit(config.githubToken, {
    baseUrl: context.apiUrl,
    retries: options.retries,
    mayWait: () => !reporter?.flushing,
  });
  reporter = new OctokitReporter(octokit, { owner, repo }, config, context);
  return reporter;
}
