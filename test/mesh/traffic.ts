/**
 * An Istio traffic simulator: requests at a given rate, routed as Istio would route them (read live
 * from the Kubernetes API emulator on every tick; see istio-routing.ts): by default across the
 * destinations of one http route of one VirtualService by their weights, or, with `traffic`, a mix
 * of requests from sidecars (`mesh`) and gateways with hosts, uris and headers that follow any
 * VirtualService's matches, weights and mirrors; answered by each version with its own error rate
 * and latency distribution, and
 * exposed on `/metrics` in Prometheus text format with the shapes Istio's destination reporter
 * gives: `istio_requests_total` and `istio_request_duration_milliseconds_{bucket,sum,count}` with
 * Istio's default buckets and labels. As in Envoy, a series appears at its first request.
 *
 * A destination whose subset is missing from the DestinationRule gets no request through (Istio's
 * 503 "no healthy upstream"/NC on the client side) and is never reported by a destination proxy; a
 * version whose pods have no `istio-proxy` sidecar serves requests but reports nothing, unless it runs
 * in ambient mode behind a programmed waypoint, which reports it with `reporter="waypoint"`
 * (ambient.ts). Both are counted in the exact totals, so tests can see what Prometheus cannot.
 */
import { createServer, type Server } from "node:http";
import { ISTIO_LATENCY_BUCKETS_MS } from "../../src/constants.ts";
import { seededRandom } from "../support/random.ts";
import { waypointServing } from "./ambient.ts";
import {
  type Destination,
  type MeshObjects,
  type MeshRequest,
  type RoutingDecision,
  routeRequest,
  type Serving,
  servingVersion,
  weightedIndex,
} from "./istio-routing.ts";
import type { KubeApiEmulator } from "./kube-api.ts";

/** One kind of request in the traffic mix, and its share of all requests. */
export type TrafficFlow = MeshRequest & { share: number };

export interface VersionBehaviour {
  /** Fraction of requests answered 503. */
  errorRate: number;
  /** Fraction of requests that get no response at all (response_code "0", flags "DC"). */
  noResponseRate?: number;
  /** Median latency in ms; latencies are log-normal around it. */
  latencyMedianMs: number;
  /** Log-normal shape (sigma of the log); 0.5 by default. */
  latencySigma?: number;
  /**
   * The application's own business counter (issue 23's custom checks): with this set, every request
   * the version serves is an order, counted in `business_orders_total{app, version, pod, status}`
   * (status `failed` at this rate, else `ok`), as the app's /metrics would expose it.
   */
  orderFailureRate?: number;
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
  /**
   * The traffic mix, routed through every VirtualService as Istio would. Unset: every request
   * follows the first (or `route`) http route of `virtualService`, whatever its match.
   */
  traffic?: TrafficFlow[];
  /** Istio's root namespace (meshConfig.rootNamespace) for DestinationRule lookup. */
  rootNamespace?: string;
  /** The `reporter` label of a waypoint's series: `waypoint` (default), or `destination` as early ambient releases wrote it. */
  waypointReporter?: string;
}

/** What one flow's requests reached: counts by version label (or `unroutable`/`no route`). */
export interface FlowCounts {
  served: Record<string, number>;
  mirrored: Record<string, number>;
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
  /** business_orders_total by its labels. */
  private readonly orders = new Map<string, { labels: Record<string, string>; count: number }>();
  private totalsNow = new Map<string, Totals>();
  private totalsScraped = new Map<string, Totals>();
  private server?: Server;
  private timer?: NodeJS.Timeout;
  private lastTick = 0;
  private carry = 0;
  private running = false;
  /** Requests by destination key (subset or host) for observed-split checks. */
  readonly routed = new Map<string, number>();
  /** By flow index (0 without `traffic`): what its requests (and their mirrored copies) reached. */
  readonly flows = new Map<number, FlowCounts>();
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

  /** Replaces the traffic mix (undefined: back to following the one VirtualService's route). */
  setTraffic(traffic: TrafficFlow[] | undefined): void {
    this.options.traffic = traffic;
  }

