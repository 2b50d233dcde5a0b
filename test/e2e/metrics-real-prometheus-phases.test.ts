/**
 * Per-pod scrape phases against REAL Prometheus: every pod is its own scrape target, and
 * Prometheus scrapes each at its own offset within the interval (derived from the target's labels),
 * so the canary's and stable's latest samples were taken at different moments. The reader must
 * count both versions up to one instant (issue 21), and a version whose targets went down must be
 * no data, not zero traffic (issue 20).
 *
 * Each pod's counters grow linearly with time (rate × seconds since the exporter started, rounded
 * down), so the count at any instant is known, and linear interpolation between two samples of it
 * is exact up to the rounding.
 */
import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { Observation } from "../../src/analysis/judge.ts";
import type { VersionCounts } from "../../src/analysis/types.ts";
import { IstioPrometheusObserver } from "../../src/metrics/istio-observer.ts";
import { matcher, serviceMatchers } from "../../src/metrics/istio-queries.ts";
import { PrometheusClient } from "../../src/metrics/prometheus-client.ts";
import { PrometheusServer } from "../mesh/prometheus.ts";

const PER_POD_RPS = 50;
const ERROR_SHARE = 0.1;
const PODS = 3;
const base = serviceMatchers("destination", "backend", "shop");
const selectors = {
  canary: `${base},${matcher("destination_version", "v2")}`,
  stable: `${base},${matcher("destination_version", "v1")}`,
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

/** One pod's Istio metrics endpoint: 200s and 503s growing linearly from its start. */
async function podExporter(version: string, pod: string): Promise<{ target: string; stop(): Promise<void> }> {
  const started = Date.now();
  const server: Server = createServer((_req, res) => {
    const seconds = (Date.now() - started) / 1000;
    const labels = (code: string) =>
      `reporter="destination",destination_service_name="backend",destination_service_namespace="shop",destination_version="${version}",pod="${pod}",response_code="${code}"`;
    const errors = Math.floor(PER_POD_RPS * ERROR_SHARE * seconds);
    const ok = Math.floor(PER_POD_RPS * (1 - ERROR_SHARE) * seconds);
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(
      `# TYPE istio_requests_total counter\nistio_requests_total{${labels("200")}} ${ok}\nistio_requests_total{${labels("503")}} ${errors}\n`,
    );
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("exporter: no port");
  const exporter = {
    target: `127.0.0.1:${address.port}`,
    stop: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
  running.push(exporter);
  return exporter;
}

async function podsAndPrometheus() {
  const pods = {
    canary: await Promise.all(Array.from({ length: PODS }, (_, i) => podExporter("v2", `backend-v2-${i}`))),
    stable: await Promise.all(Array.from({ length: PODS }, (_, i) => podExporter("v1", `backend-v1-${i}`))),
  };
  const server = await new PrometheusServer().start({
    targets: [...pods.canary, ...pods.stable].map((p) => p.target),
    scrapeIntervalSeconds: 1,
  });
  running.push(server);
  const client = new PrometheusClient({ url: server.url, retries: 1, minRetryDelayMs: 50, timeoutMs: 3000 });
  // Every target scraped a few times: the start finds every series and the scrape interval.
  for (;;) {
    const { series } = await client.querySeries('istio_requests_total{response_code="200"}[3s]');
    if (series.length === 2 * PODS && series.every((s) => s.values.length >= 3)) break;
    await sleep(200);
  }
  return { pods, server, client };
}

function countsOf(o: Observation): { canary: VersionCounts; stable: VersionCounts } {
  if (!o.ok || !o.canary || !o.stable)
    throw new Error(`expected both versions' counts: ${JSON.stringify(o)}`);
  return { canary: o.canary, stable: o.stable };
}

const minus = (a: VersionCounts, b: VersionCounts) => ({
  requests: a.requests - b.requests,
  errors: a.errors - b.errors,
});

describe("pods scraped at their own phases (real Prometheus, one target per pod)", () => {
  it("counts both versions up to one instant: equal traffic gives equal windows, to the rounding", async () => {
    const { client, server } = await podsAndPrometheus();
    // The targets' latest samples really are spread over the interval.
    const { series } = await client.querySeries('istio_requests_total{response_code="200"}[2s]');
    const latest = series.map((s) => s.times?.at(-1) ?? 0);
    const spread = Math.max(...latest) - Math.min(...latest);
    expect(spread, `latest sample times ${latest.join(", ")}`).toBeGreaterThan(100);

    const aligned = new IstioPrometheusObserver(client, selectors);
    const unaligned = new IstioPrometheusObserver(
      new PrometheusClient({ url: server.url, retries: 1, timeoutMs: 3000 }),
      selectors,
      undefined,
      { align: false },
    );
    const marks = [await aligned.start(new Date()), await unaligned.start(new Date())] as const;
    await sleep(2600);
    const first = [
      countsOf(await aligned.observeSince(marks[0], new Date())),
      countsOf(await unaligned.observeSince(marks[1], new Date())),
    ];
    await sleep(3100);
    const second = [
      countsOf(await aligned.observeSince(marks[0], new Date())),
      countsOf(await unaligned.observeSince(marks[1], new Date())),
    ];
    // A window between two reads: what the judge compares, canary against stable.
    const window = (i: 0 | 1) => ({
      canary: minus((second[i] as (typeof first)[0]).canary, (first[i] as (typeof first)[0]).canary),
      stable: minus((second[i] as (typeof first)[0]).stable, (first[i] as (typeof first)[0]).stable),
    });
    const a = window(0);
    const u = window(1);
    console.log(
      `per-pod phases (latest samples spread over ${spread} ms): aligned window canary ${JSON.stringify(a.canary)} stable ${JSON.stringify(a.stable)}; each version to its own latest samples: canary ${JSON.stringify(u.canary)} stable ${JSON.stringify(u.stable)}`,
    );
    // The window is about 3 s of 150 req/s per version.
    expect(a.canary.requests).toBeGreaterThan(300);
    // Interpolation between two samples of a linear counter is exact but for the rounding of each
    // sample (one request per series and read) and of each total.
    expect(Math.abs(a.canary.requests - a.stable.requests)).toBeLessThanOrEqual(2 * 2 * PODS + 2);
    expect(Math.abs(a.canary.errors - a.stable.errors)).toBeLessThanOrEqual(2 * PODS + 2);
  });

  it("counts the first window of a stage from one instant too: equal traffic gives equal first windows", async () => {
    const { client, server } = await podsAndPrometheus();
    const aligned = new IstioPrometheusObserver(client, selectors);
    const unaligned = new IstioPrometheusObserver(
      new PrometheusClient({ url: server.url, retries: 1, timeoutMs: 3000 }),
      selectors,
      undefined,
      { align: false },
    );
    // The start is read at an instant away from the scrapes, so each series' latest sample before
    // it was taken at its own moment.
    const marks = [await aligned.start(new Date()), await unaligned.start(new Date())] as const;
    await sleep(2600);
    const firstAligned = countsOf(await aligned.observeSince(marks[0], new Date()));
    const firstUnaligned = countsOf(await unaligned.observeSince(marks[1], new Date()));
    const gap = (c: { canary: VersionCounts; stable: VersionCounts }) =>
      Math.abs(c.canary.requests - c.stable.requests);
    console.log(
      `first window from one instant: canary ${JSON.stringify(firstAligned.canary)} stable ${JSON.stringify(firstAligned.stable)}; from each series' own latest sample: canary ${JSON.stringify(firstUnaligned.canary)} stable ${JSON.stringify(firstUnaligned.stable)}`,
    );
    expect(firstAligned.canary.requests).toBeGreaterThan(150);
    // Interpolated at both ends: one request of rounding per series and end, and each total's own.
    expect(gap(firstAligned)).toBeLessThanOrEqual(2 * 2 * PODS + 2);
    expect(Math.abs(firstAligned.canary.errors - firstAligned.stable.errors)).toBeLessThanOrEqual(
      2 * PODS + 2,
    );
  });

  it("a version whose targets all went down is no data (stale), never zero traffic", async () => {
    const { pods, client } = await podsAndPrometheus();
    const reader = new IstioPrometheusObserver(client, selectors);
    const mark = await reader.start(new Date());
    await sleep(2100);
    expect((await reader.observeSince(mark, new Date())).ok).toBe(true);
    await Promise.all(pods.canary.map((p) => p.stop()));
    // Prometheus marks the canary's series stale at its next failed scrapes; the reader says so
    // once they are three intervals behind stable's.
    await sleep(4500);
    const after = await reader.observeSince(mark, new Date());
    expect(after).toMatchObject({ ok: false, problem: "stale" });
    if (!after.ok) expect(after.message).toMatch(/the canary's/);
  });

  it("a version with one scrape target down of three is no data (up == 0), not a third less traffic", async () => {
    const { pods, client } = await podsAndPrometheus();
    const reader = new IstioPrometheusObserver(client, selectors);
    const mark = await reader.start(new Date());
    await sleep(2100);
    expect((await reader.observeSince(mark, new Date())).ok).toBe(true);
    await (pods.canary[0] as { stop(): Promise<void> }).stop();
    // Prometheus records up == 0 at each failed scrape; after three intervals of them the reader
    // says so. The canary's other two pods are still scraped, so its newest samples stay fresh.
    await sleep(4500);
    const after = await reader.observeSince(mark, new Date());
    console.log(`one canary pod down: ${JSON.stringify(after)}`);
    expect(after).toMatchObject({ ok: false, problem: "stale" });
    if (!after.ok) expect(after.message).toMatch(/1 of the canary's scrape targets is down/);
  });
});
