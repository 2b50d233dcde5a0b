/**
 * Exact counts through the product's IstioPrometheusObserver and PrometheusClient against REAL
 * Prometheus processes scraping the traffic simulator, in the setups that broke the raw-sample
 * arithmetic before (issue 11): an HA pair behind one URL, a restarted pod, series that appear
 * mid-stage, and a latency histogram without the threshold's bucket or with a NaN sample.
 *
 * Except for the HA pair (whose point is two replicas that disagree slightly about live traffic),
 * traffic is sent in batches while the simulator's timer is paused, and each batch is scraped
 * before the next: Prometheus then holds exactly what the simulator counted, so counts must be equal,
 * not close.
 */
import { createServer, type Server } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { VersionCounts } from "../../src/analysis/types.ts";
import { IstioPrometheusObserver } from "../../src/metrics/istio-observer.ts";
import { matcher, serviceMatchers } from "../../src/metrics/istio-queries.ts";
import { PrometheusClient } from "../../src/metrics/prometheus-client.ts";
import { NAMESPACE } from "../mesh/fixtures.ts";
import { type Mesh, type MeshOptions, startMesh } from "../mesh/index.ts";
import { PrometheusServer } from "../mesh/prometheus.ts";
import type { Totals, TrafficSimulator } from "../mesh/traffic.ts";

const base = serviceMatchers("destination", "backend", NAMESPACE);
const selectors = {
  canary: `${base},${matcher("destination_version", "v2")}`,
  stable: `${base},${matcher("destination_version", "v1")}`,
};
const THRESHOLD_MS = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

/** The simulator with both versions at 50 % and no Prometheus of the mesh's own. */
async function meshAt5050(options: MeshOptions = {}): Promise<Mesh> {
  const mesh = await startMesh({ prometheus: false, requestsPerSecond: 300, ...options });
  running.push(mesh);
  mesh.kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
    (o.spec as { http: Array<{ route: unknown[] }> }).http[0]!.route = [
      { destination: { host: "backend", subset: "v1" }, weight: 50 },
      { destination: { host: "backend", subset: "v2" }, weight: 50 },
    ];
  });
  return mesh;
}

async function prometheus(
  traffic: TrafficSimulator,
  scrapeIntervalSeconds: number,
  replica?: string,
): Promise<PrometheusServer> {
  const server = await new PrometheusServer().start({
    targets: [traffic.target],
    scrapeIntervalSeconds,
    externalLabels: replica ? { replica } : undefined,
    scrapeParams: replica ? { replica } : undefined,
  });
  running.push(server);
  return server;
}

function observer(url: string, latencyThresholdMs?: number, align = true): IstioPrometheusObserver {
  return new IstioPrometheusObserver(
    new PrometheusClient({ url, retries: 1, minRetryDelayMs: 50, timeoutMs: 3000 }),
    selectors,
    latencyThresholdMs,
    { align },
  );
}

/**
 * Waits until `count` more scrapes have happened and been stored: a Prometheus stores a scrape
 * before it scrapes the target again, so one scrape more is waited for.
 */
async function scrapes(traffic: TrafficSimulator, count: number): Promise<void> {
  const target = traffic.scrapes + count + 1;
  await vi.waitFor(() => expect(traffic.scrapes).toBeGreaterThanOrEqual(target), {
    timeout: 20_000,
    interval: 20,
  });
}

/** Waits until a Prometheus holds the canary's request counter. */
async function hasCanarySeries(client: PrometheusClient): Promise<void> {
  await vi.waitFor(
    async () =>
      expect((await client.querySeries(`istio_requests_total{${selectors.canary}}`)).series).not.toEqual([]),
    { timeout: 20_000, interval: 100 },
  );
}

/** Sends a batch with the timer paused and waits until one Prometheus has stored it. */
async function serveAndScrape(traffic: TrafficSimulator, requests: number): Promise<void> {
  traffic.send(requests);
  await scrapes(traffic, 2);
}

