/**
 * The GitHub reporter against the GitHub API emulator: it never holds the caller (a hung GitHub,
 * a 502, a secondary rate limit), retries a failed update with the next one, switches a channel
 * off only on an answer that proves there is no permission, and always attempts the final report
 * within the flush's time.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseConfig } from "../../src/inputs/config.ts";
import { createGitHubReporter, type GitHubReporter } from "../../src/report/github.ts";
import { renderMarkdown } from "../../src/report/markdown.ts";
import { buildReport } from "../../src/report/model.ts";
import type { Result } from "../../src/rollout/result.ts";
import { type GitHubContext, runContext } from "../../src/run-context.ts";
import { GitHubApiEmulator, type RecordedRequest } from "../mesh/github-api.ts";

const REPOSITORY = "acme/shop";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const PULL_REQUEST = 42;

let github: GitHubApiEmulator;
let warnings: string[];
beforeEach(async () => {
  github = await new GitHubApiEmulator().start();
  github.commitPulls.set(COMMIT, [PULL_REQUEST]);
  warnings = [];
  // @actions/core writes its commands to stdout: keep the warnings, drop the rest.
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    const text = String(chunk);
    if (text.startsWith("::warning::")) warnings.push(text.slice("::warning::".length).trim());
    return true;
  });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await github.stop();
});

/** A reporter for a run on `acme/shop`; `payload` is the event's (a push unless given). */
function reporter(retries = 0, payload: GitHubContext["payload"] = {}): GitHubReporter {
  const config = parseConfig({
    "virtual-service": "backend",
    namespace: "shop",
    "stable-subset": "v1",
    "canary-subset": "v2",
    "skip-analysis": "true",
    "github-token": "ghs_bot_token",
  });
  const context = runContext({
    payload,
    sha: COMMIT,
    runId: 7,
    runAttempt: 1,
    repo: { owner: "acme", repo: "shop" },
    serverUrl: "https://github.com",
    apiUrl: github.url,
    eventName: "push",
    actor: "octocat",
  });
  const created = createGitHubReporter(config, context, { retries });
  if (!created) throw new Error("no reporter");
  return created;
}

/** A report at `weight`, finished with `result` when given. */
function report(weight: number, result?: Result): [ReturnType<typeof buildReport>, string] {
  const at = new Date().toISOString();
  const model = buildReport(
    [
      {
        type: "started",
        at,
        command: "rollout",
        rolloutId: "r1",
        commit: COMMIT,
        stages: [10, 100],
        fromStage: 0,
        weight: 0,
      },
      { type: "weight", at, stage: weight === 100 ? 1 : 0, weight },
      ...(result
        ? [
            {
              type: "finished" as const,
              at,
              result,
              weight,
              reason: `finished at ${weight} %`,
              failed: result === "rolled-back",
            },
          ]
        : []),
    ],
    { namespace: "shop", virtualService: "backend" },
  );
  return [model, renderMarkdown(model)];
}

const commentBody = () =>
  github.comments.get(`${REPOSITORY}#${PULL_REQUEST}`)?.find((c) => c.user.type === "Bot")?.body;
const isWrite = (r: RecordedRequest) => r.method !== "GET" && r.path !== "/graphql";

/** After a rate limit: a later update sends no write before the limit allows, and no channel goes off. */
async function expectHeldBack(gh: ReturnType<typeof reporter>): Promise<void> {
  await new Promise((done) => setTimeout(done, 300));
  const writesBefore = github.requests.filter(isWrite).length;
  gh.update(...report(50));
  await new Promise((done) => setTimeout(done, 300));
  expect(github.requests.filter(isWrite).length).toBe(writesBefore);
  await gh.flush(200);
  expect(warnings.filter((w) => w.includes("not tried again"))).toEqual([]);
}

