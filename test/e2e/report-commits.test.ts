/**
 * Reports that name the commits (issue 23), through the bundled action on the local mesh with real
 * Prometheus and the GitHub API emulator's compare API: three releases from one workflow. The first
 * says there is no earlier release; a rolled-back one lists the commits since the last promotion
 * with their authors in the PR comment and the job summary; the next promoted one lists them (the
 * rolled-back ones too) as its release notes.
 */
import { describe, expect, it } from "vitest";
import { NAMESPACE } from "../mesh/fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import { errorLines, fastInputs, PULL_REQUEST, REPOSITORY, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();

/** What a deploy workflow does before it runs the action: the new image on the canary Deployment. */
function release(m: Mesh, version: string): void {
  m.apps?.edit(NAMESPACE, "backend-v2", (d) => {
    const containers = (d.spec as { template: { spec: { containers: Array<{ image: string }> } } }).template
      .spec.containers;
    (containers[0] as { image: string }).image = `registry.example/backend:${version}`;
  });
}

/** The PR comment on this VirtualService, as it is now. */
const comment = (m: Mesh) => m.github.comments.get(`${REPOSITORY}#${PULL_REQUEST}`)?.at(-1)?.body ?? "";

/** Commits pushed by `who`, each on its own pull request's head: their shas, oldest first. */
function push(m: Mesh, messages: string[], who: { name: string; login: string }): string[] {
  return messages.map((message) => {
    const sha = m.github.history.add({
      message,
      login: who.login,
      author: { name: who.name, email: `${who.login}@example.com`, date: "2026-12-01T10:00:00Z" },
    }).sha;
    m.github.commitPulls.set(sha, [PULL_REQUEST]);
    return sha;
  });
}

const listed = (text: string) => [...text.matchAll(/^- \[`([0-9a-f]{7})`\]/gm)].map((x) => x[1]);

describe("reports that name the commits", () => {
  it("first rollout: no earlier release; rollback: the commits since, with authors; promotion: release notes", async () => {
    const m = await meshWith({ deployments: { readyDelayMs: 300 } });
    const inputs = fastInputs(m);

    const [v1] = push(m, ["Release 1"], { name: "Ada Lovelace", login: "ada" }) as [string];
    const first = await runOnMesh(m, { inputs, commit: v1, runId: "1" });
    expect(errorLines(first)).toEqual([]);
    expect(first.outputs).toMatchObject({ result: "promoted", finalized: "true" });
    expect(comment(m)).toMatch(
      /No earlier promoted release is recorded on the VirtualService \(a first rollout\)/,
    );

    // Two people push three commits; the release is bad and is rolled back.
    const bad = [
      ...push(m, ["Cache the cart", "Retry the payment <b>twice</b>"], { name: "Bob Builder", login: "bob" }),
      ...push(m, ["Bump the client"], { name: "Eve", login: "eve" }),
    ];
    release(m, "v2");
    m.traffic.setBehaviour("v2", { errorRate: 0.4 });
    const rolledBack = await runOnMesh(m, { inputs, commit: bad.at(-1), runId: "2" });
    expect(rolledBack.outputs).toMatchObject({ result: "rolled-back" });
    for (const text of [comment(m), rolledBack.summary]) {
      expect(text).toMatch(
        /\*\*Commits in the rolled-back release\*\*: 3 commits since the last promoted release `[0-9a-f]{7}`, by Eve \(eve\), Bob Builder \(bob\):/,
      );
      expect(listed(text)).toEqual([...bad].reverse().map((s) => s.slice(0, 7)));
      expect(text).toContain("Retry the payment &lt;b&gt;twice&lt;/b&gt; — Bob Builder (bob)");
      expect(text).toContain(`(https://github.com/${REPOSITORY}/commit/${bad[0]})`);
    }
    expect(JSON.parse(rolledBack.outputs.report ?? "{}").commits).toMatchObject({
      kind: "listed",
      base: v1,
      head: bad.at(-1),
      total: 3,
    });
    // The commit messages stay out of the log.
    expect(rolledBack.stdout).not.toMatch(/Cache the cart/);
    expect(rolledBack.stdout).toMatch(/Commits since the last promoted release [0-9a-f]{7}: 3 \(ahead\)/);

    // The fix is promoted: its release notes hold every commit since the last promotion.
    const [fix] = push(m, ["Fix the cart cache"], { name: "Bob Builder", login: "bob" }) as [string];
    release(m, "v3");
    m.traffic.setBehaviour("v2", { errorRate: 0.002 });
    const promoted = await runOnMesh(m, { inputs, commit: fix, runId: "3" });
    expect(errorLines(promoted)).toEqual([]);
    expect(promoted.outputs).toMatchObject({ result: "promoted", finalized: "true" });
    expect(comment(m)).toMatch(/\*\*Release notes\*\*: 4 commits since the last promoted release/);
    expect(listed(comment(m))).toEqual([fix, ...[...bad].reverse()].map((s) => s.slice(0, 7)));
    const compares = m.github.requests.filter((r) => r.path.includes("/compare/"));
    expect(compares.map((r) => r.path)).toEqual([
      `/repos/${REPOSITORY}/compare/${v1}...${bad.at(-1)}`,
      `/repos/${REPOSITORY}/compare/${v1}...${fix}`,
    ]);
  }, 240_000);

  it("a GitHub that does not answer the compare holds neither the rollback nor the job: one line says so", async () => {
    const m = await meshWith({ deployments: { readyDelayMs: 300 } });
    const inputs = fastInputs(m);
    const [v1] = push(m, ["Release 1"], { name: "Ada Lovelace", login: "ada" }) as [string];
    await runOnMesh(m, { inputs, commit: v1, runId: "1" });
    const [bad] = push(m, ["Break it"], { name: "Eve", login: "eve" }) as [string];
    release(m, "v2");
    m.traffic.setBehaviour("v2", { errorRate: 0.4 });
    m.github.faultPlan.hold({ path: /\/compare\// });
    const seen: Array<{ at: number; line: string }> = [];
    const run = await runOnMesh(m, {
      inputs,
      commit: bad,
      runId: "2",
      onStdout: (chunk) => seen.push(...chunk.split("\n").map((line) => ({ at: performance.now(), line }))),
    });
    const ended = performance.now();
    m.github.faultPlan.release();
    expect(run.outputs).toMatchObject({ result: "rolled-back" });
    const rolledBack = seen.find((l) => l.line.includes("result rolled-back"))?.at ?? Number.NaN;
    const givenUp = seen.find((l) => l.line.includes("Commits not listed in the report"))?.at ?? Number.NaN;
    // The rollback is written first; the list is waited for only after it, and only REPORT_COMMITS_WAIT_MS.
    expect(givenUp - rolledBack).toBeGreaterThan(4_000);
    expect(givenUp - rolledBack).toBeLessThan(7_000);
    expect(ended - givenUp).toBeLessThan(5_000);
    console.log(
      `TIMING rollback->given up ${Math.round(givenUp - rolledBack)} ms; given up->exit ${Math.round(ended - givenUp)} ms`,
    );
    expect(comment(m)).toContain(
      "Commits since the last promoted release: not listed (GitHub did not answer within 5s).",
    );
    expect(run.summary).toContain("not listed (GitHub did not answer within 5s)");
  }, 180_000);
});
