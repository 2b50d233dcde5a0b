/** The GitHub API emulator through @actions/github's Octokit, as the action uses it. */
import { getOctokit } from "@actions/github";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOT, GitHubApiEmulator } from "./mesh/github-api.ts";

let github: GitHubApiEmulator;
beforeAll(async () => {
  github = await new GitHubApiEmulator().start();
});
afterAll(async () => {
  await github.stop();
});

const repo = { owner: "acme", repo: "shop" };

describe("GitHub API emulator", () => {
  it("pages through 150 comments with Link headers", async () => {
    for (let i = 0; i < 149; i++) github.addComment("acme/shop", 7, `comment ${i}`);
    github.addComment("acme/shop", 7, "<!-- marker --> by the bot", BOT);
    const octokit = getOctokit("ghs_bot_token", { baseUrl: github.url });
    const all = await octokit.paginate(octokit.rest.issues.listComments, {
      ...repo,
      issue_number: 7,
      per_page: 100,
    });
    expect(all).toHaveLength(150);
    expect(all.at(-1)?.user?.login).toBe("github-actions[bot]");
    const pages = github.requests.filter((r) => r.path === "/repos/acme/shop/issues/7/comments");
    expect(pages.map((r) => r.query.page ?? "1")).toEqual(["1", "2"]);
    const first = await octokit.rest.issues.listComments({ ...repo, issue_number: 7, per_page: 30, page: 2 });
    expect(first.headers.link).toContain('rel="next"');
    expect(first.headers.link).toContain('rel="prev"');
    expect(first.data[0]?.body).toBe("comment 30");
  });

  it("creates and updates a comment, and refuses writes for a read-only token", async () => {
    const octokit = getOctokit("ghs_bot_token", { baseUrl: github.url });
    const created = await octokit.rest.issues.createComment({ ...repo, issue_number: 8, body: "first" });
    expect(created.status).toBe(201);
    const updated = await octokit.rest.issues.updateComment({
      ...repo,
      comment_id: created.data.id,
      body: "second",
    });
    expect(updated.data.body).toBe("second");
    github.readOnly = true;
    await expect(
      octokit.rest.issues.createComment({ ...repo, issue_number: 8, body: "x" }),
    ).rejects.toMatchObject({ status: 403 });
    github.readOnly = false;
    await expect(octokit.rest.users.getAuthenticated()).rejects.toMatchObject({ status: 403 });
    const viewer = await octokit.graphql<{ viewer: { login: string } }>("query { viewer { login } }");
    expect(viewer.viewer.login).toBe("github-actions[bot]");
    github.tokens.set("ghp_person_token", { login: "octocat", id: 583231, type: "User" });
    const person = getOctokit("ghp_person_token", { baseUrl: github.url });
    expect((await person.rest.users.getAuthenticated()).data.login).toBe("octocat");
  });

  it("serves commit pulls, statuses and deployments", async () => {
    const octokit = getOctokit("ghs_bot_token", { baseUrl: github.url });
    github.commitPulls.set("abc123", [42]);
    const pulls = await octokit.rest.repos.listPullRequestsAssociatedWithCommit({
      ...repo,
      commit_sha: "abc123",
    });
    expect(pulls.data.map((p) => p.number)).toEqual([42]);
    await octokit.rest.repos.createCommitStatus({
      ...repo,
      sha: "abc123",
      state: "pending",
      context: "canary/shop/backend",
      description: "stage 1 of 4",
    });
    expect(github.statuses.at(-1)).toMatchObject({ state: "pending", context: "canary/shop/backend" });
    const deployment = await octokit.rest.repos.createDeployment({
      ...repo,
      ref: "abc123",
      environment: "production",
      auto_merge: false,
      required_contexts: [],
    });
    expect(deployment.status).toBe(201);
    const id = (deployment.data as { id: number }).id;
    await octokit.rest.repos.createDeploymentStatus({ ...repo, deployment_id: id, state: "in_progress" });
    expect(github.deployments.at(-1)?.statuses).toEqual([{ state: "in_progress" }]);
    await expect(
      getOctokit("wrong", { baseUrl: github.url }).rest.issues.listComments({ ...repo, issue_number: 7 }),
    ).rejects.toMatchObject({ status: 401 });
  });
});
