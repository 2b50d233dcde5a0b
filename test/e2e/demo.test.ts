/**
 * `npm run demo` as a newcomer runs it (issue 25), without the pictures: the default release model
 * with no warning, the healthy release promoted and finalized step by step (the stable Deployment
 * on the new image, traffic back on stable, the canary at zero), the faulty one rolled back with
 * the stable untouched, and each comment leading with the outcome and the figures.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");
const out = mkdtempSync(join(tmpdir(), "demo-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** The cluster's three lines (two Deployments, the route) printed after `marker`. */
function cluster(stdout: string, marker: string, from = 0): string[] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l, i) => i >= from && l.includes(marker));
  expect(start, `"${marker}" in the demo's output`).toBeGreaterThanOrEqual(0);
  return lines.slice(start + 1, start + 4).map((l) => l.trim());
}

const firstLine = (markdown: string): string =>
  markdown
    .split("\n")
    .slice(markdown.split("\n").findIndex((l) => l.startsWith("### ")) + 1)
    .find((l) => l.trim()) ?? "";

describe("npm run demo", () => {
  it("shows the default release model with no warning, and checks what it shows", () => {
    const began = Date.now();
    const demo = spawnSync(process.execPath, ["scripts/demo.ts", "--no-pictures", "--out", out], {
      cwd: root,
      encoding: "utf8",
      timeout: 110_000,
    });
    const seconds = (Date.now() - began) / 1000;
    console.log(`demo: exit ${demo.status} in ${seconds.toFixed(1)} s`);
    const stdout = demo.stdout;
    // The demo exits 1 when a run ended otherwise than it says, or the action warned.
    expect(demo.status, `${stdout}\n${demo.stderr}`).toBe(0);
    expect(stdout).not.toMatch(/WARNING/);
    expect(stdout).toMatch(/; 0 warnings\n/);

    // Release 1.1.0: promoted, then finalized step by step, in this order.
    const steps = [
      "Copied the canary's pod template onto the stable Deployment",
      "The stable Deployment is ready",
      "All traffic is back on the stable Deployment",
      "The canary Deployment was scaled to zero",
    ].map((s) => stdout.indexOf(`◇ finalize: ${s}`));
    expect(steps.every((at) => at > 0)).toBe(true);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    expect(stdout).toMatch(/result: promoted, finalized true, canary weight 0, exit code 0/);
    const afterFirst = cluster(stdout, "the cluster after the run");
    expect(afterFirst).toEqual([
      "Deployment backend-v1 (stable): registry.example/backend:1.1.0, 2 of 2 pods ready",
      "Deployment backend-v2 (canary): registry.example/backend:1.1.0, 0 of 0 pods ready",
      "VirtualService backend, route primary: v1 100 %",
    ]);

    // Release 1.2.0: rolled back; the stable keeps 1.1.0 and all traffic.
    expect(stdout).toMatch(/result: rolled-back, finalized false, canary weight 0, exit code 1/);
    const second = stdout.split("\n").findIndex((l) => l.includes("release 1.2.0"));
    const afterSecond = cluster(stdout, "the cluster after the run", second);
    expect(afterSecond[0]).toBe(
      "Deployment backend-v1 (stable): registry.example/backend:1.1.0, 2 of 2 pods ready",
    );
    expect(afterSecond[1]).toMatch(/^Deployment backend-v2 \(canary\): registry.example\/backend:1.2.0/);
    expect(afterSecond[2]).toBe("VirtualService backend, route primary: v1 100 %");
    expect(stdout).toMatch(/ERROR: Rolled back at 1 %: [\d,]+ of [\d,]+ canary requests failed/);

    // The comments lead with the outcome and the figures.
    const promoted = readFileSync(join(out, "healthy-comment.md"), "utf8");
    expect(promoted).toMatch(/^### ✅ Promoted and finalized/m);
    expect(firstLine(promoted)).toMatch(/^Promoted: [\d,]+ of [\d,]+ canary requests failed .*; limit 5 %\./);
    expect(promoted).not.toMatch(/swap `stable-subset`/);
    const rolledBack = readFileSync(join(out, "faulty-comment.md"), "utf8");
    expect(firstLine(rolledBack)).toMatch(
      /^Rolled back at 1 %: [\d,]+ of [\d,]+ canary requests failed .*; limit 5 %\./,
    );
    // The commits of the release that failed, since 1.1.0 was promoted (issue 23).
    expect(rolledBack).toMatch(
      /\*\*Commits in the rolled-back release\*\*: 3 commits since the last promoted release `110abab`/,
    );
    expect(promoted).toMatch(/No earlier promoted release is recorded/);
  }, 120_000);
});
