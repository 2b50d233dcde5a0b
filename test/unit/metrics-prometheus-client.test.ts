/**
 * The Prometheus client against a fake Prometheus on loopback (a real one never misbehaves on
 * cue): requests end before the analysis interval does, a 429's Retry-After is honoured, an abort
 * ends a hung query at once, and a bad query is not retried.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { PrometheusClient, prometheusTimings } from "../../src/metrics/prometheus-client.ts";
import { virtualClock } from "../support/virtual-clock.ts";

type Answer = (res: ServerResponse) => void;
let server: Server;
let url = "";
let answers: Answer[] = [];
let calls = 0;
const hanging = new Set<ServerResponse>();

const ok: Answer = (res) =>
  res
    .writeHead(200, { "content-type": "application/json" })
    .end(JSON.stringify({ status: "success", data: { resultType: "vector", result: [] } }));
const hang: Answer = (res) => {
  hanging.add(res);
};
const status =
  (code: number, headers: Record<string, string> = {}): Answer =>
  (res) =>
    res
      .writeHead(code, { "content-type": "application/json", ...headers })
      .end(
        JSON.stringify({ status: "error", errorType: code === 400 ? "bad_data" : "unavailable", error: "x" }),
      );

beforeAll(async () => {
  server = createServer((req, res) => {
    calls += 1;
    req.resume();
    (answers.shift() ?? ok)(res);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((done) => server.close(() => done()));
});

describe("Prometheus client timing", () => {
  // Each case starts with no calls counted and no queued answers: a failed one must not leave its
  // hung requests to the next.
  beforeEach(() => {
    answers = [];
    calls = 0;
  });
  it("derives a request timeout and a retry budget that end within the interval", () => {
    expect(prometheusTimings(15_000)).toEqual({ timeoutMs: 10_000, retryBudgetMs: 12_000 });
    expect(prometheusTimings(5_000)).toEqual({ timeoutMs: 3_333, retryBudgetMs: 4_000 });
  });

  it("a Prometheus that never answers fails the query before the next interval", async () => {
    answers = [hang, hang, hang, hang];
    const started = Date.now();
    // A 3 s interval: the retry budget ends at 2.4 s, leaving 0.6 s for a loaded machine's timers.
    const error = await new PrometheusClient({ url, intervalMs: 3_000 }).querySeries("up").catch((e) => e);
    expect(error).toMatchObject({ problem: "timeout" });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(calls).toBeGreaterThanOrEqual(1);
  });

  it("waits out a 429's Retry-After (an HTTP date) before trying again", async () => {
    const clock = virtualClock();
    answers = [status(429, { "Retry-After": new Date(clock.now() + 4000).toUTCString() }), ok];
    const client = new PrometheusClient({ url, retryBudgetMs: 10_000, sleep: clock.sleep, now: clock.now });
    await client.querySeries("up");
    expect(calls).toBe(2);
    expect(clock.waits).toEqual([4000]);
  });

  it("an abort ends a hung query at once", async () => {
    answers = [hang];
    const controller = new AbortController();
    // The query's own timeout (60 s) is past the test's (30 s): only the abort can end it in time.
    const query = new PrometheusClient({ url, timeoutMs: 60_000, retryBudgetMs: 120_000 })
      .querySeries("up", undefined, controller.signal)
      .catch((e) => e);
    await vi.waitFor(() => expect(calls).toBe(1), { timeout: 10_000 });
    controller.abort(new Error("cancelled by SIGINT"));
    const error = await query;
    expect(error.message).toBe("cancelled by SIGINT");
    expect(calls).toBe(1);
  });

  it("a bad query (400) is not retried", async () => {
    answers = [status(400), ok];
    const error = await new PrometheusClient({ url }).querySeries("sum(").catch((e) => e);
    expect(error).toMatchObject({ problem: "bad_data", status: 400 });
    expect(calls).toBe(1);
  });
});