const slowOf = (t: Totals) => t.slowerThan[String(THRESHOLD_MS)] ?? 0;

function since(before: Totals, after: Totals, latency = true): VersionCounts {
  return {
    requests: after.requests - before.requests,
    errors: after.errors - before.errors,
    ...(latency ? { slow: slowOf(after) - slowOf(before) } : {}),
  };
}

function countsOf(observation: Awaited<ReturnType<IstioPrometheusObserver["observeSince"]>>) {
  expect(observation.ok, JSON.stringify(observation)).toBe(true);
  if (!observation.ok) throw new Error("unreachable");
  return observation;
}

/**
 * One loopback URL in front of an HA pair: each request goes to the next replica in turn, as a
 * load balancer without stickiness does. Records which replica answered each query.
 */
async function roundRobin(
  upstreams: string[],
): Promise<{ url: string; answered: string[][]; stop(): Promise<void> }> {
  let next = 0;
  const answered: string[][] = upstreams.map(() => []);
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const replica = next++ % upstreams.length;
    answered[replica]?.push(new URLSearchParams(body.toString()).get("query") ?? "");
    try {
      const upstream = await fetch(`${upstreams[replica]}${req.url}`, {
        method: req.method,
        headers: { "content-type": req.headers["content-type"] ?? "application/x-www-form-urlencoded" },
        body: req.method === "GET" ? undefined : body,
      });
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "" });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    } catch (error) {
      res.writeHead(502).end(String(error));
    }
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("proxy: no port");
  const proxy = {
    url: `http://127.0.0.1:${address.port}`,
    answered,
    stop: () => new Promise<void>((done) => server.close(() => done())),
  };
  running.push(proxy);
  return proxy;
}

/** Every count one scrape pair of the simulator allows: a later scrape minus an earlier one. */
function scrapeDifferences(
  traffic: TrafficSimulator,
  version: string,
  field: (t: Totals) => number,
  startMs: number,
  endMs: number,
): Set<number> {
  // The scrapes whose samples a read at `at` may return: stamped at or before it, not long before.
  // (The log's stamp is when the simulator answered; Prometheus stamps when it asked, a little
  // earlier, so a scrape answered shortly after `at` may still be the one read.)
  const near = (at: number) =>
    traffic.scrapeLog.filter((s) => s.stampMs <= at + 300 && s.stampMs >= at - 5000);
  const value = (s: { totals: Map<string, Totals> }) => {
    const t = s.totals.get(version);
    return t ? field(t) : 0;
  };
  const out = new Set<number>();
  for (const from of near(startMs))
    for (const to of near(endMs)) out.add(Math.max(0, value(to) - value(from)));
  return out;
}