  /**
   * Where `n` requests of a flow would go now, without sending them (no metrics, no totals): the
   * routing as it stands, for checks such as "both the gateway's and the mesh's callers reach v2".
   */
  probe(flow: MeshRequest, n: number): FlowCounts {
    const objects = this.objects();
    const random = seededRandom(n);
    const counts: FlowCounts = { served: {}, mirrored: {} };
    for (let i = 0; i < n; i++) {
      const decision = routeRequest(objects, flow, random);
      const bump = (into: Record<string, number>, d: Destination | undefined) => {
        const key = d ? this.resolve(objects, d, decision.namespace, random).version : "no route";
        into[key] = (into[key] ?? 0) + 1;
      };
      bump(counts.served, decision.destination);
      for (const m of decision.mirrors) bump(counts.mirrored, m);
    }
    return counts;
  }

  /**
   * Sends `n` requests of one kind now, as a workflow's test step would (curl with a header):
   * routed as Istio routes them, served and counted in the metrics like any other request. What
   * they reached, by version.
   */
  request(flow: MeshRequest, n: number): FlowCounts {
    const objects = this.objects();
    const counts: FlowCounts = { served: {}, mirrored: {} };
    for (let i = 0; i < n; i++) {
      const decision = routeRequest(objects, flow, this.random);
      if (!decision.destination) counts.served["no route"] = (counts.served["no route"] ?? 0) + 1;
      else {
        for (const m of decision.mirrors)
          this.serveOne(objects, m, decision.namespace, flow, counts.mirrored, true);
        this.serveOne(objects, decision.destination, decision.namespace, flow, counts.served, true);
      }
    }
    return counts;
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
    const objects = this.objects();
    const flows = this.options.traffic;
    if (!flows) {
      const destinations = this.legacyDestinations(objects);
      const total = destinations.reduce((s, d) => s + d.weight, 0);
      for (let i = 0; i < n && total > 0; i++) {
        const chosen = destinations[
          weightedIndex(
            destinations.map((d) => d.weight),
            this.random(),
          )
        ] as (typeof destinations)[number];
        const decision: RoutingDecision = { namespace: this.options.namespace, mirrors: [] };
        this.serve(
          objects,
          { ...decision, destination: chosen },
          { source: "mesh", host: chosen.host },
          0,
          false,
        );
      }
      return;
    }
    const totalShare = flows.reduce((s, f) => s + f.share, 0);
    for (let i = 0; i < n && totalShare > 0; i++) {
      const index = weightedIndex(
        flows.map((f) => f.share),
        this.random(),
      );
      const flow = flows[index] as TrafficFlow;
      this.serve(objects, routeRequest(objects, flow, this.random), flow, index, true);
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

  /** What routing reads, as the emulator holds it now. */
  private objects(): MeshObjects {
    const { kube } = this.options;
    return {
      virtualServices: kube.list("virtualservices"),
      destinationRules: kube.list("destinationrules"),
      services: kube.list("services"),
      serviceEntries: kube.list("serviceentries"),
      pods: kube.list("pods"),
      rootNamespace: this.options.rootNamespace ?? "istio-system",
      httpRoutes: kube.list("httproutes"),
      gateways: kube.list("gateways"),
    };
  }

  /** Without a traffic mix: the destinations of the followed route of the one VirtualService. */
  private legacyDestinations(objects: MeshObjects): Array<Destination & { weight: number }> {
    const { namespace, virtualService, route } = this.options;
    const vs = objects.virtualServices.find(
      (v) => v.metadata.name === virtualService && v.metadata.namespace === namespace,
    );
    const routes = ((vs?.spec as { http?: unknown[] })?.http ?? []) as Array<{
      name?: string;
      route?: Array<{ destination: Destination; weight?: number }>;
    }>;
    const followed = route ? routes.find((r) => r.name === route) : routes[0];
    const list = followed?.route ?? [];
    return list.map((d) => ({
      ...d.destination,
      weight: list.length === 1 ? (d.weight ?? 100) : (d.weight ?? 0),
    }));
  }

  /** Who serves a request to `d` (see servingVersion), with `hostVersions` for hosts without pods. */
  private resolve(objects: MeshObjects, d: Destination, namespace: string, random: () => number): Serving {
    return servingVersion(objects, d, namespace, random, {
      hostVersion: d.subset ? undefined : this.options.hostVersions?.[d.host],
      serviceRequired: this.options.traffic !== undefined,
    });
  }

  private serve(
    objects: MeshObjects,
    decision: RoutingDecision,
    request: MeshRequest,
    flowIndex: number,
    countTcp: boolean,
  ): void {
    const counts = this.flows.get(flowIndex) ?? { served: {}, mirrored: {} };
    this.flows.set(flowIndex, counts);
    if (!decision.destination) {
      counts.served["no route"] = (counts.served["no route"] ?? 0) + 1;
      return;
    }
    for (const m of decision.mirrors)
      this.serveOne(objects, m, decision.namespace, request, counts.mirrored, countTcp);
    this.serveOne(objects, decision.destination, decision.namespace, request, counts.served, countTcp);
  }

  private serveOne(
    objects: MeshObjects,
    d: Destination,
    namespace: string,
    request: MeshRequest,
    counts: Record<string, number>,
    countTcp: boolean,
  ): void {
    const routedKey = d.subset ?? d.host;
    this.routed.set(routedKey, (this.routed.get(routedKey) ?? 0) + 1);
    const { version, labels, sidecar, ambient, service, workload } = this.resolve(
      objects,
      d,
      namespace,
      this.random,
    );
    counts[version] = (counts[version] ?? 0) + 1;
    // tcp and tls connections are reported as istio_tcp_* metrics, not istio_requests_total.
    if (countTcp && (request.protocol ?? "http") !== "http") return;
    const totals = this.totalsNow.get(version) ?? emptyTotals();
    this.totalsNow.set(version, totals);
    totals.requests += 1;
    if (!labels || !service) {
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
    if (behaviour.orderFailureRate !== undefined)
      this.countOrder(version, labels, behaviour.orderFailureRate);
    for (const b of ISTIO_LATENCY_BUCKETS_MS)
      if (latency > b) totals.slowerThan[String(b)] = (totals.slowerThan[String(b)] ?? 0) + 1;
    // Ambient: ztunnel reports no L7 metrics; a waypoint does, when the Service uses one.
    const waypoint = !sidecar && ambient === true && waypointServing(this.options.kube, service);
    if (!sidecar && !waypoint) {
      totals.unreported += 1;
      return;
    }
    const ns = service.namespace;
    const fromGateway = request.source !== "mesh";
    const sourceWorkload = fromGateway ? "istio-ingressgateway" : (this.options.sourceWorkload ?? "frontend");
    const seriesLabels: Record<string, string> = {
      reporter: waypoint ? (this.options.waypointReporter ?? "waypoint") : "destination",
      source_workload: sourceWorkload,
      // Gateways' pods run in istio-system, wherever their Gateway object is.
      source_workload_namespace: fromGateway
        ? "istio-system"
        : (request.clientNamespace ?? this.options.namespace),
      source_canonical_service: sourceWorkload,
      destination_service: service.name.includes(".")
        ? service.name
        : `${service.name}.${ns}.svc.cluster.local`,
      destination_service_name: service.name,
      destination_service_namespace: ns,
      destination_workload: workload ?? service.name,
      destination_workload_namespace: ns,
      // A waypoint's endpoint metadata has no app version (istio/proxy istio_stats).
      destination_version: waypoint ? "unknown" : (labels.version ?? "unknown"),
      destination_canonical_service: labels.app ?? service.name,
      destination_canonical_revision:
        labels["service.istio.io/canonical-revision"] ?? labels.version ?? "latest",
      destination_app: labels.app ?? service.name,
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

  /** One order served by `version`: the app's counter, labelled as Kubernetes service discovery labels a pod's target. */
  private countOrder(version: string, labels: Record<string, string>, failureRate: number): void {
    const pods = this.pods.get(labels.version ?? "") ?? [];
    const orderLabels: Record<string, string> = {
      app: labels.app ?? "app",
      version,
      ...(pods.length > 0 ? { pod: pods[Math.floor(this.random() * pods.length)] as string } : {}),
      status: this.random() < failureRate ? "failed" : "ok",
    };
    const key = JSON.stringify(orderLabels);
    const counter = this.orders.get(key) ?? { labels: orderLabels, count: 0 };
    this.orders.set(key, counter);
    counter.count += 1;
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
    const orders = [...this.orders.values()].map((o) => `business_orders_total${fmt(o.labels)} ${o.count}`);
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
    if (orders.length > 0) {
      lines.push("# TYPE business_orders_total counter", ...orders);
      // A gauge beside it (orders being processed), which a counter check must refuse.
      const versions = new Set([...this.orders.values()].map((o) => o.labels.version as string));
      lines.push(
        "# TYPE business_orders_in_flight gauge",
        ...[...versions].map(
          (version) => `business_orders_in_flight${fmt({ version })} ${Math.floor(this.random() * 5)}`,
        ),
      );
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
