/**
 * Metrics against real Prometheus scraping the traffic simulator: exact counts, counter resets,
 * verdicts in real time, and every failure class of the HTTP API.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { JudgeSettings } from "../../src/analysis/types.ts";
import { IstioPrometheusObserver, type MetricsStart } from "../../src/metrics/istio-observer.ts";
import { matcher, serviceMatchers } from "../../src/metrics/istio-queries.ts";
import { PrometheusClient, PrometheusError } from "../../src/metrics/prometheus-client.ts";
import { escapeLabelValue } from "../../src/promql-text.ts";
import { NAMESPACE } from "../mesh/fixtures.ts";
import { type Mesh, startMesh } from "../mesh/index.ts";
import { judgeDefaults, judgeOnce, StageJudging } from "../support/judging.ts";
import { SlowProxy } from "../support/slow-proxy.ts";

let mesh: Mesh;
const base = serviceMatchers("destination", "backend", NAMESPACE);
const selectors = {
  canary: `${base},${matcher("destination_version", "v2")}`,
  stable: `${base},${matcher("destination_version", "v1")}`,
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WAIT = { timeout: 20_000, interval: 50 };

function setWeights(stable: number, canary: number): void {
  mesh.kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
    (o.spec as { http: Array<{ route: unknown[] }> }).http[0]!.route = [
      { destination: { host: "backend", subset: "v1" }, weight: stable },
      { destination: { host: "backend", subset: "v2" }, weight: canary },
    ];
  });
}

/**
 * Pauses traffic and waits until Prometheus holds the simulator's last scrape: it scrapes a target
 * and stores the samples before it scrapes it again, so the second scrape after the pause means
 * the first (which saw the final counts) is stored.
 */
async function quiesce(): Promise<void> {
  mesh.traffic.pause();
  const scrapes = mesh.traffic.scrapes;
  await vi.waitFor(() => expect(mesh.traffic.scrapes).toBeGreaterThanOrEqual(scrapes + 2), WAIT);
}

/** Lets traffic run until the canary has served `requests` more requests. */
async function canaryServes(requests: number): Promise<void> {
  const from = mesh.traffic.totals("v2").requests;
  await vi.waitFor(
    () => expect(mesh.traffic.totals("v2").requests - from).toBeGreaterThanOrEqual(requests),
    WAIT,
  );
}

beforeAll(async () => {
  mesh = await startMesh({
    requestsPerSecond: 400,
    seed: 5,
    stable: { errorRate: 0.002 },
    canary: { errorRate: 0.002, latencyMedianMs: 30 },
  });
  setWeights(90, 10);
});
afterAll(async () => {
  await mesh?.stop();
});

function observer(latencyThresholdMs?: number, url = mesh.prometheus?.url as string) {
  return new IstioPrometheusObserver(
    new PrometheusClient({ url, retries: 1, minRetryDelayMs: 50, timeoutMs: 2000 }),
    selectors,
    latencyThresholdMs,
  );
}

describe("exact counts from real Prometheus", () => {
  it("equal the simulator's totals as of the last scrape, through a counter reset", async () => {
    // Both versions have series in Prometheus before the observation starts.
    await vi.waitFor(() => expect(mesh.traffic.totalsAtLastScrape("v2").requests).toBeGreaterThan(0), WAIT);
    await quiesce();
    const obs = observer(50);
    const start: MetricsStart = await obs.start(new Date());
    const before = { v1: mesh.traffic.totalsAtLastScrape("v1"), v2: mesh.traffic.totalsAtLastScrape("v2") };
    try {
      mesh.traffic.resume();
      await canaryServes(60);
      // A canary pod restarts: its counters start again from zero.
      await quiesce();
      mesh.traffic.resetCounters("v2");
      mesh.traffic.resume();
      await canaryServes(60);
      await quiesce();
    } finally {
      mesh.traffic.resume();
    }
    const observation = await obs.observeSince(start, new Date());
    const after = { v1: mesh.traffic.totalsAtLastScrape("v1"), v2: mesh.traffic.totalsAtLastScrape("v2") };
    expect(observation.ok).toBe(true);
    if (!observation.ok) return;
    expect(observation.partial).toEqual([]);
    expect(observation.canary).toEqual({
      requests: after.v2.requests - before.v2.requests,
      errors: after.v2.errors - before.v2.errors,
      slow: (after.v2.slowerThan["50"] ?? 0) - (before.v2.slowerThan["50"] ?? 0),
    });
    expect(observation.stable?.requests).toBe(after.v1.requests - before.v1.requests);
    expect(observation.stable?.errors).toBe(after.v1.errors - before.v1.errors);
    expect(observation.canary?.requests).toBeGreaterThan(100);
  });
});