describe("an HA pair behind one URL (two real Prometheus replicas, round-robin)", () => {
  it("counts what the simulator sent when the replicas disagree, within their offsets, and never blows up", async () => {
    const mesh = await meshAt5050({ seed: 11, stable: { errorRate: 0.01 }, canary: { errorRate: 0.01 } });
    // Replica a's clock runs 1.2 s ahead (2.4 scrape intervals): its samples hold values older than
    // their timestamps say. Whenever b answered the start and a answers a later read, a's first
    // samples are below the start value: a dip at every such read, which must not count as a reset.
    mesh.traffic.timestampLagMs = (url) => (url.includes("replica=a") ? -1200 : 0);
    const replicas = await Promise.all([
      prometheus(mesh.traffic, 0.5, "a"),
      prometheus(mesh.traffic, 0.5, "b"),
    ]);
    const proxy = await roundRobin(replicas.map((r) => r.url));
    // Both replicas hold the canary's series before counting starts (see the report: a replica
    // without them at the start would make every series look new).
    for (const replica of replicas) {
      const client = new PrometheusClient({ url: replica.url });
      await hasCanarySeries(client);
    }
    await scrapes(mesh.traffic, 4);
    // Counted to each version's latest samples, so every count is exactly a difference of two
    // scrapes; the time alignment (which interpolates between scrapes) is checked at the end.
    const obs = observer(proxy.url, THRESHOLD_MS, false);
    const aligned = observer(proxy.url, THRESHOLD_MS);
    const t0 = Date.now();
    const exactAtStart = { v1: mesh.traffic.totals("v1"), v2: mesh.traffic.totals("v2") };
    const start = await obs.start(new Date(t0));
    const alignedStart = await aligned.start(new Date(t0));
    const rows: string[] = [];
    // Replica a's samples taken after the start carry timestamps 1.2 s behind: until then, a read
    // that a answers rightly finds no sample since the start ("stale", no data). Seen once under a
    // loaded full run; the counts are checked once both replicas can hold samples after the start.
    await sleep(1300);
    for (let i = 0; i < 8; i++) {
      await sleep(450);
      // One extra query on every other round shifts the alternation, so each version's reads
      // come from one replica, then from the other, as behind a load balancer.
      if (i % 2 === 1) await new PrometheusClient({ url: proxy.url }).querySeries("up");
      const now = Date.now();
      const observation = countsOf(await obs.observeSince(start, new Date(now)));
      expect(observation.partial).toEqual([]);
      for (const version of ["v1", "v2"] as const) {
        const found = version === "v2" ? observation.canary : observation.stable;
        const exact = since(exactAtStart[version], mesh.traffic.totals(version));
        // A replica that missed scrapes under load may hold no sample of the range yet: no series
        // is an answer the judge waits on, not a count to check.
        if (found === undefined) {
          rows.push(`${version} t+${now - t0}ms no series yet, sent ${exact.requests}`);
          continue;
        }
        const counted = found as VersionCounts;
        rows.push(`${version} t+${now - t0}ms counted ${counted.requests} sent ${exact.requests}`);
        // Exactly some later scrape minus some earlier one (of either replica), never more.
        for (const [field, pick] of [
          ["requests", (t: Totals) => t.requests],
          ["errors", (t: Totals) => t.errors],
          ["slow", slowOf],
        ] as const) {
          const allowed = scrapeDifferences(mesh.traffic, version, pick, t0, now);
          expect(allowed, `${version} ${field}`).toContain(counted[field]);
        }
        expect(counted.requests).toBeLessThanOrEqual(exact.requests + 400);
      }
    }
    // Both replicas answered the canary's counter reads: the pair really was mixed.
    for (const queries of proxy.answered)
      expect(queries.some((q) => q.startsWith("istio_requests_total") && q.includes('"v2"'))).toBe(true);
    // Stopped traffic: both replicas hold the last values, so only the start can be off.
    mesh.traffic.pause();
    await scrapes(mesh.traffic, 4);
    const final = countsOf(await obs.observeSince(start, new Date()));
    const finalAligned = countsOf(await aligned.observeSince(alignedStart, new Date()));
    const exact = since(exactAtStart.v2, mesh.traffic.totals("v2"));
    rows.push(
      `final canary counted ${JSON.stringify(final.canary)}, aligned ${JSON.stringify(finalAligned.canary)}, sent since start ${JSON.stringify(exact)}`,
    );
    console.log(`HA pair:\n${rows.join("\n")}`);
    for (const counted of [final, finalAligned]) {
      expect(counted.canary?.requests).toBeGreaterThanOrEqual(exact.requests);
      expect(counted.canary?.requests).toBeLessThanOrEqual(exact.requests + 400);
    }
  }, 60_000);

  // KNOWN LIMITATION (reported, not fixed here: src/ is not ours). A replica that holds no sample
  // of a series at the start (restarted with empty storage, or down for more than the 5 min
  // lookback) answers the start with nothing, so the series looks new and its whole counter is
  // counted. This test passes once a series missing from the start is looked up again at the start
  // time on later reads (another replica has it) before it is counted from zero.
  it.fails("KNOWN LIMITATION: a replica with no samples at the start does not make the counts blow up", async () => {
    const mesh = await meshAt5050({ seed: 3 });
    const old = await prometheus(mesh.traffic, 0.5, "a");
    const client = new PrometheusClient({ url: old.url });
    await hasCanarySeries(client);
    // The old replica holds a history (four scrapes, 2 s) before the fresh one starts.
    await scrapes(mesh.traffic, 4);
    const fresh = await prometheus(mesh.traffic, 0.5, "b");
    // The canary's reads go to the fresh replica (1st and 3rd request), the stable's to the old one.
    const proxy = await roundRobin([fresh.url, old.url]);
    const obs = observer(proxy.url);
    const before = mesh.traffic.totals("v2");
    const start = await obs.start(new Date());
    const freshClient = new PrometheusClient({ url: fresh.url });
    await hasCanarySeries(freshClient);
    await scrapes(mesh.traffic, 4);
    const observation = countsOf(await obs.observeSince(start, new Date()));
    const exact = since(before, mesh.traffic.totals("v2"), false);
    console.log(
      `replica empty at the start: canary counted ${observation.canary?.requests}, sent ${exact.requests}`,
    );
    expect(observation.canary?.requests).toBeLessThanOrEqual(exact.requests + 400);
  }, 60_000);
});

