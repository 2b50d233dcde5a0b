/**
 * An Istio traffic simulator: requests at a given rate, split across the current destinations of
 * one http route of a VirtualService by their weights (read live from the Kubernetes API emulator
 * on every tick), answered by each version with its own error rate and latency distribution, and
 * exposed on `/metrics` in Prometheus text format with the shapes Istio's destination reporter
 * gives: `istio_requests_total` and `istio_request_duration_milliseconds_{bucket,sum,count}` with
 * Istio's default buckets and labels. As in Envoy, a series appears at its first request.
 *
 * A destination whose subset is missing from the DestinationRule gets no request through (Istio's
 * 503 "no healthy upstream"/NC on the client side) and is never reported by a destination proxy; a
 * version whose pods have no `istio-proxy` sidecar serves requests but reports nothing. Both are
 * counted in the exact totals, so tests can see what Prometheus cannot.
 */
import { createServer, type Server } from "node:http";
import { ISTIO_LATENCY_BUCKETS_MS } from "../../src/constants.ts";
import { seededRandom } from "../support/random.ts";
import type { KubeApiEmulator, KubeObject } from "./kube-api.ts";

export interface VersionBehaviour {
  /** Fraction of requests answered 503. */
  errorRate: number;
  /** Fraction of requests that get no response at all (response_code "0", flags "DC"). */
  noResponseRate?: number;
  /** Median latency in ms; latencies are log-normal around it. */
  latencyMedianMs: number;
  /** Log-normal shape (sigma of the log); 0.5 by default. */
  latencySigma?: number;
}

export interface Totals {
  requests: number;
  errors: number;
  /** Requests slower than each Istio bucket boundary, by boundary. */
  slowerThan: Record<string, number>;
  /** Requests served but not reported (no sidecar) or never routed (missing subset). */
  unreported: number;
}

export interface TrafficSimulatorOptions {
  kube: KubeApiEmulator;
  namespace: string;
  virtualService: string;
  /** The http route to follow, by name; default the first. */
  route?: string;
  requestsPerSecond: number;
  /** Behaviour by version label (the subset's `version` label, or the host's version for host splitting). */
  versions: Record<string, VersionBehaviour>;
  /** For host splitting: host -> version label. */
  hostVersions?: Record<string, string>;
  seed?: number;
  tickMs?: number;
  sourceWorkload?: string;
}

interface Series {
  labels: Record<string, string>;
  count: number;
  sum: number;
  buckets: number[];
}

const emptyTotals = (): Totals => ({
  requests: 0,
  errors: 0,
  unreported: 0,
  slowerThan: Object.fromEntries(ISTIO_LATENCY_BUCKETS_MS.map((b) => [String(b), 0])),
});

export class TrafficSimulator {
  private readonly options: TrafficSimulatorOptions;
  private readonly random: () => number;
  private readonly series = new Map<string, Series>();
  private totalsNow = new Map<string, Totals>();
  private totalsScraped = new Map<string, Totals>();
  private server?: Server;
  private timer?: NodeJS.Timeout;
  private lastTick = 0;
  private carry = 0;
  private running = false;
  /** Requests by destination key (subset or host) for observed-split checks. */
  readonly routed = new Map<string, number>();
  scrapes = 0;
  port = 0;
  /**
   * Every scrape's exact totals by version, in order: what one Prometheus replica stored at that
   * moment, so a test can check a count against the scrapes it must lie between.
   */
  readonly scrapeLog: Array<{ atMs: number; stampMs: number; url: string; totals: Map<string, Totals> }> = [];
  /** Pods by version label: each request picks one, and its series carry a `pod` label. */
  private readonly pods = new Map<string, string[]>();
  /** Rewrites (or drops, with null) each exposition line, to model what real exporters get wrong. */
  rewriteLine?: (line: string) => string | null;
  /**
   * By scrape URL: how far behind the values each sample's timestamp is. Non-zero exposes explicit
   * timestamps (`value timestamp_ms`) that Prometheus stores as given, which models one replica's
   * clock running behind, or a slow scrape stamped when it began: its samples hold values later
   * than their timestamps say.
   */
  timestampLagMs?: (scrapeUrl: string) => number;

  constructor(options: TrafficSimulatorOptions) {
    this.options = { ...options, versions: { ...options.versions } };
    this.random = seededRandom(options.seed ?? 1);
  }

  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      if (req.url?.startsWith("/metrics")) {
        this.totalsScraped = structuredClone(this.totalsNow);
        const atMs = Date.now();
        const lag = this.timestampLagMs?.(req.url) ?? 0;
        this.scrapeLog.push({ atMs, stampMs: atMs - lag, url: req.url, totals: this.totalsScraped });
        this.scrapes += 1;
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(this.exposition(lag ? atMs - lag : undefined));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((done) => this.server?.listen(0, "127.0.0.1", done));
    const address = this.server.address();
    if (!address || typeof address === "string") throw new Error("traffic simulator: no port");
    this.port = address.port;
    this.resume();
    return this;
  }

