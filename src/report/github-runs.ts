/**
 * The RunStatusPort on GitHub's Actions API: `GET /repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}`
 * answers a run attempt's `status` (queued, in_progress, completed, ...). The lease holder it asks
 * about comes from the cluster: only a holder of this repository's runs is looked up (the token is
 * this repository's), and GitHub's answer is read only as one of its documented values. Any
 * failure (a token without `actions: read` answers 403) is a warning: the lease then holds until
 * it expires, as before.
 */
import type { RunStatus, RunStatusPort } from "../rollout/ports.ts";
import type { Octokit } from "./github-client.ts";

/** As run-context.ts writes a holder on Actions. */
const HOLDER =
  /^(?<owner>[A-Za-z0-9_.-]{1,100})\/(?<repo>[A-Za-z0-9_.-]{1,100}) run (?<id>\d{1,20}) attempt (?<attempt>\d{1,6})$/;
const STATUSES = new Set(["queued", "in_progress", "completed", "waiting", "requested", "pending"]);
const CONCLUSION = /^[a-z_]{1,30}$/;

export class GitHubRunStatus implements RunStatusPort {
  private readonly octokit: Octokit;
  private readonly repository: string;
  private readonly warn: (message: string) => void;

  constructor(octokit: Octokit, repository: string, warn: (message: string) => void) {
    this.octokit = octokit;
    this.repository = repository;
    this.warn = warn;
  }

  async status(holder: string, signal?: AbortSignal): Promise<RunStatus | undefined> {
    const m = HOLDER.exec(holder)?.groups;
    if (!m || `${m.owner}/${m.repo}`.toLowerCase() !== this.repository.toLowerCase()) return undefined;
    try {
      const { data } = await this.octokit.rest.actions.getWorkflowRunAttempt({
        owner: m.owner as string,
        repo: m.repo as string,
        run_id: Number(m.id),
        attempt_number: Number(m.attempt),
        request: { signal },
      });
      const status = typeof data.status === "string" && STATUSES.has(data.status) ? data.status : "unknown";
      const conclusion =
        typeof data.conclusion === "string" && CONCLUSION.test(data.conclusion) ? data.conclusion : undefined;
      return { ended: status === "completed", status, ...(conclusion ? { conclusion } : {}) };
    } catch (error) {
      const e = error as { status?: number; message?: string };
      const answer = `${e.status ? `${e.status} ` : ""}${e.message ?? String(error)}`.split("\n")[0];
      this.warn(
        `Could not ask GitHub whether ${holder}, which holds the lease, is still running (${answer}); the lease holds until it expires. Give the workflow's token the permission actions: read to take over a dead run's lease at once`,
      );
      return undefined;
    }
  }
}
