/**
 * Conformance of the GitHub API emulator (test code) to what GitHub documents or is seen to answer,
 * for the answers the product's tests rely on: pagination, status codes, rate limits and
 * validation errors. Each test cites its source; none compares the emulator with itself. What the
 * product does with these answers is tested in test/e2e/report-github.test.ts and test/e2e/report.test.ts.
 * Raw `fetch`, so the answer is checked as GitHub sends it, not as Octokit reshapes it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GitHubApiEmulator } from "../mesh/github-api.ts";

let github: GitHubApiEmulator;
beforeAll(async () => {
  github = await new GitHubApiEmulator().start();
});
afterAll(async () => {
  await github.stop();
});

const BOT_TOKEN = "ghs_bot_token";

function call(path: string, init: { method?: string; body?: unknown; token?: string } = {}) {
  return fetch(`${github.url}${path}`, {
    method: init.method ?? "GET",
    headers: {
      authorization: `token ${init.token ?? BOT_TOKEN}`,
      accept: "application/vnd.github+json",
      ...(init.body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
}

/** The `rel`s of a Link header, with the page each points at. */
function links(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [, url, rel] of (header ?? "").matchAll(/<([^>]+)>;\s*rel="(\w+)"/g))
    out[rel as string] = new URL(url as string).searchParams.get("page") ?? "";
  return out;
}

describe("pagination (docs.github.com, REST API, 'Using pagination in the REST API')", () => {
  const comments = "/repos/acme/pages/issues/3/comments";
  beforeAll(() => {
    for (let i = 0; i < 150; i++) github.addComment("acme/pages", 3, `comment ${i}`);
  });

  it("pages 30 at a time by default, at most 100 with per_page", async () => {
    expect(await (await call(comments)).json()).toHaveLength(30);
    expect(await (await call(`${comments}?per_page=500`)).json()).toHaveLength(100);
  });

  it("links prev, next, first and last, leaving out prev on the first page and next on the last", async () => {
    const first = await call(`${comments}?per_page=50`);
    expect(links(first.headers.get("link"))).toEqual({ next: "2", last: "3" });
    const middle = await call(`${comments}?per_page=50&page=2`);
    expect(links(middle.headers.get("link"))).toEqual({ prev: "1", first: "1", next: "3", last: "3" });
    const last = await call(`${comments}?per_page=50&page=3`);
    expect(links(last.headers.get("link"))).toEqual({ prev: "2", first: "1" });
    expect(((await last.json()) as Array<{ body: string }>).at(-1)?.body).toBe("comment 149");
  });

  it("omits the link header when every result fits on one page", async () => {
    github.addComment("acme/pages", 4, "only one");
    const one = await call("/repos/acme/pages/issues/4/comments");
    expect(one.headers.get("link")).toBeNull();
  });
});

describe("status codes (docs.github.com, REST API: 'Issue comments'; 'Troubleshooting the REST API')", () => {
  it("creates a comment with 201 and updates it with 200", async () => {
    const created = await call("/repos/acme/shop/issues/8/comments", { method: "POST", body: { body: "a" } });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    const updated = await call(`/repos/acme/shop/issues/comments/${id}`, {
      method: "PATCH",
      body: { body: "b" },
    });
    expect(updated.status).toBe(200);
    expect(((await updated.json()) as { body: string }).body).toBe("b");
  });

  it("answers a bad token with 401 'Bad credentials'", async () => {
    const refused = await call("/repos/acme/shop/issues/8/comments", { token: "wrong" });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ message: "Bad credentials" });
  });

  it("answers a workflow's GITHUB_TOKEN with 403 on GET /user, and GraphQL's viewer with the bot", async () => {
    // Checked on a real runner (the design's "GitHub facts"): an installation token has no user.
    const user = await call("/user");
    expect(user.status).toBe(403);
    expect(await user.json()).toMatchObject({ message: "Resource not accessible by integration" });
    const viewer = await call("/graphql", { method: "POST", body: { query: "query { viewer { login } }" } });
    expect(await viewer.json()).toEqual({ data: { viewer: { login: "github-actions[bot]" } } });
  });

  it("answers a request GitHub could not finish in time with 'Server Error' (Troubleshooting: Timeouts)", async () => {
    github.faultPlan.badGateway({ path: /\/issues\/11\/comments$/ });
    const failed = await call("/repos/acme/shop/issues/11/comments");
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(await failed.json()).toEqual({ message: "Server Error" });
    expect((await call("/repos/acme/shop/issues/11/comments")).status).toBe(200);
  });

  it("answers a write with a read-only token (a fork's pull request) with 403 (Troubleshooting: Resource not accessible)", async () => {
    github.readOnly = true;
    try {
      const refused = await call("/repos/acme/shop/issues/8/comments", {
        method: "POST",
        body: { body: "x" },
      });
      expect(refused.status).toBe(403);
      expect(await refused.json()).toMatchObject({ message: "Resource not accessible by integration" });
    } finally {
      github.readOnly = false;
    }
  });
});

describe("rate limits (docs.github.com, REST API, 'Rate limits for the REST API', 'Exceeding the rate limit')", () => {
  const path = /\/issues\/9\/comments$/;
  const write = () => call("/repos/acme/shop/issues/9/comments", { method: "POST", body: { body: "x" } });

  it.each([403, 429] as const)(
    "a secondary limit is %i with a message naming it, retry-after, and x-ratelimit-remaining not 0",
    async (status) => {
      github.faultPlan.secondaryRateLimit({ path, status, retryAfterSeconds: 7 });
      const limited = await write();
      expect(limited.status).toBe(status);
      expect(((await limited.json()) as { message: string }).message).toMatch(/secondary rate limit/);
      expect(limited.headers.get("retry-after")).toBe("7");
      expect(limited.headers.get("x-ratelimit-remaining")).not.toBe("0");
      expect((await write()).status).toBe(201);
    },
  );

  it("a primary limit is 403 with x-ratelimit-remaining 0 and a reset time in epoch seconds", async () => {
    github.faultPlan.primaryRateLimit({ path, resetInSeconds: 1800 });
    const limited = await write();
    expect(limited.status).toBe(403);
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(limited.headers.get("retry-after")).toBeNull();
    const reset = Number(limited.headers.get("x-ratelimit-reset"));
    expect(reset - Date.now() / 1000).toBeGreaterThan(1790);
    expect(reset - Date.now() / 1000).toBeLessThanOrEqual(1800);
  });
});

describe("validation errors (Troubleshooting the REST API: 'Validation Failed'; danger/danger#424 quotes this one)", () => {
  it("refuses a comment body over 65,536 characters with 422 'Validation Failed' and an error object", async () => {
    const tooLong = await call("/repos/acme/shop/issues/10/comments", {
      method: "POST",
      body: { body: "x".repeat(65_537) },
    });
    expect(tooLong.status).toBe(422);
    expect(await tooLong.json()).toMatchObject({
      message: "Validation Failed",
      errors: [
        {
          resource: "IssueComment",
          field: "body",
          code: "custom",
          message: "body is too long (maximum is 65536 characters)",
        },
      ],
    });
    const atTheLimit = await call("/repos/acme/shop/issues/10/comments", {
      method: "POST",
      body: { body: "x".repeat(65_536) },
    });
    expect(atTheLimit.status).toBe(201);
  });
});
