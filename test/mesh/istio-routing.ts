/**
 * How Istio routes one request, as pure functions over the cluster's objects (no I/O), for the
 * traffic simulator: which VirtualService applies (its `hosts` match the request's host and its
 * `gateways` include the request's source; no `gateways` means `mesh` only), which route of it
 * (the first whose `match` matches: uri/headers/withoutHeaders/method exact, prefix or regex, `gateways`, `port`,
 * `sniHosts`; a route without `match` matches everything), which destination (by weight), what is
 * mirrored (`mirror` with `mirrorPercentage`, or `mirrors`), and which pods serve a destination
 * (the DestinationRule subset's labels on the host's Service selector, or a ServiceEntry's
 * `workloadSelector`). A host without a VirtualService goes to its Service's pods, as Istio's
 * default route does. A route that `delegate`s continues in the delegate VirtualService's routes.
 * A Gateway API HTTPRoute attached to the request's Gateway or Service routes
 * it before any VirtualService (gateway-routing.ts).
 *
 * DestinationRule lookup follows Istio's order: the client's namespace (here the VirtualService's),
 * then the host's namespace, then the root namespace (`istio-system` by default), honouring
 * `exportTo` (absent or `*` everywhere, `.` its own namespace, else the namespaces listed).
 */
import { routeByHttpRoute } from "./gateway-routing.ts";
import type { KubeObject } from "./kube-api.ts";

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: { number?: number };
}

export interface WeightedDestination {
  destination: Destination;
  weight?: number;
}

export interface RouteMatch {
  uri?: StringMatch;
  headers?: Record<string, StringMatch>;
  /** Istio's negative header match: the route applies only to requests that do NOT match these. */
  withoutHeaders?: Record<string, StringMatch>;
  method?: StringMatch;
  gateways?: string[];
  port?: number;
  sniHosts?: string[];
  ignoreUriCase?: boolean;
}

export interface Route {
  name?: string;
  /** Istio's VirtualService delegation: the delegate holds this route's routes. */
  delegate?: { name: string; namespace?: string };
  match?: RouteMatch[];
  route?: WeightedDestination[];
  mirror?: Destination;
  mirrorPercentage?: { value?: number };
  mirrors?: Array<{ destination: Destination; percentage?: { value?: number } }>;
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: Route[];
  tcp?: Route[];
  tls?: Route[];
}

export type Protocol = "http" | "tcp" | "tls";

/** One request (or, for tcp/tls, one connection) as a client sends it. */
export interface MeshRequest {
  /** `mesh` (a sidecar) or the gateway it enters through, as `namespace/name`. */
  source: string;
  /** The host the client calls (`reviews`, `reviews.prod.svc.cluster.local`, `bookinfo.example.com`). */
  host: string;
  /** The client's namespace, for short hosts; default the VirtualService namespace of the mesh. */
  clientNamespace?: string;
  protocol?: Protocol;
  uri?: string;
  method?: string;
  headers?: Record<string, string>;
  port?: number;
}

/** The objects routing reads, as the Kubernetes API holds them. */
export interface MeshObjects {
  virtualServices: KubeObject[];
  destinationRules: KubeObject[];
  services: KubeObject[];
  serviceEntries: KubeObject[];
  pods: KubeObject[];
  rootNamespace: string;
  /** Gateway API HTTPRoutes and Gateways (gateway-routing.ts): a route attached to the entry point routes first. */
  httpRoutes?: KubeObject[];
  gateways?: KubeObject[];
}

export const CLUSTER_SUFFIX = "svc.cluster.local";

const namespaceOf = (o: KubeObject): string => o.metadata.namespace ?? "default";
const specOf = <T>(o: KubeObject): T => (o.spec ?? {}) as T;

/**
 * A host as an FQDN: `reviews` -> `reviews.<ns>.svc.cluster.local`, `reviews.prod` and
 * `reviews.prod.svc` -> `reviews.prod.svc.cluster.local` when `prod` is a namespace the objects
 * know; anything else (`bookinfo.example.com`, `*`) is kept as written.
 */
