/**
 * The run's facts as the runner gives them (its variables and the event payload file), read through
 * a `github.context` built from that environment: the lease holder's exact text (later runs parse
 * it), the run's page, the commit, and the pull request of a `pull_request` event.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { context as actionsContext } from "@actions/github";
import { afterEach, describe, expect, it, vi } from "vitest";
import { isLaterAttemptOf } from "../../src/rollout/model/state.ts";
import { type GitHubContext, runContext } from "../../src/run-context.ts";

/** @actions/github exports its Context instance only; a new one reads the environment as set now. */
const ContextFromEnv = actionsContext.constructor as new () => GitHubContext;

const RUNNER_VARIABLES = [
  "GITHUB_REPOSITORY",
  "GITHUB_RUN_ID",
  "GITHUB_RUN_ATTEMPT",
  "GITHUB_SHA",
  "GITHUB_SERVER_URL",
  "GITHUB_API_URL",
  "GITHUB_EVENT_NAME",
  "GITHUB_EVENT_PATH",
  "GITHUB_ACTOR",
];

let scratch: string | undefined;
afterEach(() => {
  vi.unstubAllEnvs();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
});

/** The runner's environment: only `variables` set, the event payload written to a file. */
function onRunner(variables: Record<string, string>, payload?: unknown): GitHubContext {
  for (const name of RUNNER_VARIABLES) vi.stubEnv(name, undefined);
  for (const [name, value] of Object.entries(variables)) vi.stubEnv(name, value);
  if (payload !== undefined) {
    scratch = mkdtempSync(join(tmpdir(), "run-context-"));
    const path = join(scratch, "event.json");
    writeFileSync(path, JSON.stringify(payload));
    vi.stubEnv("GITHUB_EVENT_PATH", path);
  }
  return new ContextFromEnv();
}

describe("the run's facts", () => {
  it("on a re-run of a pull request's workflow: holder, run page, the head as commit, and pull request", () => {
    const facts = runContext(
      onRunner(
        {
          GITHUB_REPOSITORY: "acme/shop",
          GITHUB_RUN_ID: "12345678901",
          GITHUB_RUN_ATTEMPT: "2",
          GITHUB_SHA: "0123456789abcdef0123456789abcdef01234567",
          GITHUB_SERVER_URL: "https://ghe.example.com/",
          GITHUB_API_URL: "https://ghe.example.com/api/v3/",
          GITHUB_EVENT_NAME: "pull_request",
          GITHUB_ACTOR: "octocat",
        },
        {
          action: "synchronize",
          number: 42,
          pull_request: { number: 42, head: { sha: "feedfacefeedfacefeedfacefeedfacefeedface" } },
        },
      ),
    );
    expect(facts).toMatchObject({
      repository: "acme/shop",
      runId: "12345678901",
      runAttempt: "2",
      // GITHUB_SHA is the test merge commit; the pull request shows (and lists) its head.
      commit: "feedfacefeedfacefeedfacefeedfacefeedface",
      serverUrl: "https://ghe.example.com",
      apiUrl: "https://ghe.example.com/api/v3",
      eventName: "pull_request",
      actor: "octocat",
      pullRequest: 42,
      holder: "acme/shop run 12345678901 attempt 2",
      runUrl: "https://ghe.example.com/acme/shop/actions/runs/12345678901",
    });
    // The lease code recognises this holder as a later attempt of the same run.
    expect(isLaterAttemptOf(facts.holder, "acme/shop run 12345678901 attempt 1")).toBe(true);
  });

  it("a push or a dispatch names no pull request; the first attempt is attempt 1", () => {
    const facts = runContext(
      onRunner(
        { GITHUB_REPOSITORY: "acme/shop", GITHUB_RUN_ID: "7", GITHUB_SHA: "abc", GITHUB_EVENT_NAME: "push" },
        { ref: "refs/heads/main", head_commit: { id: "abc" } },
      ),
    );
    expect(facts.pullRequest).toBeUndefined();
    expect(facts.runAttempt).toBe("1");
    expect(facts.holder).toBe("acme/shop run 7 attempt 1");
    expect(facts.serverUrl).toBe("https://github.com");
    expect(facts.apiUrl).toBe("https://api.github.com");
  });

  it("outside Actions: this machine and process hold the lease, the commit is unknown, no run page", () => {
    const facts = runContext(onRunner({}));
    expect(facts).toMatchObject({
      repository: undefined,
      runId: undefined,
      runAttempt: "1",
      commit: "unknown",
      pullRequest: undefined,
      holder: `${hostname()} pid ${process.pid}`,
      runUrl: undefined,
    });
  });
});
