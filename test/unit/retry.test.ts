/**
 * The one retry helper: what it retries, how long it waits (capped, Retry-After as a floor), that
 * its budget bounds the whole, and that an abort ends a wait at once.
 */
import { describe, expect, it } from "vitest";
import { abortableSleep, isTransient, parseRetryAfter, retry } from "../../src/retry.ts";
import { virtualClock } from "../support/virtual-clock.ts";

const httpError = (status: number, retryAfterMs?: number) =>
  Object.assign(new Error(`HTTP ${status}`), { status, retryAfterMs });

describe("retry", () => {
  it("retries 5xx, 429 and connection failures; not 4xx or planning errors", () => {
    expect(isTransient(httpError(500))).toBe(true);
    expect(isTransient(httpError(503))).toBe(true);
    expect(isTransient(httpError(429))).toBe(true);
    expect(isTransient(httpError(404))).toBe(false);
    expect(isTransient(httpError(422))).toBe(false);
    expect(isTransient(new TypeError("fetch failed", { cause: { code: "ECONNRESET" } }))).toBe(true);
    expect(isTransient(Object.assign(new Error("connect"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isTransient(new Error("socket hang up"))).toBe(true);
    expect(isTransient(new DOMException("The operation timed out", "TimeoutError"))).toBe(true);
    expect(isTransient(Object.assign(new Error("getaddrinfo"), { code: "ENOTFOUND" }))).toBe(false);
    expect(isTransient(new Error('no http route named "primary"'))).toBe(false);
  });

  it("waits with capped exponential backoff until the failure passes", async () => {
    const clock = virtualClock({ start: 0 });
    let calls = 0;
    const result = await retry(
      async () => {
        calls += 1;
        if (calls < 8) throw httpError(500);
        return "done";
      },
      { budgetMs: 60_000, sleep: clock.sleep, now: clock.now, random: () => 1 },
    );
    expect(result).toBe("done");
    expect(clock.waits).toEqual([200, 400, 800, 1600, 2000, 2000, 2000]);
  });

  it("honours Retry-After (seconds or an HTTP date) as a floor above the cap", async () => {
    expect(parseRetryAfter("3", 0)).toBe(3000);
    expect(parseRetryAfter("Fri, 27 Nov 2026 12:00:05 GMT", Date.parse("2026-11-27T12:00:00Z"))).toBe(5000);
    expect(parseRetryAfter("soon", 0)).toBeUndefined();
    const clock = virtualClock({ start: 0 });
    let calls = 0;
    await retry(
      async () => {
        calls += 1;
        if (calls === 1) throw httpError(429, 3000);
      },
      { budgetMs: 60_000, sleep: clock.sleep, now: clock.now },
    );
    expect(clock.waits).toEqual([3000]);
  });

  it("stops at the budget with the last error, and at once on a permanent one", async () => {
    const clock = virtualClock({ start: 0 });
    const error = await retry(
      async () => {
        throw httpError(503);
      },
      { budgetMs: 10_000, sleep: clock.sleep, now: clock.now },
    ).catch((e) => e);
    expect(error.message).toBe("HTTP 503");
    expect(clock.now()).toBeLessThanOrEqual(10_000);
    expect(clock.now()).toBeGreaterThan(8_000);

    let calls = 0;
    const permanent = await retry(
      async () => {
        calls += 1;
        throw httpError(403);
      },
      { budgetMs: 10_000, sleep: clock.sleep, now: clock.now },
    ).catch((e) => e);
    expect(permanent.status).toBe(403);
    expect(calls).toBe(1);
  });

  it("retries conflicts only when the caller says so, and never what it excludes", async () => {
    const clock = virtualClock({ start: 0 });
    let calls = 0;
    await retry(
      async () => {
        calls += 1;
        if (calls < 3) throw httpError(409);
      },
      {
        budgetMs: 10_000,
        sleep: clock.sleep,
        now: clock.now,
        retryAlso: (e) => (e as { status?: number }).status === 409,
      },
    );
    expect(calls).toBe(3);
    const refusal = httpError(500);
    const thrown = await retry(
      async () => {
        throw refusal;
      },
      { budgetMs: 10_000, never: (e) => e === refusal },
    ).catch((e) => e);
    expect(thrown).toBe(refusal);
  });

  it("an abort ends a wait at once with the abort's reason", async () => {
    const controller = new AbortController();
    const waits: number[] = [];
    // The real sleep, aborted once the 60 s wait has begun: only the abort can end it within the
    // test's timeout (30 s).
    const sleep = (ms: number, signal?: AbortSignal) => {
      waits.push(ms);
      const waiting = abortableSleep(ms, signal);
      queueMicrotask(() => controller.abort(new Error("cancelled by SIGINT")));
      return waiting;
    };
    const error = await retry(
      async () => {
        throw httpError(429, 60_000);
      },
      { budgetMs: 120_000, signal: controller.signal, sleep },
    ).catch((e) => e);
    expect(error.message).toBe("cancelled by SIGINT");
    expect(waits).toEqual([60_000]);
  });
});
