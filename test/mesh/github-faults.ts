/**
 * Fault hooks for the GitHub API emulator, as GitHub answers under stress:
 *
 * - `badGateway`: 502 with GitHub's "Server Error" JSON (what the edge returns when a backend times out);
 * - `secondaryRateLimit`: 403 with `Retry-After` and "You have exceeded a secondary rate limit"
 *   (docs.github.com, "Rate limits for the REST API": secondary limits answer 403 or 429 with
 *   `retry-after`; `x-ratelimit-remaining` is not 0, which is how clients tell them from the primary);
 * - `primaryRateLimit`: 403 with `x-ratelimit-remaining: 0` and the reset time, no `Retry-After`
 *   (the same page: the hour's requests are used up; retry only after `x-ratelimit-reset`);
 * - `hold`: requests held unanswered until `release()` (GitHub not answering).
 *
 * `answerAfterMs` delays an answer (a slow GitHub): the hit is recorded when the request arrives,
 * the client sees the answer that much later.
 */

export interface GitHubFaultMatch {
  method?: string;
  /** A regular expression on the path, e.g. /\/comments/ for every comment call. */
  path?: RegExp;
}

export type GitHubFaultDecision =
  | { kind: "answer"; status: number; body: unknown; headers: Record<string, string>; afterMs?: number }
  | { kind: "hold"; released: Promise<void> };

interface Rule {
  match: GitHubFaultMatch;
  remaining: number;
  holds?: boolean;
  decide: () => GitHubFaultDecision;
}

export const SECONDARY_RATE_LIMIT_MESSAGE =
  "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0400:3C5A:2B6F1A:5C9E2D:6745F0A1.";

export class GitHubFaultPlan {
  private rules: Rule[] = [];
  private releaseHeld: Array<() => void> = [];
  /** When and how each faulted request was answered. */
  readonly hits: Array<{ at: number; method: string; path: string; fault: string }> = [];

  badGateway(options: { count?: number } & GitHubFaultMatch = {}): void {
    const { count = 1, ...match } = options;
    this.rules.push({
      match,
      remaining: count,
      decide: () => ({
        kind: "answer",
        status: 502,
        body: { message: "Server Error" },
        headers: {},
      }),
    });
  }

  secondaryRateLimit(
    options: {
      count?: number;
      retryAfterSeconds?: number;
      status?: 403 | 429;
      answerAfterMs?: number;
    } & GitHubFaultMatch = {},
  ): void {
    const { count = 1, retryAfterSeconds = 1, status = 403, answerAfterMs, ...match } = options;
    this.rules.push({
      match,
      remaining: count,
      decide: () => ({
        kind: "answer",
        status,
        afterMs: answerAfterMs,
        body: {
          message: SECONDARY_RATE_LIMIT_MESSAGE,
          documentation_url:
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        },
        headers: {
          "retry-after": String(retryAfterSeconds),
          "x-ratelimit-limit": "5000",
          "x-ratelimit-remaining": "4987",
          "x-ratelimit-used": "13",
          "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
          "x-ratelimit-resource": "core",
        },
      }),
    });
  }

  /** The hour's requests used up: 403, `x-ratelimit-remaining: 0`, reset `resetInSeconds` from now. */
  primaryRateLimit(options: { count?: number; resetInSeconds?: number } & GitHubFaultMatch = {}): void {
    const { count = 1, resetInSeconds = 3600, ...match } = options;
    this.rules.push({
      match,
      remaining: count,
      decide: () => ({
        kind: "answer",
        status: 403,
        body: {
          message: "API rate limit exceeded for installation ID 4242.",
          documentation_url:
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits",
        },
        headers: {
          "x-ratelimit-limit": "1000",
          "x-ratelimit-remaining": "0",
          "x-ratelimit-used": "1000",
          "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + resetInSeconds),
          "x-ratelimit-resource": "core",
        },
      }),
    });
  }

  /** `count` matching requests (default: every one) are held until `release()`. */
  hold(options: { count?: number } & GitHubFaultMatch = {}): void {
    const { count = Number.POSITIVE_INFINITY, ...match } = options;
    this.rules.push({
      match,
      remaining: count,
      holds: true,
      decide: () => ({ kind: "hold", released: new Promise<void>((done) => this.releaseHeld.push(done)) }),
    });
  }

  release(): void {
    this.rules = this.rules.filter((r) => !r.holds);
    for (const done of this.releaseHeld.splice(0)) done();
  }

  decide(method: string, path: string): GitHubFaultDecision | undefined {
    for (const rule of this.rules) {
      if (rule.remaining <= 0) continue;
      if (rule.match.method && rule.match.method !== method) continue;
      if (rule.match.path && !rule.match.path.test(path)) continue;
      rule.remaining -= 1;
      const decision = rule.decide();
      this.hits.push({
        at: Date.now(),
        method,
        path,
        fault: decision.kind === "answer" ? String(decision.status) : "hold",
      });
      return decision;
    }
    return undefined;
  }
}
