/**
 * The commit lister against the GitHub API emulator over HTTP: it asks the compare API in the
 * background, reads only the pages it needs, and every failure (an unknown sha, a 502 that stays,
 * a GitHub that does not answer) becomes one line in the report within the wait it is given.
 */
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { CompareCommitLister } from "../../src/report/commits-github.ts";
import { createOctokit } from "../../src/report/github-client.ts";
import { GitHubApiEmulator } from "../mesh/github-api.ts";

let github: GitHubApiEmulator;
beforeEach(async () => {
  github = await new GitHubApiEmulator().start();
  // @actions/core writes to stdout: keep the test's output quiet.
  vi.spyOn(process.stdout, "write").mockImplementation(() => true);
});
afterEach(async () => {
  vi.restoreAllMocks();
  await github.stop();
});

function lister(onChange = () => {}) {
  return new CompareCommitLister(
    {
      octokit: createOctokit("ghs_bot_token", { baseUrl: github.url, retries: 1 }),
      repository: "acme/shop",
      serverUrl: "https://github.com",
    },
    onChange,
  );
}
const compares = () => github.requests.filter((r) => r.path.includes("/compare/"));

it("reads 250 commits from two pages of 100 (the first, for the counts, and the last, for the newest), telling the report when it has them", async () => {
  const base = github.history.add({ message: "promoted" }).sha;
  const head = github.history.line(250, base).at(-1) as string;
  const changed = vi.fn();
  const commits = lister(changed);
  commits.start(base, head);
  expect(commits.current()).toMatchObject({ kind: "pending" });
  await commits.settle(10_000);
  expect(commits.current()).toMatchObject({ kind: "listed", total: 250, status: "ahead" });
  expect(changed).toHaveBeenCalledOnce();
  expect(compares().map((r) => [r.query.page, r.query.per_page])).toEqual([
    ["1", "100"],
    ["3", "100"],
  ]);
});

it("a sha GitHub does not know is one line, not an error", async () => {
  const head = github.history.line(2).at(-1) as string;
  const commits = lister();
  commits.start("e".repeat(40), head);
  await commits.settle(10_000);
  expect(commits.current()).toEqual({
    kind: "unavailable",
    why: expect.stringMatching(/^GitHub does not know eeeeeee or [0-9a-f]{7} in this repository.*\(404\)$/),
  });
});

it("a 502 is retried once; one that stays is one line", async () => {
  const [base, head] = github.history.line(2) as [string, string];
  github.faultPlan.badGateway({ path: /\/compare\//, count: 1 });
  const once = lister();
  once.start(base, head);
  await once.settle(10_000);
  expect(once.current()).toMatchObject({ kind: "listed", total: 1 });
  github.faultPlan.badGateway({ path: /\/compare\//, count: 10 });
  const stays = lister();
  stays.start(base, head);
  await stays.settle(10_000);
  expect(stays.current()).toMatchObject({
    kind: "unavailable",
    why: expect.stringMatching(/compare failed: 502/),
  });
});

it("a GitHub that does not answer is given up after the wait", async () => {
  const [base, head] = github.history.line(2) as [string, string];
  github.faultPlan.hold({ path: /\/compare\// });
  const commits = lister();
  commits.start(base, head);
  const started = performance.now();
  await commits.settle(300);
  expect(performance.now() - started).toBeLessThan(2_000);
  expect(commits.current()).toEqual({ kind: "unavailable", why: "GitHub did not answer within 0.3s" });
  github.faultPlan.release();
});

it("asks nothing for a first rollout, a record that is not a sha, or a run outside Actions", () => {
  for (const [recorded, head, kind] of [
    [undefined, "a".repeat(40), "first"],
    ["main", "a".repeat(40), "unavailable"],
    ["a".repeat(40), "unknown", "unavailable"],
  ] as const) {
    const commits = lister();
    commits.start(recorded, head);
    expect(commits.current()?.kind).toBe(kind);
  }
  expect(compares()).toEqual([]);
});

it("a token that may not read the repository is told which permission it needs", async () => {
  const [base, head] = github.history.line(2) as [string, string];
  github.fault = (r) =>
    r.path.includes("/compare/")
      ? { status: 403, body: { message: "Resource not accessible by integration", status: "403" } }
      : undefined;
  const commits = lister();
  commits.start(base, head);
  await commits.settle(10_000);
  expect(commits.current()).toEqual({
    kind: "unavailable",
    why: "GitHub's compare failed: 403 Resource not accessible by integration; the token needs the permission contents: read",
  });
});