describe("verdicts in real time", () => {
  const settings: JudgeSettings = {
    ...judgeDefaults,
    maxErrorRate: 0.05,
    minRequests: 50,
    minStageDurationMs: 4000,
    maxStageDurationMs: 20_000,
  };

  async function judgeUntilDecided(): Promise<{ decision: string; elapsedMs: number; reason: string }> {
    const obs = observer();
    await sleep(1200);
    const start = await obs.start(new Date());
    const judging = new StageJudging(settings, 10, true);
    for (;;) {
      await sleep(1000);
      const now = new Date();
      const elapsedMs = now.getTime() - start.at.getTime();
      const observation = await obs.observeSince(start, now);
      const v = judging.check(observation, elapsedMs);
      if (v.decision !== "continue") return { decision: v.decision, elapsedMs, reason: v.reason };
    }
  }

  it("fails a canary at 20 % errors within one min-stage-duration", async () => {
    mesh.traffic.setBehaviour("v2", { errorRate: 0.2 });
    const v = await judgeUntilDecided();
    expect(v.decision).toBe("fail");
    expect(v.elapsedMs).toBeLessThanOrEqual(settings.minStageDurationMs);
  });

  it("passes a healthy canary", async () => {
    mesh.traffic.setBehaviour("v2", { errorRate: 0.002 });
    const v = await judgeUntilDecided();
    expect(v.decision, v.reason).toBe("pass");
  });
});

