/**
 * PromQL's `rate()` and `irate()` over scraped counter samples, as Prometheus computes them
 * (promql/functions.go: extrapolatedRate and instantValue), for the Flagger and Argo rules, which
 * read Istio's metrics through these functions rather than as exact counts.
 */
import type { Pod, PodScrape, ServiceWorld } from "./world.ts";

export interface Sample {
  at: number;
  value: number;
}

/**
 * `rate(series[rangeMs])` at `end`: the increase between the first and last sample in the window,
 * extrapolated towards the window's edges (at most half a scrape interval beyond the samples, and
 * never below zero for a counter), per second. Undefined with fewer than two samples.
 */
export function promRate(samples: readonly Sample[], end: number, rangeMs: number): number | undefined {
  if (samples.length < 2) return undefined;
  const first = samples[0] as Sample;
  const last = samples.at(-1) as Sample;
  let increase = last.value - first.value;
  // Counter resets: a drop means the counter restarted from zero.
  for (let i = 1; i < samples.length; i++) {
    const previous = (samples[i - 1] as Sample).value;
    if ((samples[i] as Sample).value < previous) increase += previous;
  }
  const start = end - rangeMs;
  let durationToStart = (first.at - start) / 1000;
  const durationToEnd = (end - last.at) / 1000;
  const sampledInterval = (last.at - first.at) / 1000;
  const averageBetweenSamples = sampledInterval / (samples.length - 1);
  if (increase > 0 && first.value >= 0) {
    // A counter does not extrapolate below zero.
    const durationToZero = sampledInterval * (first.value / increase);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  const threshold = averageBetweenSamples * 1.1;
  let extrapolateTo = sampledInterval;
  extrapolateTo += durationToStart < threshold ? durationToStart : averageBetweenSamples / 2;
  extrapolateTo += durationToEnd < threshold ? durationToEnd : averageBetweenSamples / 2;
  return (increase * (extrapolateTo / sampledInterval)) / (rangeMs / 1000);
}

/** `irate(series[range])`: the per-second increase between the last two samples in the window. */
export function promIrate(samples: readonly Sample[]): number | undefined {
  if (samples.length < 2) return undefined;
  const last = samples.at(-1) as Sample;
  const previous = samples.at(-2) as Sample;
  const increase = last.value < previous.value ? last.value : last.value - previous.value;
  return increase / ((last.at - previous.at) / 1000);
}

/**
 * `sum(f(a)) / sum(f(b))` over several series: undefined when a sum has no series with a result
 * (an empty vector: the division yields nothing), NaN for 0/0.
 */
export function ratioOfSums(
  numerator: Array<number | undefined>,
  denominator: Array<number | undefined>,
): number | undefined {
  const sum = (xs: Array<number | undefined>) => {
    const present = xs.filter((x): x is number => x !== undefined);
    return present.length > 0 ? present.reduce((a, b) => a + b, 0) : undefined;
  };
  const top = sum(numerator);
  const bottom = sum(denominator);
  if (top === undefined || bottom === undefined) return undefined;
  return top / bottom;
}

/**
 * An in-process Prometheus HTTP API over the simulated pods, for the real metrics reader
 * (src/metrics/) through its own client: `fetch` answers `/api/v1/query` for the selectors the
 * reader sends (a metric or `{__name__=~…}` with label matchers, optionally a `[Nms]` range), as
 * Prometheus would: a range holds every sample in (t - range, t] with its scrape time; an instant
 * query the latest sample at or before t within the lookback, unless the series went stale after
 * it (a failed scrape, or the series missing from a scrape after a pod restart). Anything else is
 * answered 400 bad_data, so a query the answerer does not know fails the bench loudly.
 */

/** Prometheus' default lookback for instant queries. */
const LOOKBACK_MS = 5 * 60_000;

export interface SeriesIdentity {
  reporter: string;
  service: string;
  namespace: string;
  /** The `version` label of each version's pods. */
  versionLabel: Record<"canary" | "stable", string>;
  /** The latency threshold's bucket (`le`), when the scenario has one. */
  latencyBucketMs?: number;
}

type Matcher = { label: string; op: string; value: string; regex?: RegExp };

interface BenchSeries {
  labels: Record<string, string>;
  pod: Pod;
  value: (s: PodScrape) => number;
  /** Present in a scrape only from its first request (since the pod's last restart). */
  exists: (s: PodScrape) => boolean;
  /** Sampled at failed scrapes too (`up`, which is 0 there), where every other series has none. */
  atFailedScrapes?: boolean;
}

function unescapePromqlString(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}

const SELECTOR = /^([a-zA-Z_:][\w:]*)?\{(.*)\}(?:\[(\d+)ms\])?$/s;
const MATCHER = /\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

export function parseSelector(query: string): { matchers: Matcher[]; rangeMs?: number } | undefined {
  const m = SELECTOR.exec(query.trim());
  if (!m) return undefined;
  const matchers: Matcher[] = [];
  if (m[1]) matchers.push({ label: "__name__", op: "=", value: m[1] });
  const body = m[2] ?? "";
  MATCHER.lastIndex = 0;
  while (MATCHER.lastIndex < body.length) {
    const start = MATCHER.lastIndex;
    const x = MATCHER.exec(body);
    if (!x || MATCHER.lastIndex === start) return undefined;
    const value = unescapePromqlString(x[3] ?? "");
    const op = x[2] as string;
    matchers.push({
      label: x[1] as string,
      op,
      value,
      ...(op.includes("~") ? { regex: new RegExp(`^(?:${value})$`) } : {}),
    });
  }
  return { matchers, ...(m[3] ? { rangeMs: Number(m[3]) } : {}) };
}

function matches(labels: Record<string, string>, matchers: Matcher[]): boolean {
  return matchers.every(({ label, op, value, regex }) => {
    const actual = labels[label] ?? "";
    if (op === "=") return actual === value;
    if (op === "!=") return actual !== value;
    const hit = (regex as RegExp).test(actual);
    return op === "=~" ? hit : !hit;
  });
}

const seriesCache = new WeakMap<ServiceWorld, BenchSeries[]>();

/** Every series the pods expose: requests by response class, and the latency histogram's count and bucket. */
function seriesOf(world: ServiceWorld, id: SeriesIdentity): BenchSeries[] {
  const cached = seriesCache.get(world);
  if (cached) return cached;
  const out: BenchSeries[] = [];
  world.pods.forEach((pod, i) => {
    const target = {
      instance: `10.0.${pod.version === "canary" ? 2 : 1}.${i}:15020`,
      job: "kubernetes-pods",
    };
    // Prometheus' own series per target: 1 for a scrape that worked, 0 for one that failed.
    out.push({
      labels: { __name__: "up", ...target },
      pod,
      value: (s) => (s.missed ? 0 : 1),
      exists: () => true,
      atFailedScrapes: true,
    });
    const base = {
      reporter: id.reporter,
      destination_service_name: id.service,
      destination_service_namespace: id.namespace,
      destination_version: id.versionLabel[pod.version],
      pod: pod.name,
      ...target,
    };
    for (const [code, count, slow] of [
      ["200", (s: PodScrape) => s.ok, (s: PodScrape) => s.slowOk],
      ["503", (s: PodScrape) => s.errors, (s: PodScrape) => s.slowErrors],
    ] as const) {
      const exists = (s: PodScrape) => count(s) > 0;
      if (world.scenario.customCounter) out.push(...orderSeries(pod, base, code === "503", count, slow));
      const labels = { ...base, response_code: code };
      out.push({ labels: { __name__: "istio_requests_total", ...labels }, pod, value: count, exists });
      if (id.latencyBucketMs !== undefined) {
        out.push({
          labels: { __name__: "istio_request_duration_milliseconds_count", ...labels },
          pod,
          value: count,
          exists,
        });
        out.push({
          labels: {
            __name__: "istio_request_duration_milliseconds_bucket",
            ...labels,
            le: String(id.latencyBucketMs),
          },
          pod,
          value: (s) => count(s) - slow(s),
          exists,
        });
      }
    }
  });
  seriesCache.set(world, out);
  return out;
}

/**
 * The application's own counter of orders (issue 23's custom checks), one order per request: the
 * slow ones failed. One series per pod, response class and status, as the app's /metrics would
 * expose it with the pod's `version` label.
 */
function orderSeries(
  pod: Pod,
  base: Record<string, string>,
  errorClass: boolean,
  count: (s: PodScrape) => number,
  slow: (s: PodScrape) => number,
): BenchSeries[] {
  const labels = {
    version: base.destination_version as string,
    pod: pod.name,
    instance: base.instance as string,
    job: "kubernetes-pods",
    class: errorClass ? "5xx" : "ok",
  };
  const failed = (s: PodScrape) => slow(s);
  const ok = (s: PodScrape) => count(s) - slow(s);
  return [
    {
      labels: { __name__: "business_orders_total", ...labels, status: "ok" },
      pod,
      value: ok,
      exists: (s) => ok(s) > 0,
    },
    {
      labels: { __name__: "business_orders_total", ...labels, status: "failed" },
      pod,
      value: failed,
      exists: (s) => failed(s) > 0,
    },
  ];
}

const fmt = (ms: number) => ms / 1000;

/** Answers one PromQL selector at `at` (ms) as Prometheus' /api/v1/query would. */
export function answer(world: ServiceWorld, id: SeriesIdentity, query: string, at: number): unknown {
  const parsed = parseSelector(query);
  if (!parsed)
    return { status: "error", errorType: "bad_data", error: `the bench answers selectors only: ${query}` };
  world.advanceTo(at);
  const selected = seriesOf(world, id).filter((s) => matches(s.labels, parsed.matchers));
  // Prometheus keeps __name__ for selectors without functions.
  const metric = (labels: Record<string, string>) => labels;
  if (parsed.rangeMs !== undefined) {
    const result = [];
    for (const s of selected) {
      const values = world
        .scrapesIn(s.pod, at - parsed.rangeMs + 1, at)
        .filter((x) => (s.atFailedScrapes || !x.missed) && s.exists(x))
        .map((x) => [fmt(x.at), String(s.value(x))]);
      if (values.length > 0) result.push({ metric: metric(s.labels), values });
    }
    return { status: "success", data: { resultType: "matrix", result } };
  }
  const result = [];
  for (const s of selected) {
    const latest = world.scrapesIn(s.pod, at - LOOKBACK_MS, at).at(-1);
    if (!latest || (latest.missed && !s.atFailedScrapes) || !s.exists(latest)) continue;
    result.push({ metric: metric(s.labels), value: [fmt(at), String(s.value(latest))] });
  }
  return { status: "success", data: { resultType: "vector", result } };
}

const NO_HEADERS = { get: () => null };

/** A `fetch` for PrometheusClient that answers from the world, with no socket. */
export function benchFetch(world: ServiceWorld, id: SeriesIdentity): typeof fetch {
  return (async (_url: unknown, init?: { body?: unknown }) => {
    const form = new URLSearchParams(String(init?.body ?? ""));
    const time = Number(form.get("time"));
    const body = answer(world, id, form.get("query") ?? "", Math.round(time * 1000));
    const ok = (body as { status: string }).status === "success";
    const text = JSON.stringify(body);
    return {
      ok,
      status: ok ? 200 : 400,
      statusText: ok ? "OK" : "Bad Request",
      headers: NO_HEADERS,
      text: async () => text,
    };
  }) as unknown as typeof fetch;
}