  /** Stops sending requests (the /metrics endpoint stays up). */
  pause(): void {
    this.running = false;
    clearInterval(this.timer);
  }

  resume(): void {
    if (this.running) return;
    this.running = true;
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), this.options.tickMs ?? 50);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.pause();
    this.server?.closeAllConnections();
    await new Promise<void>((done) => (this.server ? this.server.close(() => done()) : done()));
  }

  setBehaviour(version: string, behaviour: Partial<VersionBehaviour>): void {
    const current = this.options.versions[version] ?? { errorRate: 0, latencyMedianMs: 20 };
    this.options.versions[version] = { ...current, ...behaviour };
  }

  setRate(requestsPerSecond: number): void {
    this.options.requestsPerSecond = requestsPerSecond;
  }

  /**
   * A pod restart: the version's proxy counters (one pod's, if named) start again from zero (a
   * counter reset).
   */
  resetCounters(version: string, pod?: string): void {
    for (const [key, s] of this.series)
      if (s.labels.destination_version === version && (pod === undefined || s.labels.pod === pod))
        this.series.delete(key);
  }

  /** The version's pods from now on (a scale-up adds one: its series appear at its first request). */
  setPods(version: string, pods: string[]): void {
    this.pods.set(version, [...pods]);
  }

  /** Exact totals by version label, now. */
  totals(version: string): Totals {
    return structuredClone(this.totalsNow.get(version) ?? emptyTotals());
  }

  /** Exact totals by version label as of the last scrape. */
  totalsAtLastScrape(version: string): Totals {
    return structuredClone(this.totalsScraped.get(version) ?? emptyTotals());
  }

  /** Sends `n` requests at once (for deterministic tests; the timer does the same at its rate). */
  send(n: number): void {
    const destinations = this.destinations();
    const total = destinations.reduce((s, d) => s + d.weight, 0);
    for (let i = 0; i < n && total > 0; i++) {
      let pick = this.random() * total;
      const chosen =
        destinations.find((d) => (pick -= d.weight) < 0) ??
        (destinations.at(-1) as (typeof destinations)[number]);
      this.serve(chosen);
    }
  }

  private tick(): void {
    const now = performance.now();
    const exact = ((now - this.lastTick) / 1000) * this.options.requestsPerSecond + this.carry;
    this.lastTick = now;
    const n = Math.floor(exact);
    this.carry = exact - n;
    this.send(n);
  }

  private destinations(): Array<{ key: string; host: string; subset?: string; weight: number }> {
    const { kube, namespace, virtualService, route } = this.options;
    const vs = kube.get("virtualservices", namespace, virtualService);
    const routes = ((vs?.spec as { http?: Array<{ name?: string; route?: unknown[] }> })?.http ??
      []) as Array<{
      name?: string;
      route?: Array<{ destination: { host: string; subset?: string }; weight?: number }>;
    }>;
    const followed = route ? routes.find((r) => r.name === route) : routes[0];
    const list = followed?.route ?? [];
    return list.map((d) => ({
      key: d.destination.subset ?? d.destination.host,
      host: d.destination.host,
      subset: d.destination.subset,
      weight: list.length === 1 ? (d.weight ?? 100) : (d.weight ?? 0),
    }));
  }

  /** The version label a destination's pods carry, or undefined when the subset does not exist. */
  private versionOf(d: { host: string; subset?: string }): {
    version?: string;
    labels?: Record<string, string>;
  } {
    const { kube, namespace } = this.options;
    if (!d.subset) {
      const version = this.options.hostVersions?.[d.host];
      return { version, labels: version ? { version } : undefined };
    }
    const service = d.host.split(".")[0];
    const rule = kube
      .list("destinationrules", namespace)
      .find((r) => ((r.spec as { host?: string })?.host ?? "").split(".")[0] === service);
    const subset = (
      (rule?.spec as { subsets?: Array<{ name: string; labels?: Record<string, string> }> })?.subsets ?? []
    ).find((s) => s.name === d.subset);
    if (!subset) return {};
    return { version: subset.labels?.version ?? d.subset, labels: subset.labels ?? {} };
  }

  private hasSidecar(labels: Record<string, string>): boolean {
    const pods = this.options.kube
      .list("pods", this.options.namespace)
      .filter((p: KubeObject) => Object.entries(labels).every(([k, v]) => p.metadata.labels?.[k] === v));
    if (pods.length === 0) return true; // No pods modelled: assume an injected workload.
    return pods.some((p) =>
      ((p.spec as { containers?: Array<{ name: string }> })?.containers ?? []).some(
        (c) => c.name === "istio-proxy",
      ),
    );
  }

  private serve(d: { key: string; host: string; subset?: string }): void {
    this.routed.set(d.key, (this.routed.get(d.key) ?? 0) + 1);
    const { version, labels } = this.versionOf(d);
    const totalsKey = version ?? `unroutable:${d.key}`;
    const totals = this.totalsNow.get(totalsKey) ?? emptyTotals();
    this.totalsNow.set(totalsKey, totals);
    totals.requests += 1;
    if (!version || !labels) {
      totals.errors += 1;
      totals.unreported += 1;
      return;
    }
    const behaviour = this.options.versions[version] ?? { errorRate: 0, latencyMedianMs: 20 };
    const u = this.random();
    const noResponse = u < (behaviour.noResponseRate ?? 0);
    const error = noResponse || u < (behaviour.noResponseRate ?? 0) + behaviour.errorRate;
    const latency = this.latency(behaviour);
    if (error) totals.errors += 1;
    for (const b of ISTIO_LATENCY_BUCKETS_MS)
      if (latency > b) totals.slowerThan[String(b)] = (totals.slowerThan[String(b)] ?? 0) + 1;
    if (!this.hasSidecar(labels)) {
      totals.unreported += 1;
      return;
    }
    const service = d.host.split(".")[0] as string;
    const ns = this.options.namespace;
    const workload = d.subset ? `${service}-${version}` : service;
    const seriesLabels: Record<string, string> = {
      reporter: "destination",
      source_workload: this.options.sourceWorkload ?? "frontend",
      source_workload_namespace: ns,
      source_canonical_service: this.options.sourceWorkload ?? "frontend",
      destination_service: `${service}.${ns}.svc.cluster.local`,
      destination_service_name: service,
      destination_service_namespace: ns,
      destination_workload: workload,
      destination_workload_namespace: ns,
      destination_version: labels.version ?? "unknown",
      destination_canonical_service: labels.app ?? service,
      destination_canonical_revision: labels.version ?? "latest",
      destination_app: labels.app ?? service,
      request_protocol: "http",
      response_code: noResponse ? "0" : error ? "503" : "200",
      response_flags: noResponse ? "DC" : "-",
      connection_security_policy: "mutual_tls",
      grpc_response_status: "",
    };
    const pods = this.pods.get(labels.version ?? "") ?? [];
    if (pods.length > 0) seriesLabels.pod = pods[Math.floor(this.random() * pods.length)] as string;
    const key = JSON.stringify(seriesLabels);
    const series = this.series.get(key) ?? {
      labels: seriesLabels,
      count: 0,
      sum: 0,
      buckets: ISTIO_LATENCY_BUCKETS_MS.map(() => 0),
    };
    this.series.set(key, series);
    series.count += 1;
    series.sum += latency;
    ISTIO_LATENCY_BUCKETS_MS.forEach((b, i) => {
      if (latency <= b) series.buckets[i] = (series.buckets[i] ?? 0) + 1;
    });
  }

  private latency(b: VersionBehaviour): number {
    // Box-Muller: a standard normal from two uniforms.
    const z = Math.sqrt(-2 * Math.log(1 - this.random())) * Math.cos(2 * Math.PI * this.random());
    return b.latencyMedianMs * Math.exp((b.latencySigma ?? 0.5) * z);
  }

  private exposition(timestampMs?: number): string {
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
    const fmt = (labels: Record<string, string>) =>
      `{${Object.entries(labels)
        .map(([k, v]) => `${k}="${esc(v)}"`)
        .join(",")}}`;
    const lines = [
      "# TYPE istio_requests_total counter",
      ...[...this.series.values()].map((s) => `istio_requests_total${fmt(s.labels)} ${s.count}`),
      "# TYPE istio_request_duration_milliseconds histogram",
    ];
    for (const s of this.series.values()) {
      ISTIO_LATENCY_BUCKETS_MS.forEach((b, i) => {
        lines.push(
          `istio_request_duration_milliseconds_bucket${fmt({ ...s.labels, le: String(b) })} ${s.buckets[i]}`,
        );
      });
      lines.push(`istio_request_duration_milliseconds_bucket${fmt({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`istio_request_duration_milliseconds_sum${fmt(s.labels)} ${s.sum}`);
      lines.push(`istio_request_duration_milliseconds_count${fmt(s.labels)} ${s.count}`);
    }
    const rewrite = this.rewriteLine;
    const rewritten = rewrite ? lines.map(rewrite).filter((l): l is string => l !== null) : lines;
    const exposed =
      timestampMs === undefined
        ? rewritten
        : rewritten.map((l) => (l.startsWith("#") ? l : `${l} ${timestampMs}`));
    return `${exposed.join("\n")}\n`;
  }
}