export function fqdn(host: string, namespace: string, knownNamespaces: ReadonlySet<string>): string {
  if (host.includes("*") || host.endsWith(`.${CLUSTER_SUFFIX}`)) return host;
  const parts = host.split(".");
  if (parts.length === 1) return `${host}.${namespace}.${CLUSTER_SUFFIX}`;
  if (parts.length === 3 && parts[2] === "svc") return `${host}.cluster.local`;
  if (parts.length === 2 && knownNamespaces.has(parts[1] as string)) return `${host}.${CLUSTER_SUFFIX}`;
  return host;
}

/** Whether a host pattern (`*`, `*.example.com` or a name) covers a concrete FQDN. */
export function hostCovers(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

function knownNamespaces(objects: MeshObjects): Set<string> {
  const all = [
    ...objects.virtualServices,
    ...objects.destinationRules,
    ...objects.services,
    ...objects.serviceEntries,
    ...objects.pods,
  ];
  return new Set([...all.map(namespaceOf), objects.rootNamespace]);
}

/** The gateway names a VirtualService (or a match) binds to, each as `namespace/name` or `mesh`. */
export function gatewayNames(gateways: readonly string[] | undefined, namespace: string): string[] {
  if (!gateways || gateways.length === 0) return ["mesh"];
  return gateways.map((g) => {
    if (g === "mesh" || g.includes("/")) return g;
    // `public-gateway.istio-system.svc.cluster.local` is the older spelling of istio-system/public-gateway.
    const [name, ns] = g.split(".");
    return ns ? `${ns}/${name}` : `${namespace}/${g}`;
  });
}

/** The VirtualService that applies to the request: exact host matches win over wildcards. */
export function selectVirtualService(objects: MeshObjects, request: MeshRequest): KubeObject | undefined {
  const known = knownNamespaces(objects);
  const candidates = objects.virtualServices.filter((vs) =>
    gatewayNames(specOf<VirtualServiceSpec>(vs).gateways, namespaceOf(vs)).includes(request.source),
  );
  const scored = candidates.flatMap((vs) => {
    const ns = namespaceOf(vs);
    const host = fqdn(request.host, request.clientNamespace ?? ns, known);
    const patterns = (specOf<VirtualServiceSpec>(vs).hosts ?? []).map((h) => fqdn(h, ns, known));
    if (!patterns.some((p) => hostCovers(p, host))) return [];
    return [{ vs, exact: patterns.includes(host) }];
  });
  return (scored.find((s) => s.exact) ?? scored[0])?.vs;
}

export function stringMatches(
  m: StringMatch | undefined,
  value: string | undefined,
  ignoreCase = false,
): boolean {
  if (!m) return true;
  if (value === undefined) return false;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (m.exact !== undefined) return v === (ignoreCase ? m.exact.toLowerCase() : m.exact);
  if (m.prefix !== undefined) return v.startsWith(ignoreCase ? m.prefix.toLowerCase() : m.prefix);
  if (m.regex !== undefined) return new RegExp(`^(?:${m.regex})$`).test(value);
  return true;
}

function matchApplies(m: RouteMatch, request: MeshRequest, vsNamespace: string): boolean {
  if (m.gateways && !gatewayNames(m.gateways, vsNamespace).includes(request.source)) return false;
  if (m.port !== undefined && request.port !== undefined && m.port !== request.port) return false;
  if (m.sniHosts && !m.sniHosts.some((h) => hostCovers(h, request.host))) return false;
  if (!stringMatches(m.uri, request.uri ?? "/", m.ignoreUriCase)) return false;
  if (!stringMatches(m.method, request.method ?? "GET")) return false;
  const headers = Object.fromEntries(
    Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const without = Object.entries(m.withoutHeaders ?? {}).every(
    ([name, hm]) => !stringMatches(hm, headers[name.toLowerCase()]),
  );
  return (
    without &&
    Object.entries(m.headers ?? {}).every(([name, hm]) => stringMatches(hm, headers[name.toLowerCase()]))
  );
}

/** The first route of the request's protocol whose match list matches (a route without match matches all). */
export function selectRoute(
  spec: VirtualServiceSpec,
  request: MeshRequest,
  vsNamespace: string,
): { index: number; route: Route } | undefined {
  const routes = spec[request.protocol ?? "http"] ?? [];
  const index = routes.findIndex(
    (r) => !r.match || r.match.length === 0 || r.match.some((m) => matchApplies(m, request, vsNamespace)),
  );
  return index < 0 ? undefined : { index, route: routes[index] as Route };
}

/**
 * A destination by weight, `u` uniform in [0, 1). A lone destination gets 100 unless it says
 * otherwise; in a list, a missing weight is 0.
 */
export function pickDestination(route: Route, u: number): Destination | undefined {
  const list = route.route ?? [];
  const weights = list.map((d) => (list.length === 1 ? (d.weight ?? 100) : (d.weight ?? 0)));
  const index = weightedIndex(weights, u);
  return index < 0 ? undefined : list[index]?.destination;
}

/**
 * The index `u` (uniform in [0, 1)) falls on when each entry owns a slice as wide as its weight; the
 * last entry when rounding leaves `u` past the end; -1 when no weight is positive.
 */
export function weightedIndex(weights: readonly number[], u: number): number {
  const total = weights.reduce((s, w) => s + w, 0);
  if (total <= 0) return -1;
  let pick = u * total;
  for (let i = 0; i < weights.length; i++) {
    pick -= weights[i] as number;
    if (pick < 0) return i;
  }
  return weights.length - 1;
}

/** What the route mirrors, with the fraction of requests each mirror gets (Istio's default 100 %). */
export function mirrorsOf(route: Route): Array<{ destination: Destination; fraction: number }> {
  const out: Array<{ destination: Destination; fraction: number }> = [];
  if (route.mirror)
    out.push({ destination: route.mirror, fraction: (route.mirrorPercentage?.value ?? 100) / 100 });
  for (const m of route.mirrors ?? [])
    out.push({ destination: m.destination, fraction: (m.percentage?.value ?? 100) / 100 });
  return out;
}

function exportedTo(o: KubeObject, clientNamespace: string): boolean {
  const exportTo = (o.spec as { exportTo?: string[] } | undefined)?.exportTo;
  if (!exportTo || exportTo.length === 0 || exportTo.includes("*")) return true;
  return exportTo.some((e) => (e === "." ? namespaceOf(o) === clientNamespace : e === clientNamespace));
}

/** The DestinationRule Istio applies to a host for a client in `clientNamespace`. */
export function findDestinationRule(
  objects: MeshObjects,
  hostFqdn: string,
  clientNamespace: string,
  hostNamespace: string | undefined,
): KubeObject | undefined {
  const known = knownNamespaces(objects);
  const order = [...new Set([clientNamespace, hostNamespace, objects.rootNamespace])].filter(
    (n): n is string => n !== undefined,
  );
  for (const ns of order) {
    const matching = objects.destinationRules.filter(
      (r) =>
        namespaceOf(r) === ns &&
        exportedTo(r, clientNamespace) &&
        hostCovers(fqdn(specOf<{ host?: string }>(r).host ?? "", ns, known), hostFqdn),
    );
    const exact = matching.find((r) => fqdn(specOf<{ host?: string }>(r).host ?? "", ns, known) === hostFqdn);
    if (exact ?? matching[0]) return exact ?? matching[0];
  }
  return undefined;
}

/** Where a destination's requests land: the service as Istio's metrics label it, and its pods. */
export interface ResolvedDestination {
  serviceName: string;
  serviceNamespace: string;
  /** Labels selecting the destination's pods (Service selector or workloadSelector, plus the subset's). */
  selector: Record<string, string>;
  /** The subset's own labels ({} without a subset). */
  subsetLabels: Record<string, string>;
  pods: KubeObject[];
}

const selects = (selector: Record<string, string>, pod: KubeObject): boolean =>
  Object.entries(selector).every(([k, v]) => pod.metadata.labels?.[k] === v);

/**
 * The pods a destination reaches, or a reason it gets Istio's 503 (no Service or ServiceEntry for
 * the host, or a subset no visible DestinationRule defines).
 */
export function resolveDestination(
  objects: MeshObjects,
  destination: Destination,
  clientNamespace: string,
  /** false: a subset destination of a host without a Service object still reaches the subset's pods. */
  serviceRequired = true,
): ResolvedDestination | { unroutable: string } {
  const known = knownNamespaces(objects);
  const host = fqdn(destination.host, clientNamespace, known);
  let serviceName: string;
  let serviceNamespace: string;
  let base: Record<string, string>;
  if (host.endsWith(`.${CLUSTER_SUFFIX}`)) {
    const [name, ns] = host.split(".") as [string, string];
    const service = objects.services.find((s) => s.metadata.name === name && namespaceOf(s) === ns);
    if (!service && (serviceRequired || !destination.subset))
      return { unroutable: `no Service ${ns}/${name}` };
    serviceName = name;
    serviceNamespace = ns;
    base = service ? (specOf<{ selector?: Record<string, string> }>(service).selector ?? {}) : {};
  } else {
    // A ServiceEntry host: Istio's metrics name the service by the host (destination_service_name
    // "httpbin.org" in istio/istio#15188), in the entry's namespace (istio/istio#10174 reported the
    // old fixed "default"; the entry's namespace is assumed here).
    const entry = objects.serviceEntries.find(
      (e) =>
        exportedTo(e, clientNamespace) &&
        (specOf<{ hosts?: string[] }>(e).hosts ?? []).some((h) => hostCovers(h, host)),
    );
    if (!entry) return { unroutable: `no ServiceEntry for ${host}` };
    serviceName = host;
    serviceNamespace = namespaceOf(entry);
    base =
      specOf<{ workloadSelector?: { labels?: Record<string, string> } }>(entry).workloadSelector?.labels ??
      {};
    if (Object.keys(base).length === 0) return { unroutable: `ServiceEntry ${host} selects no workloads` };
  }
  let subsetLabels: Record<string, string> = {};
  if (destination.subset) {
    const hostNamespace = host.endsWith(`.${CLUSTER_SUFFIX}`) ? serviceNamespace : undefined;
    const rule = findDestinationRule(objects, host, clientNamespace, hostNamespace);
    const subset = specOf<{ subsets?: Array<{ name: string; labels?: Record<string, string> }> }>(
      rule ?? ({ metadata: { name: "" } } as KubeObject),
    ).subsets?.find((s) => s.name === destination.subset);
    if (!subset) return { unroutable: `no subset ${destination.subset} for ${host}` };
    subsetLabels = subset.labels ?? {};
  }
  const selector = { ...base, ...subsetLabels };
  const pods = objects.pods.filter((p) => namespaceOf(p) === serviceNamespace && selects(selector, p));
  return { serviceName, serviceNamespace, selector, subsetLabels, pods };
}

/** Who serves a request: the version label (or `unroutable:<subset or host>`), and what metrics need. */
export interface Serving {
  version: string;
  labels?: Record<string, string>;
  sidecar: boolean;
  /** No sidecar, captured by ztunnel (istio-cni's mark or the pod's label): reported only through a waypoint. */
  ambient?: boolean;
  service?: { name: string; namespace: string };
  workload?: string;
}

/**
 * The pod that serves a request to `d`, picked at random among the destination's pods: its
 * `version` label (else its canonical revision), labels and sidecar. Without modelled pods, the
 * subset's `version` label (or `hostVersion` for a host). Unresolvable: Istio's 503, unreported.
 */
export function servingVersion(
  objects: MeshObjects,
  d: Destination,
  namespace: string,
  random: () => number,
  options: { hostVersion?: string; serviceRequired: boolean },
): Serving {
  const { hostVersion } = options;
  const resolved = resolveDestination(objects, d, namespace, options.serviceRequired);
  if ("unroutable" in resolved) {
    if (!hostVersion) return { version: `unroutable:${d.subset ?? d.host}`, sidecar: false };
    const service = { name: d.host.split(".")[0] as string, namespace };
    return { version: hostVersion, labels: { version: hostVersion }, sidecar: true, service };
  }
  const service = { name: resolved.serviceName, namespace: resolved.serviceNamespace };
  // One pod needs no draw, so the single-route streams of random numbers stay as they were.
  const pods = resolved.pods;
  const pod = pods.length === 1 ? pods[0] : pods[Math.floor(random() * pods.length)];
  if (!pod) {
    const version = hostVersion ?? resolved.subsetLabels.version ?? d.subset ?? resolved.selector.version;
    if (!version) return { version: `unroutable:${d.subset ?? d.host}`, sidecar: false };
    const workload = d.subset ? `${service.name}-${version}` : service.name;
    return { version, labels: { ...resolved.selector, version }, sidecar: true, service, workload };
  }
  const labels = pod.metadata.labels ?? {};
  const version = labels.version ?? labels["service.istio.io/canonical-revision"] ?? hostVersion ?? "unknown";
  const sidecar = ((pod.spec as { containers?: Array<{ name: string }> })?.containers ?? []).some(
    (c) => c.name === "istio-proxy",
  );
  // The pod's Deployment: its name without the ReplicaSet hash and the pod suffix.
  const workload = pod.metadata.name.split("-").slice(0, -2).join("-") || service.name;
  const ambient =
    !sidecar &&
    labels["istio.io/dataplane-mode"] !== "none" &&
    (labels["istio.io/dataplane-mode"] === "ambient" ||
      pod.metadata.annotations?.["ambient.istio.io/redirection"] === "enabled");
  return { version, labels: { ...labels, version }, sidecar, ambient, service, workload };
}

/** What one request does: the VirtualService and route it took, where it went, what it mirrored. */
export interface RoutingDecision {
  virtualService?: string;
  routeIndex?: number;
  destination?: Destination;
  mirrors: Destination[];
  /** The namespace destinations resolve from (the VirtualService's, or the client's). */
  namespace: string;
}

/**
 * Routes one request. `random` draws the weighted destination and each mirror's percentage. A
 * request no VirtualService claims goes to its host's Service (Istio's default route), and one
 * whose VirtualService has no matching route gets no destination (Istio's 404 NR).
 */
export function routeRequest(
  objects: MeshObjects,
  request: MeshRequest,
  random: () => number,
): RoutingDecision {
  const byRoute =
    (request.protocol ?? "http") === "http"
      ? routeByHttpRoute(objects.httpRoutes ?? [], objects.gateways ?? [], request, random)
      : undefined;
  if (byRoute) {
    const { route, ruleIndex, host, namespace } = byRoute;
    return {
      virtualService: `HTTPRoute ${route}`,
      routeIndex: ruleIndex,
      namespace,
      mirrors: [],
      ...(host ? { destination: { host } } : {}),
    };
  }
  const vs = selectVirtualService(objects, request);
  if (!vs) {
    const namespace = request.clientNamespace ?? "default";
    return { namespace, destination: { host: request.host }, mirrors: [] };
  }
  let namespace = namespaceOf(vs);
  let picked = selectRoute(specOf<VirtualServiceSpec>(vs), request, namespace);
  let base = { virtualService: `${namespace}/${vs.metadata.name}`, namespace };
  // Delegation: the root's route hands the request to the delegate (no hosts of its own), whose
  // routes Istio merges under the root's match; its destinations resolve in its own namespace.
  const delegate = picked?.route.delegate;
  if (delegate) {
    namespace = delegate.namespace || namespace;
    const target = objects.virtualServices.find(
      (o) => o.metadata.name === delegate.name && namespaceOf(o) === namespace,
    );
    picked = target ? selectRoute(specOf<VirtualServiceSpec>(target), request, namespace) : undefined;
    base = { virtualService: `${namespace}/${delegate.name}`, namespace };
  }
  if (!picked) return { ...base, mirrors: [] };
  const destination = pickDestination(picked.route, random());
  const mirrors = mirrorsOf(picked.route)
    .filter((m) => random() < m.fraction)
    .map((m) => m.destination);
  return { ...base, routeIndex: picked.index, destination, mirrors };
}