describe("failures of the Prometheus HTTP API are never a pass", () => {
  const settings: Partial<JudgeSettings> = {
    maxErrorRate: 0.05,
    minRequests: 1,
    minStageDurationMs: 1,
    maxStageDurationMs: 60_000,
  };
  const judge = (observation: Parameters<typeof judgeOnce>[0]) =>
    judgeOnce(observation, 30_000, settings, true);

  it("bad_data (400) from a real Prometheus is a typed error, not retried", async () => {
    const client = new PrometheusClient({
      url: mesh.prometheus?.url as string,
      retries: 3,
      minRetryDelayMs: 10,
    });
    const error = await client.querySeries("sum(").catch((e) => e);
    expect(error).toBeInstanceOf(PrometheusError);
    expect(error).toMatchObject({ problem: "bad_data", status: 400 });
  });

  it("execution (422) from a real Prometheus", async () => {
    const client = new PrometheusClient({ url: mesh.prometheus?.url as string, retries: 0 });
    const error = await client
      .querySeries("istio_requests_total + on() group_left istio_requests_total")
      .catch((e) => e);
    expect(error).toMatchObject({ problem: "execution", status: 422 });
    const v = judge({ ok: false, problem: error.problem, message: error.message });
    expect(v.decision).toBe("continue");
    expect(v.reason).toContain("(execution)");
  });

  it("an empty result (a selector that matches nothing) is 'no series', not a pass", async () => {
    const wrong = new IstioPrometheusObserver(new PrometheusClient({ url: mesh.prometheus?.url as string }), {
      canary: `${base},${matcher("destination_version", "v9")}`,
      stable: `${base},${matcher("destination_version", "v8")}`,
    });
    const start = await wrong.start(new Date(Date.now() - 5000));
    const observation = await wrong.observeSince(start, new Date());
    const v = judge(observation);
    expect(v.decision).not.toBe("pass");
    expect(v.rule).toBe("no-series");
    await expect(wrong.checkReady()).rejects.toThrow(/no istio_requests_total series for the stable version/);
  });

  it("preflight asks again when Prometheus' first answer is too slow, and fails only when none comes", async () => {
    const proxy = await new SlowProxy({ target: mesh.prometheus?.url as string }).start();
    try {
      const client = new PrometheusClient({ url: proxy.url, intervalMs: 600 });
      const observer = new IstioPrometheusObserver(client, {
        canary: `${base},${matcher("destination_version", "v2")}`,
        stable: `${base},${matcher("destination_version", "v1")}`,
      });
      // The first answer takes longer than the query's timeout (2/3 of the interval), then they are
      // quick: the proxy fixes each request's delay when it arrives.
      proxy.delayMs = 1_000;
      const quickAfterFirst = vi
        .waitFor(() => expect(proxy.requests.length).toBeGreaterThan(0), { timeout: 10_000, interval: 5 })
        .then(() => {
          proxy.delayMs = 0;
        });
      await observer.checkReady();
      await quickAfterFirst;
      expect(proxy.requests.length).toBeGreaterThan(1);
      proxy.delayMs = 1_000;
      await expect(observer.checkReady()).rejects.toThrow(/no answer from .* within 400 ms/);
    } finally {
      await proxy.stop();
    }
  });

  it("a label value cannot inject PromQL", async () => {
    const hostile = 'v2"} or vector(1) or {x="';
    expect(escapeLabelValue(hostile)).toBe('v2\\"} or vector(1) or {x=\\"');
    const client = new PrometheusClient({ url: mesh.prometheus?.url as string });
    const result = await client.querySeries(
      `istio_requests_total{${matcher("destination_version", hostile)}}`,
    );
    expect(result.series).toEqual([]);
  });

  describe("with a Prometheus that answers badly", () => {
    let server: Server;
    let url = "";
    let answer: { status: number; body: string } = { status: 200, body: "" };
    let calls = 0;
    let lastHeaders: Record<string, string | string[] | undefined> = {};
    beforeAll(async () => {
      server = createServer((req, res) => {
        calls++;
        lastHeaders = req.headers;
        res.writeHead(answer.status, { "content-type": "application/json" }).end(answer.body);
      });
      await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(() => new Promise<void>((done) => server.close(() => done())));

    const vector = (value: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({
        status: "success",
        data: {
          resultType: "vector",
          result: [{ metric: { response_code: "200", destination_version: "v2" }, value: [1, value] }],
        },
        ...extra,
      });

    it("503 is retried with backoff, then reported as a timeout", async () => {
      answer = {
        status: 503,
        body: JSON.stringify({
          status: "error",
          errorType: "timeout",
          error: "query timed out in expression evaluation",
        }),
      };
      calls = 0;
      const obs = new IstioPrometheusObserver(
        new PrometheusClient({ url, retries: 2, minRetryDelayMs: 10 }),
        selectors,
      );
      const observation = await obs.observeSince(emptyStart(), new Date());
      // Both versions are read at once; at least one of them went through all its attempts.
      expect(calls).toBeGreaterThanOrEqual(3);
      expect(judge(observation)).toMatchObject({ decision: "continue", rule: "metrics-error" });
      expect(judge(observation).reason).toContain("(timeout)");
    });

    it("sends prometheus-headers with every query", async () => {
      answer = { status: 200, body: vector("1") };
      await new PrometheusClient({
        url,
        headers: { Authorization: "Bearer prom-token", "X-Scope-OrgID": "team-a" },
      }).querySeries("up");
      expect(lastHeaders.authorization).toBe("Bearer prom-token");
      expect(lastHeaders["x-scope-orgid"]).toBe("team-a");
    });

    it("a body that is not JSON", async () => {
      answer = { status: 200, body: "<html>login</html>" };
      const error = await new PrometheusClient({ url, retries: 0 }).querySeries("up").catch((e) => e);
      expect(error).toMatchObject({ problem: "not_json" });
    });

    it("NaN values are partial data", async () => {
      answer = { status: 200, body: vector("NaN") };
      const obs = new IstioPrometheusObserver(new PrometheusClient({ url }), selectors);
      const observation = await obs.observeSince(emptyStart(), new Date());
      const v = judge(observation);
      expect(v.decision).not.toBe("pass");
      expect(v.reason).toContain("NaN");
    });

    it("warnings are partial data", async () => {
      answer = { status: 200, body: vector("5000", { warnings: ["remote read: store eu-1 unavailable"] }) };
      const obs = new IstioPrometheusObserver(new PrometheusClient({ url }), selectors);
      const observation = await obs.observeSince(emptyStart(), new Date());
      const v = judge(observation);
      expect(v.decision).not.toBe("pass");
      expect(v.reason).toContain("store eu-1 unavailable");
    });

    it("+Inf and NaN parse as numbers", async () => {
      const client = new PrometheusClient({ url });
      answer = { status: 200, body: vector("+Inf") };
      expect((await client.querySeries("x")).series[0]?.values).toEqual([Number.POSITIVE_INFINITY]);
      answer = { status: 200, body: vector("NaN") };
      expect((await client.querySeries("x")).series[0]?.values).toEqual([Number.NaN]);
    });
  });

  it("Prometheus down is 'unreachable'", async () => {
    const obs = observer(undefined, "http://127.0.0.1:9");
    const observation = await obs.observeSince(emptyStart(), new Date());
    expect(observation).toMatchObject({ ok: false, problem: "unreachable" });
    expect(judge(observation).decision).not.toBe("pass");
  });
});

function emptyStart(): MetricsStart {
  const values = () => ({ requests: new Map(), errors: new Map(), problems: [], latencyProblems: [] });
  return { at: new Date(Date.now() - 1000), canary: values(), stable: values() };
}
