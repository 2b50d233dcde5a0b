/**
 * Reports to GitHub: one pull-request comment per VirtualService (found again by a hidden marker
 * among the token's own comments, across every page), a commit status, and optionally a
 * deployment with its statuses. Reporting never changes the traffic decision: a read-only token
 * (a fork's pull request), a 403 or any other failure is a warning and the channel is dropped.
 */
import { readFileSync } from "node:fs";
import * as core from "@actions/core";
import { getOctokit } from "@actions/github";
import type { Config } from "../inputs.ts";
import type { RunContext } from "../run-context.ts";
import { marker } from "./markdown.ts";
import type { ReportModel } from "./model.ts";

type Octokit = ReturnType<typeof getOctokit>;

export interface GitHubReporter {
  update(model: ReportModel, markdown: string): Promise<void>;
}

interface Repo {
  owner: string;
  repo: string;
}

function errorText(error: unknown): string {
  const e = error as { status?: number; message?: string };
  return `${e.status ? `${e.status} ` : ""}${e.message ?? String(error)}`.split("\n")[0] as string;
}

/** The token's login: REST /user answers 403 to a workflow's GITHUB_TOKEN, GraphQL's viewer does not. */
async function whoAmI(octokit: Octokit): Promise<string | undefined> {
  try {
    return (await octokit.rest.users.getAuthenticated()).data.login;
  } catch {
    try {
      return (await octokit.graphql<{ viewer: { login: string } }>("query { viewer { login } }")).viewer
        .login;
    } catch {
      return undefined;
    }
  }
}

async function findPullRequest(
  octokit: Octokit,
  repo: Repo,
  config: Config,
  context: RunContext,
): Promise<number | undefined> {
  if (config.pullRequest) return config.pullRequest;
  if (context.eventPath) {
    try {
      const event = JSON.parse(readFileSync(context.eventPath, "utf8")) as {
        pull_request?: { number?: number };
        number?: number;
      };
      if (event.pull_request?.number) return event.pull_request.number;
    } catch {
      // no event payload to read
    }
  }
  if (context.commit === "unknown") return undefined;
  try {
    const pulls = await octokit.rest.repos.listPullRequestsAssociatedWithCommit({
      ...repo,
      commit_sha: context.commit,
    });
    const open = pulls.data.find((p) => p.state === "open") ?? pulls.data[0];
    return open?.number;
  } catch (error) {
    core.warning(
      `Could not look up the pull requests of commit ${context.commit.slice(0, 7)}: ${errorText(error)}; reporting to the job summary only`,
    );
    return undefined;
  }
}

class OctokitReporter implements GitHubReporter {
  private commentId?: number;
  private commentDisabled = false;
  private statusDisabled = false;
  private lastStatus?: string;
  private deploymentId?: number;
  private deploymentDisabled = false;
  private lastDeploymentState?: string;

  private readonly octokit: Octokit;
  private readonly repo: Repo;
  private readonly pullRequest: number | undefined;
  private readonly login: string | undefined;
  private readonly config: Config;
  private readonly context: RunContext;

  constructor(
    octokit: Octokit,
    repo: Repo,
    pullRequest: number | undefined,
    login: string | undefined,
    config: Config,
    context: RunContext,
  ) {
    this.octokit = octokit;
    this.repo = repo;
    this.pullRequest = pullRequest;
    this.login = login;
    this.config = config;
    this.context = context;
  }

  private warn(channel: string, error: unknown): void {
    const e = error as { status?: number };
    const hint =
      e.status === 403
        ? " (the token is read-only here, as for a fork's pull request, or lacks the permission)"
        : "";
    core.warning(`Could not update the ${channel}: ${errorText(error)}${hint}. The rollout goes on.`);
  }

  async update(model: ReportModel, markdown: string): Promise<void> {
    await Promise.all([this.comment(markdown), this.status(model), this.deployment(model)]);
  }

