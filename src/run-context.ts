/**
 * Facts about the workflow run (not inputs): who holds the lease, which commit is being rolled out,
 * where the run's page is, which pull request triggered it. Read from `github.context` of
 * @actions/github, which parses the runner's variables and the event payload once at start.
 */
import { hostname } from "node:os";
import { context as actionsContext } from "@actions/github";

/** The part of `github.context` this action reads; tests pass a plain object of this shape. */
export type GitHubContext = Pick<
  typeof actionsContext,
  "payload" | "sha" | "runId" | "runAttempt" | "repo" | "serverUrl" | "apiUrl" | "eventName" | "actor"
>;

export interface RunContext {
  /** "owner/repo", when the run is on Actions. */
  repository?: string;
  /** The run's id as the runner gives it (a decimal string). */
  runId?: string;
  /** The run's attempt, "1" unless the run was re-run (a decimal string). */
  runAttempt: string;
  /**
   * The commit being rolled out, or "unknown" outside Actions. For a `pull_request` event, the pull
   * request's head: GITHUB_SHA is then a test merge commit that the pull request does not show and
   * that GitHub does not list among its commits (a later `promote` finds the pull request by this).
   */
  commit: string;
  serverUrl: string;
  apiUrl: string;
  eventName?: string;
  actor?: string;
  /** The pull request of a `pull_request` event (from its payload), without calling GitHub. */
  pullRequest?: number;
  /** The lease holder: "acme/shop run 123 attempt 1", or this machine and process outside Actions. */
  holder: string;
  runUrl?: string;
}

/** `owner/repo`, or undefined where the context has none (its `repo` getter throws then). */
function repositoryOf(github: GitHubContext): string | undefined {
  try {
    const { owner, repo } = github.repo;
    return owner && repo ? `${owner}/${repo}` : undefined;
  } catch {
    return undefined; // neither GITHUB_REPOSITORY nor a payload with a repository: not on Actions
  }
}

/** Context parses numbers with parseInt: an unset variable is NaN. */
const decimal = (value: number | undefined): string | undefined =>
  value !== undefined && Number.isSafeInteger(value) ? String(value) : undefined;

export function runContext(github: GitHubContext = actionsContext): RunContext {
  const repository = repositoryOf(github);
  const runId = decimal(github.runId);
  const runAttempt = decimal(github.runAttempt) ?? "1";
  const serverUrl = github.serverUrl.replace(/\/+$/, "");
  const pullRequest = github.payload.pull_request?.number;
  const head: unknown = github.payload.pull_request?.head?.sha;
  const commit = typeof head === "string" && head ? head : github.sha || "unknown";
  return {
    repository,
    runId,
    runAttempt,
    commit,
    serverUrl,
    apiUrl: github.apiUrl.replace(/\/+$/, ""),
    eventName: github.eventName || undefined,
    actor: github.actor || undefined,
    pullRequest: typeof pullRequest === "number" ? pullRequest : undefined,
    holder:
      repository && runId
        ? `${repository} run ${runId} attempt ${runAttempt}`
        : `${hostname()} pid ${process.pid}`,
    runUrl: repository && runId ? `${serverUrl}/${repository}/actions/runs/${runId}` : undefined,
  };
}