describe("the GitHub reporter", () => {
  it("returns from update at once while GitHub hangs, and its flush returns by its timeout", async () => {
    github.fault = () => "hang";
    const gh = reporter(2);
    const [model, markdown] = report(10);
    const took: number[] = [];
    for (let i = 0; i < 100; i++) {
      const started = performance.now();
      const returned = gh.update(model, markdown);
      took.push(performance.now() - started);
      expect(returned).toBeUndefined(); // nothing to await: the caller goes on with traffic
    }
    took.sort((a, b) => a - b);
    gh.update(...report(0, "rolled-back"));
    const flushStarted = performance.now();
    await gh.flush(1_500);
    const flushMs = performance.now() - flushStarted;
    process.stderr.write(
      `hung GitHub: update() returned in ${took[50]?.toFixed(3)} ms (median of 100, max ${took[99]?.toFixed(3)} ms); flush(1500) in ${flushMs.toFixed(0)} ms\n`,
    );
    expect(flushMs).toBeGreaterThanOrEqual(1_400);
    expect(flushMs).toBeLessThan(1_500 + 500);
    expect(warnings.join("\n")).toMatch(/final report did not reach GitHub within 2s/);
    // Nothing is sent after the flush gave up.
    const seen = github.requests.length;
    github.fault = undefined;
    gh.update(...report(0, "rolled-back"));
    await new Promise((done) => setTimeout(done, 300));
    expect(github.requests.length).toBe(seen);
  });

  it("retries a failed update with the next one, and the comment shows the final result", async () => {
    let failing = true;
    github.fault = (r) =>
      failing && isWrite(r) ? { status: 502, body: { message: "Bad Gateway" } } : undefined;
    const gh = reporter(0);
    gh.update(...report(10));
    await vi.waitFor(() => expect(github.requests.some((r) => r.status === 502)).toBe(true));
    failing = false;
    gh.update(...report(100, "promoted"));
    await gh.flush(10_000);
    expect(commentBody()).toContain("### ✅ Promoted");
    expect(github.statuses.at(-1)?.state).toBe("success");
    expect(warnings).toEqual([]);
  });

  it("comments on the pull request of a pull_request event without looking it up by commit, and puts the status on its head", async () => {
    const head = "feedfacefeedfacefeedfacefeedfacefeedface";
    const gh = reporter(0, { pull_request: { number: 77, head: { sha: head } } });
    gh.update(...report(100, "promoted"));
    await gh.flush(10_000);
    expect(github.comments.get(`${REPOSITORY}#77`)?.[0]?.body).toContain("### ✅ Promoted");
    expect(github.comments.get(`${REPOSITORY}#${PULL_REQUEST}`)).toBeUndefined();
    expect(github.requests.some((r) => r.path.endsWith(`/commits/${COMMIT}/pulls`))).toBe(false);
    // GITHUB_SHA is the merge commit on a pull_request event; the pull request shows its head's checks.
    expect(github.statuses.map((st) => st.sha)).toEqual([head]);
  });

  it("attempts the final report again within the flush when it fails", async () => {
    let failures = 0;
    github.fault = (r) =>
      isWrite(r) && r.path.endsWith("/comments") && failures++ < 1
        ? { status: 502, body: { message: "Bad Gateway" } }
        : undefined;
    const gh = reporter(0);
    gh.update(...report(0, "rolled-back"));
    await gh.flush(10_000);
    expect(failures).toBeGreaterThan(1);
    expect(commentBody()).toContain("### ⏪ Rolled back");
  });

  it("waits out a short secondary rate limit (403 with Retry-After) and keeps the comment on", async () => {
    let limitedAt = 0;
    github.fault = (r) => {
      if (!isWrite(r) || limitedAt) return undefined;
      limitedAt = Date.now();
      return {
        status: 403,
        headers: { "retry-after": "1" },
        body: {
          message:
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        },
      };
    };
    const gh = reporter(0);
    gh.update(...report(0, "rolled-back"));
    await vi.waitFor(() => expect(commentBody()).toContain("### ⏪ Rolled back"), { timeout: 8_000 });
    await gh.flush(5_000);
    const limited = github.requests.findIndex((r) => r.status === 403);
    // The write that was refused is sent again (Octokit waits out the Retry-After) and succeeds.
    const again = github.requests.slice(limited + 1).find((r) => r.path === github.requests[limited]?.path);
    expect(again?.status).toBeGreaterThanOrEqual(200);
    expect(again?.status).toBeLessThan(300);
    expect(warnings).toEqual([]);
  });

  it("waits out a secondary rate limit answered with 429, as with 403, and keeps the comment on", async () => {
    github.faultPlan.secondaryRateLimit({
      method: "POST",
      path: /\/comments$/,
      status: 429,
      retryAfterSeconds: 1,
    });
    const gh = reporter(0);
    gh.update(...report(0, "rolled-back"));
    await vi.waitFor(() => expect(commentBody()).toContain("### ⏪ Rolled back"), { timeout: 8_000 });
    await gh.flush(5_000);
    expect(github.requests.filter((r) => r.status === 429)).toHaveLength(1);
    expect(warnings).toEqual([]);
  });

  it("a primary rate limit (403, x-ratelimit-remaining 0) delays the comment, never switches it off", async () => {
    github.faultPlan.primaryRateLimit({ method: "POST", path: /\/comments$/ });
    const gh = reporter(0);
    gh.update(...report(10));
    await vi.waitFor(() => expect(github.faultPlan.hits).toHaveLength(1), { timeout: 8_000 });
    // Not a permission problem: no write is sent before the limit allows, and no channel goes off.
    await expectHeldBack(gh);
  });

  it("honours a long Retry-After by sending nothing before it, without switching the comment off", async () => {
    github.fault = (r) =>
      isWrite(r)
        ? {
            status: 403,
            headers: { "retry-after": "60" },
            body: {
              message:
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            },
          }
        : undefined;
    const gh = reporter(0);
    gh.update(...report(10));
    // Both channels' writes (the status, then the comment once found) are refused before counting.
    await vi.waitFor(
      () => {
        const refused = github.requests.filter((r) => r.status === 403).map((r) => r.path);
        expect(refused.some((p) => p.endsWith("/comments"))).toBe(true);
        expect(refused.some((p) => p.includes("/statuses/"))).toBe(true);
      },
      { timeout: 8_000 },
    );
    await expectHeldBack(gh);
  });

  it("switches a channel off with one warning on a read-only token, and keeps the others", async () => {
    github.fault = (r) =>
      r.method === "POST" && r.path.endsWith("/comments")
        ? { status: 403, body: { message: "Resource not accessible by integration" } }
        : undefined;
    const gh = reporter(0);
    gh.update(...report(10));
    gh.update(...report(100, "promoted"));
    await gh.flush(10_000);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /pull request comment on #42: 403 Resource not accessible by integration.*read-only/,
    );
    expect(github.statuses.at(-1)?.state).toBe("success");
    expect(github.requests.filter((r) => r.method === "POST" && r.path.endsWith("/comments"))).toHaveLength(
      1,
    );
  });

  it("writes a comment GitHub refuses as too long cut to half, at once, never sending the same body twice", async () => {
    const limit = 2_500;
    github.fault = (r) => {
      const body = (r.body as { body?: unknown } | undefined)?.body;
      return r.path.includes("/comments") && typeof body === "string" && body.length > limit
        ? {
            status: 422,
            body: {
              message: "Validation Failed",
              errors: [{ message: "body is too long (maximum is 65536 characters)" }],
            },
          }
        : undefined;
    };
    const gh = reporter(0);
    const [model] = report(100, "promoted");
    model.headline = "a long reason ".repeat(500);
    const markdown = renderMarkdown(model);
    expect(markdown.length).toBeGreaterThan(2 * limit);
    gh.update(model, markdown);
    await gh.flush(10_000);
    expect(commentBody()).toContain("### ✅ Promoted");
    expect(commentBody()).toContain("report truncated");
    // Halved until it fits: one refusal per halving, never the same body twice.
    const refused = github.requests
      .filter((r) => r.status === 422)
      .map((r) => (r.body as { body: string }).body);
    expect(refused.length).toBeLessThanOrEqual(Math.ceil(Math.log2(markdown.length / limit)));
    expect(new Set(refused).size).toBe(refused.length);
    expect(warnings).toEqual([]);
  });

  // A flush of 1 s alone would give up; within a 10 s bound it waits the 7 s GitHub asked for
  // (longer than Octokit waits by itself, so the reporter sees it). When GitHub answers only after
  // the flush has begun, the flush learns of the Retry-After mid-wait and must look again.
  it.each([
    { when: "before the final flush", answerAfterMs: undefined, waitsMs: 1_500 },
    { when: "while the final flush waits", answerAfterMs: 500, waitsMs: 6_000 },
  ])(
    "the final report waits for a Retry-After answered $when, within the bound it is given",
    async ({ answerAfterMs, waitsMs }) => {
      github.faultPlan.secondaryRateLimit({
        method: "PATCH",
        path: /\/issues\/comments\//,
        retryAfterSeconds: 7,
        answerAfterMs,
      });
      const gh = reporter(0);
      gh.update(...report(10));
      await vi.waitFor(() => expect(commentBody()).toContain("In progress"), { timeout: 8_000 });
      gh.update(...report(100, "promoted"));
      await vi.waitFor(() => expect(github.faultPlan.hits).toHaveLength(1), { timeout: 8_000 });
      const started = Date.now();
      await gh.flush(1_000, 10_000);
      expect(commentBody()).toContain("### ✅ Promoted");
      expect(Date.now() - started).toBeGreaterThan(waitsMs);
      expect(warnings).toEqual([]);
    },
    20_000,
  );
});
