/**
 * Facts about the workflow run from the runner's environment (not inputs): who holds the lease,
 * which commit is being rolled out, where the run's page is.
 */
import { hostname } from "node:os";

export interface RunContext {
  repository?: string;
  runId?: string;
  runAttempt?: string;
  commit: string;
  serverUrl: string;
  apiUrl: string;
  eventName?: string;
  eventPath?: string;
  actor?: string;
  /** The lease holder: "acme/shop run 123 attempt 1", or this machine and process outside Actions. */
  holder: string;
  runUrl?: string;
}

export function runContext(env: NodeJS.ProcessEnv = process.env): RunContext {
  const repository = env.GITHUB_REPOSITORY;
  const runId = env.GITHUB_RUN_ID;
  const runAttempt = env.GITHUB_RUN_ATTEMPT ?? "1";
  const serverUrl = (env.GITHUB_SERVER_URL ?? "https://github.com").replace(/\/+$/, "");
  return {
    repository,
    runId,
    runAttempt,
    commit: env.GITHUB_SHA ?? "unknown",
    serverUrl,
    apiUrl: (env.GITHUB_API_URL ?? "https://api.github.com").replace(/\/+$/, ""),
    eventName: env.GITHUB_EVENT_NAME,
    eventPath: env.GITHUB_EVENT_PATH,
    actor: env.GITHUB_ACTOR,
    holder:
      repository && runId
        ? `${repository} run ${runId} attempt ${runAttempt}`
        : `${hostname()} pid ${process.pid}`,
    runUrl: repository && runId ? `${serverUrl}/${repository}/actions/runs/${runId}` : undefined,
  };
}
