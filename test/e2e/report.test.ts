/**
 * Reporting end to end against the GitHub API emulator: one comment per VirtualService and pull
 * request, updated at every stage and found again across pages; commit statuses; deployments;
 * a read-only token is a warning, never a different traffic decision; a 502 or a secondary rate
 * limit delays an update, never switches the comment off.
 */
import { describe, expect, it } from "vitest";
import { marker } from "../../src/report/markdown.ts";
import { BOT } from "../mesh/github-api.ts";
import type { Mesh } from "../mesh/index.ts";
import { COMMIT, fastInputs, PULL_REQUEST, REPOSITORY, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();

const key = `${REPOSITORY}#${PULL_REQUEST}`;
const botComments = (m: Mesh) => (m.github.comments.get(key) ?? []).filter((c) => c.user.login === BOT.login);

describe("pull request reporting", () => {
  it("keeps exactly one comment, updated at every stage, found again past 150 comments by a later status run", async () => {
    const m = await meshWith();
    for (let i = 0; i < 150; i++) m.github.addComment(REPOSITORY, PULL_REQUEST, `review comment ${i}`);
    // Someone quoting the marker in their own comment does not fool it: only the token's own comments count.
    m.github.addComment(REPOSITORY, PULL_REQUEST, `${marker("shop", "backend")} quoted by a human`);
    const run = await runOnMesh(m, { inputs: fastInputs(m, { environment: "production" }) });
    expect(run.outputs.result).toBe("promoted");
    expect(botComments(m)).toHaveLength(1);
    const comment = botComments(m)[0];
    expect(comment?.body.startsWith(marker("shop", "backend"))).toBe(true);
    expect(comment?.body).toContain("### ✅ Promoted: `shop/backend` canary at 100 %");
    const writes = m.github.requests.filter((r) => r.path.includes("/comments") && r.method !== "GET");
    // Created once, then updated as the rollout goes (a report superseded while another one was
    // being sent is skipped, so there may be fewer updates than stages), ending with the final one.
    expect(writes.filter((r) => r.method === "POST")).toHaveLength(1);
    expect(writes.filter((r) => r.method === "PATCH").length).toBeGreaterThanOrEqual(2);
    // The comment was looked for across every page before it was created (151 comments: 2 pages).
    expect(
      m.github.requests
        .filter((r) => r.path.endsWith(`/issues/${PULL_REQUEST}/comments`) && r.method === "GET")
        .map((r) => r.query.page ?? "1"),
    ).toEqual(["1", "2"]);

    const status = await runOnMesh(m, { inputs: fastInputs(m, { command: "status" }), runId: "1002" });
    expect(status.outputs.result).toBe("unchanged");
    expect(botComments(m)).toHaveLength(1);
    expect(botComments(m)[0]?.body).toContain("### ℹ️ Status");
    // The status run shows the stages the rollout went through, from the state on the VirtualService.
    expect(botComments(m)[0]?.body.match(/^\| \d+ \| \d+\s% \|.*✅\spass \|$/gm)).toHaveLength(3);
    expect(botComments(m)[0]?.id).toBe(comment?.id);

    const statuses = m.github.statuses.filter(
      (s) => s.sha === COMMIT && s.context === "istio-canary/shop/backend",
    );
    expect(statuses[0]?.state).toBe("pending");
    expect(statuses.at(-1)?.state).toBe("success");
    expect(m.github.deployments).toHaveLength(1);
    expect(m.github.deployments[0]?.statuses.map((s) => s.state)).toEqual(["in_progress", "success"]);
  }, 60_000); // two runs; Octokit spaces writes 1 s apart, as GitHub asks

  it("marks a rollback by the analysis as a failure in the status and the deployment", async () => {
    const m = await meshWith({ canary: { errorRate: 0.2 } });
    const run = await runOnMesh(m, { inputs: fastInputs(m, { environment: "production" }) });
    expect(run.outputs.result).toBe("rolled-back");
    expect(m.github.statuses.at(-1)).toMatchObject({ state: "failure" });
    expect(m.github.statuses.at(-1)?.description).toMatch(/^Failed at 10 %/);
    expect(m.github.deployments[0]?.statuses.at(-1)?.state).toBe("failure");
    expect(botComments(m)[0]?.body).toContain("### ⏪ Rolled back");
  });

  it("warns on a read-only token (403) and rolls out all the same", async () => {
    const m = await meshWith();
    m.github.readOnly = true;
    const run = await runOnMesh(m, { inputs: fastInputs(m) });
    expect(run.exitCode).toBe(0);
    expect(run.outputs.result).toBe("promoted");
    expect(run.stdout).toMatch(
      /::warning::Could not update the pull request comment on #42: 403 Resource not accessible by integration.*read-only/,
    );
    expect(botComments(m)).toHaveLength(0);
    expect(run.summary).toContain("Promoted");
  });

  it("retries comment updates after two 502s and a secondary rate limit, ending with the final result", async () => {
    const m = await meshWith();
    let patches = 0;
    m.github.fault = (r) => {
      if (r.method !== "PATCH" || !r.path.includes("/issues/comments/")) return undefined;
      patches++;
      if (patches <= 2) return { status: 502, body: { message: "Server Error" } };
      if (patches === 3)
        return {
          status: 403,
          headers: { "retry-after": "2" },
          body: {
            message:
              "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
          },
        };
      return undefined;
    };
    const run = await runOnMesh(m, { inputs: fastInputs(m) });
    expect(run.outputs.result).toBe("promoted");
    expect(patches).toBeGreaterThan(3);
    expect(run.stdout).not.toMatch(/::warning::Could not update the pull request comment/);
    expect(botComments(m)).toHaveLength(1);
    expect(botComments(m)[0]?.body).toContain("### ✅ Promoted");
  });
});