  private async findComment(): Promise<number | undefined> {
    const mark = marker(this.config.namespace, this.config.virtualService);
    const iterator = this.octokit.paginate.iterator(this.octokit.rest.issues.listComments, {
      ...this.repo,
      issue_number: this.pullRequest as number,
      per_page: 100,
    });
    for await (const page of iterator) {
      const mine = page.data.find(
        (c) => c.body?.startsWith(mark) && (!this.login || c.user?.login === this.login),
      );
      if (mine) return mine.id;
    }
    return undefined;
  }

  private async comment(markdown: string): Promise<void> {
    if (this.commentDisabled || !this.pullRequest) return;
    try {
      this.commentId ??= await this.findComment();
      if (this.commentId) {
        await this.octokit.rest.issues.updateComment({
          ...this.repo,
          comment_id: this.commentId,
          body: markdown,
        });
      } else {
        this.commentId = (
          await this.octokit.rest.issues.createComment({
            ...this.repo,
            issue_number: this.pullRequest,
            body: markdown,
          })
        ).data.id;
      }
    } catch (error) {
      this.commentDisabled = true;
      this.warn(`pull request comment on #${this.pullRequest}`, error);
    }
  }

  private async status(model: ReportModel): Promise<void> {
    if (this.statusDisabled || this.context.commit === "unknown" || model.command === "status") return;
    const state = !model.result ? "pending" : model.failed ? "failure" : "success";
    const description = (model.reason ?? `canary at ${model.weight} %`).slice(0, 139);
    if (this.lastStatus === `${state}:${description}`) return;
    try {
      await this.octokit.rest.repos.createCommitStatus({
        ...this.repo,
        sha: this.context.commit,
        state,
        context: `istio-canary/${this.config.namespace}/${this.config.virtualService}`,
        description,
        ...(this.context.runUrl ? { target_url: this.context.runUrl } : {}),
      });
      this.lastStatus = `${state}:${description}`;
    } catch (error) {
      this.statusDisabled = true;
      this.warn("commit status", error);
    }
  }

  private async deployment(model: ReportModel): Promise<void> {
    const environment = this.config.environment;
    if (
      !environment ||
      this.deploymentDisabled ||
      this.context.commit === "unknown" ||
      model.command === "status"
    )
      return;
    const state =
      !model.result || model.result === "paused"
        ? "in_progress"
        : model.result === "promoted"
          ? "success"
          : model.failed
            ? "failure"
            : "inactive";
    if (state === this.lastDeploymentState) return;
    try {
      if (!this.deploymentId) {
        const created = await this.octokit.rest.repos.createDeployment({
          ...this.repo,
          ref: this.context.commit,
          environment,
          auto_merge: false,
          required_contexts: [],
          description: `Canary rollout of ${this.config.namespace}/${this.config.virtualService}`,
          transient_environment: false,
        });
        this.deploymentId = (created.data as { id: number }).id;
      }
      await this.octokit.rest.repos.createDeploymentStatus({
        ...this.repo,
        deployment_id: this.deploymentId,
        state,
        description: (model.reason ?? `canary at ${model.weight} %`).slice(0, 139),
        ...(this.context.runUrl ? { log_url: this.context.runUrl } : {}),
      });
      this.lastDeploymentState = state;
    } catch (error) {
      this.deploymentDisabled = true;
      this.warn(`deployment for environment ${environment}`, error);
    }
  }
}

export async function createGitHubReporter(
  config: Config,
  context: RunContext,
): Promise<GitHubReporter | undefined> {
  if (!config.githubToken || !context.repository) {
    core.info("No GitHub token or repository: reporting to the job summary only");
    return undefined;
  }
  const [owner, repo] = context.repository.split("/") as [string, string];
  const octokit = getOctokit(config.githubToken, { baseUrl: context.apiUrl });
  const pullRequest = await findPullRequest(octokit, { owner, repo }, config, context);
  if (!pullRequest)
    core.info(
      "No pull request found for this run: no comment; the job summary and the commit status carry the report",
    );
  const login = pullRequest ? await whoAmI(octokit) : undefined;
  return new OctokitReporter(octokit, { owner, repo }, pullRequest, login, config, context);
}
