/**
 * Conformance of the GitHub API emulator's "Compare two commits" (docs.github.com, REST API,
 * Commits: `GET /repos/{owner}/{repo}/compare/{basehead}`) to what GitHub documents, with real git
 * as the oracle for which commits it lists: "equivalent to running the git log BASE..HEAD
 * command, but ... the API returns commits in chronological order", `status` one of diverged,
 * ahead, behind, identical, `per_page` (max 100) and `page`, the changed files only on page 1, and
 * 404 for a commit the repository does not have. The history is made with git, and the emulator is
 * given git's own commits. Raw `fetch`, so the answer is checked as GitHub sends it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitHubApiEmulator } from "../mesh/github-api.ts";

let github: GitHubApiEmulator;
let dir: string;
const git = (...args: string[]): string =>
  execFileSync("git", args, {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir },
  }).trim();

/** Commits `message` on the checked-out branch with git, and gives the emulator the same commit. */
function commit(message: string, author = "Ada Lovelace"): string {
  git(
    "-c",
    `user.name=${author}`,
    "-c",
    "user.email=ada@example.com",
    "commit",
    "-q",
    "--allow-empty",
    "-m",
    message,
  );
  const sha = git("rev-parse", "HEAD");
  const parents = git("log", "-1", "--format=%P", sha).split(" ").filter(Boolean);
  const [name, email, date] = git("log", "-1", "--format=%an%x00%ae%x00%aI", sha).split("\0") as [
    string,
    string,
    string,
  ];
  github.history.add({ sha, message, parents, login: "ada", author: { name, email, date } });
  return sha;
}

const shas: Record<string, string> = {};
beforeAll(async () => {
  github = await new GitHubApiEmulator().start();
  dir = mkdtempSync(join(tmpdir(), "compare-"));
  git("init", "-q", "-b", "main");
  shas.root = commit("root");
  for (let i = 1; i <= 120; i++) shas[`main${i}`] = commit(`main ${i}`);
  git("checkout", "-q", "-b", "side", shas.main100 as string);
  for (let i = 1; i <= 3; i++) shas[`side${i}`] = commit(`side ${i}`);
  git("checkout", "-q", "--orphan", "other");
  shas.unrelated = commit("unrelated history");
});
afterAll(async () => {
  await github.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function compare(base: string, head: string, query = "") {
  const answer = await fetch(`${github.url}/repos/acme/shop/compare/${base}...${head}${query}`, {
    headers: { authorization: "token ghs_bot_token", accept: "application/vnd.github+json" },
  });
  return { status: answer.status, link: answer.headers.get("link"), body: await answer.json() };
}

const listed = (body: { commits: Array<{ sha: string }> }) => body.commits.map((c) => c.sha);
/** git's answer for base..head, oldest first as the API orders it. */
const gitLog = (base: string, head: string) =>
  git("rev-list", "--reverse", `${base}..${head}`).split("\n").filter(Boolean);
const gitCount = (range: string) => Number(git("rev-list", "--count", range));

describe("compare two commits (docs.github.com: Commits, 'Compare two commits')", () => {
  it("lists git log base..head in chronological order, with ahead_by, behind_by and total_commits", async () => {
    const base = shas.main90 as string;
    const head = shas.side3 as string;
    const { status, body } = await compare(base, head, "?per_page=100");
    expect(status).toBe(200);
    expect(listed(body)).toEqual(gitLog(base, head));
    expect(body).toMatchObject({
      status: "ahead",
      ahead_by: gitCount(`${base}..${head}`),
      behind_by: gitCount(`${head}..${base}`),
      total_commits: gitCount(`${base}..${head}`),
    });
    expect(body.merge_base_commit.sha).toBe(git("merge-base", base, head));
    expect(body.commits[0].commit).toMatchObject({ message: "main 91", author: { name: "Ada Lovelace" } });
    expect(body.commits[0].author.login).toBe("ada");
  });

  it("answers status diverged, behind and identical as git counts them", async () => {
    const diverged = await compare(shas.main110 as string, shas.side2 as string, "?per_page=100");
    expect(diverged.body).toMatchObject({
      status: "diverged",
      ahead_by: gitCount(`${shas.main110}..${shas.side2}`),
      behind_by: gitCount(`${shas.side2}..${shas.main110}`),
    });
    expect(listed(diverged.body)).toEqual(gitLog(shas.main110 as string, shas.side2 as string));
    const behind = await compare(shas.main120 as string, shas.main100 as string);
    expect(behind.body).toMatchObject({
      status: "behind",
      ahead_by: 0,
      behind_by: 20,
      total_commits: 0,
      commits: [],
    });
    const identical = await compare(shas.main5 as string, shas.main5 as string);
    expect(identical.body).toMatchObject({
      status: "identical",
      ahead_by: 0,
      behind_by: 0,
      total_commits: 0,
    });
  });

  it("pages with per_page (at most 100) and page, linking next and last; files only on page 1", async () => {
    const base = shas.root as string;
    const head = shas.main120 as string;
    const all = gitLog(base, head);
    const first = await compare(base, head, "?per_page=50&page=1");
    expect(listed(first.body)).toEqual(all.slice(0, 50));
    expect(first.body.files).toEqual([]);
    expect(first.link).toMatch(/[?&]page=2>; rel="next"/);
    expect(first.link).toMatch(/[?&]page=3>; rel="last"/);
    const third = await compare(base, head, "?per_page=50&page=3");
    expect(listed(third.body)).toEqual(all.slice(100));
    expect(third.body.files).toBeUndefined();
    expect(third.body.total_commits).toBe(120);
    const capped = await compare(base, head, "?per_page=500");
    expect(capped.body.commits).toHaveLength(100);
    const defaulted = await compare(base, head, "?page=1");
    expect(defaulted.body.commits).toHaveLength(30);
  });

  it("answers 404 for a commit the repository does not have, and for histories with no common ancestor", async () => {
    const unknown = await compare("f".repeat(40), shas.main1 as string);
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toBe("Not Found");
    const unrelated = await compare(shas.unrelated as string, shas.main1 as string);
    expect(unrelated.status).toBe(404);
    expect(unrelated.body.message).toMatch(/No common ancestor/);
  });
});