describe("one real Prometheus, traffic in scraped batches", () => {
  async function setup(options: MeshOptions = {}) {
    const mesh = await meshAt5050({ seed: 5, ...options });
    mesh.traffic.pause();
    // Scrapes every 200 ms: batches are stored quickly, and the counts do not depend on timing.
    const server = await prometheus(mesh.traffic, 0.2);
    return { mesh, traffic: mesh.traffic, obs: observer(server.url, THRESHOLD_MS), server };
  }

  it("a restarted pod (its counters back to 0 mid-stage) is counted exactly", async () => {
    const { traffic, obs } = await setup({ canary: { errorRate: 0.02 } });
    traffic.setPods("v2", ["backend-v2-a", "backend-v2-b"]);
    await serveAndScrape(traffic, 2000);
    const before = { v1: traffic.totals("v1"), v2: traffic.totals("v2") };
    const start = await obs.start(new Date());
    await serveAndScrape(traffic, 1000);
    traffic.resetCounters("v2", "backend-v2-a");
    await serveAndScrape(traffic, 300);
    await serveAndScrape(traffic, 1000);
    const observation = countsOf(await obs.observeSince(start, new Date()));
    expect(observation.partial).toEqual([]);
    expect(observation.canary).toEqual(since(before.v2, traffic.totals("v2")));
    expect(observation.stable).toEqual(since(before.v1, traffic.totals("v1")));
    console.log(`restarted pod: canary counted ${JSON.stringify(observation.canary)}`);
  }, 30_000);

  // KNOWN BUG (reported, not fixed here: src/ is not ours). counts.ts reads a drop to half or
  // more of the highest value as an HA replica's dip, even inside one range query, whose samples
  // all come from one replica. A pod that restarts and serves half its earlier count before the
  // next scrape (a crash-looping canary, a 15 s scrape) loses everything it served since the
  // restart. This test passes once the counts are right.
  it("a pod that restarts and serves half its earlier count before the next scrape is counted exactly", async () => {
    const { traffic, obs } = await setup({ canary: { errorRate: 0.02 } });
    await serveAndScrape(traffic, 200);
    const before = traffic.totals("v2");
    const start = await obs.start(new Date());
    await serveAndScrape(traffic, 200);
    traffic.resetCounters("v2");
    await serveAndScrape(traffic, 300);
    const observation = countsOf(await obs.observeSince(start, new Date()));
    console.log(
      `restart to >= half: counted ${JSON.stringify(observation.canary)}, sent ${JSON.stringify(since(before, traffic.totals("v2")))}`,
    );
    expect(observation.canary?.requests).toBe(since(before, traffic.totals("v2")).requests);
  }, 30_000);

  it("series that appear mid-stage (a new pod, a first 503, a first no-response) count from zero", async () => {
    const { traffic, obs, server } = await setup({ canary: { errorRate: 0 } });
    traffic.setPods("v2", ["backend-v2-a"]);
    await serveAndScrape(traffic, 1000);
    const before = { v1: traffic.totals("v1"), v2: traffic.totals("v2") };
    const start = await obs.start(new Date());
    traffic.setPods("v2", ["backend-v2-a", "backend-v2-b"]);
    traffic.setBehaviour("v2", { errorRate: 0.03, noResponseRate: 0.01 });
    await serveAndScrape(traffic, 1000);
    await serveAndScrape(traffic, 500);
    const observation = countsOf(await obs.observeSince(start, new Date()));
    expect(observation.partial).toEqual([]);
    const exact = since(before.v2, traffic.totals("v2"));
    expect(observation.canary).toEqual(exact);
    expect(observation.stable).toEqual(since(before.v1, traffic.totals("v1")));
    // The new series really were new: none of them existed at the start.
    const atStart = await new PrometheusClient({ url: server.url }).querySeries(
      `istio_requests_total{${selectors.canary}}`,
      start.at,
    );
    expect(atStart.series.map((s) => `${s.metric.pod}/${s.metric.response_code}`)).toEqual([
      "backend-v2-a/200",
    ]);
    expect(exact.errors).toBeGreaterThan(0);
    console.log(`new series: canary counted ${JSON.stringify(observation.canary)}`);
  }, 30_000);

  it("a pod whose histogram lacks the threshold's bucket makes the data partial, never all slow", async () => {
    const { traffic, obs } = await setup();
    traffic.setPods("v2", ["backend-v2-a", "backend-v2-b"]);
    // Custom buckets on one pod (Istio's statsHistogramBuckets): no le="50" series for it.
    traffic.rewriteLine = (line) =>
      line.includes('pod="backend-v2-b"') && line.includes(`le="${THRESHOLD_MS}"`) ? null : line;
    await serveAndScrape(traffic, 400);
    const before = traffic.totals("v2");
    const start = await obs.start(new Date());
    await serveAndScrape(traffic, 400);
    const observation = countsOf(await obs.observeSince(start, new Date()));
    const exact = since(before, traffic.totals("v2"));
    console.log(
      `bucket missing on one pod: counted ${JSON.stringify(observation.canary)}, sent ${JSON.stringify(exact)}`,
    );
    // Only the latency data is partial: the request and error counts stay usable.
    expect(observation.partialLatency?.join(" ")).toMatch(/threshold's bucket/);
    expect(observation.partial).toEqual([]);
    expect(observation.canary?.requests).toBe(exact.requests);
    expect(observation.canary?.slow).toBeLessThanOrEqual(exact.slow as number);
    expect(observation.canary?.slow).toBeLessThan(exact.requests / 4);
  }, 30_000);

  it("a NaN sample in the threshold's bucket makes the data partial, never all slow", async () => {
    const { traffic, obs } = await setup();
    await serveAndScrape(traffic, 400);
    const before = traffic.totals("v2");
    const start = await obs.start(new Date());
    traffic.rewriteLine = (line) =>
      line.includes('destination_version="v2"') && line.includes(`le="${THRESHOLD_MS}"`)
        ? line.replace(/ \S+$/, " NaN")
        : line;
    await serveAndScrape(traffic, 400);
    traffic.rewriteLine = undefined;
    await serveAndScrape(traffic, 400);
    const observation = countsOf(await obs.observeSince(start, new Date()));
    const exact = since(before, traffic.totals("v2"));
    console.log(
      `NaN bucket sample: counted ${JSON.stringify(observation.canary)}, sent ${JSON.stringify(exact)}`,
    );
    expect(observation.partialLatency?.join(" ")).toMatch(/NaN/);
    expect(observation.partial).toEqual([]);
    expect(observation.canary?.requests).toBe(exact.requests);
    expect(observation.canary?.slow).toBeLessThanOrEqual(exact.slow as number);
    expect(observation.canary?.slow).toBeLessThan(exact.requests / 4);
  }, 30_000);
});
