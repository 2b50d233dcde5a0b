/**
 * How Istio routes a request by a Gateway API HTTPRoute, for the traffic simulator (pure, over the
 * cluster's objects): a request entering through a Gateway (`source` `namespace/name`) is routed by
 * the HTTPRoutes whose parentRefs name that Gateway (and whose hostnames cover the request's host,
 * or that have none), when the Gateway's class is istiod's; a request inside the mesh (`source`
 * `mesh`) to a Service is routed by the HTTPRoutes whose parentRefs name that Service (GAMMA:
 * group "", kind Service). The first rule whose matches match (path Exact / PathPrefix /
 * RegularExpression, headers, method; the CRD defaults a rule without matches to path prefix "/")
 * picks a backendRef by its proportional weight (default 1; all 0: no backend, Istio's 500).
 */
import type { KubeObject } from "./kube-api.ts";

interface PathMatch {
  type?: string;
  value?: string;
}
interface HeaderMatch {
  type?: string;
  name: string;
  value: string;
}
interface HttpMatch {
  path?: PathMatch;
  headers?: HeaderMatch[];
  method?: string;
}
interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  weight?: number;
}
interface ParentRef {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
}
interface Rule {
  name?: string;
  matches?: HttpMatch[];
  backendRefs?: BackendRef[];
}
interface HttpRouteSpec {
  parentRefs?: ParentRef[];
  hostnames?: string[];
  rules?: Rule[];
}

export interface GatewayRequest {
  source: string;
  host: string;
  clientNamespace?: string;
  uri?: string;
  method?: string;
  headers?: Record<string, string>;
}

export interface GatewayDecision {
  /** `namespace/name` of the HTTPRoute that routed the request. */
  route: string;
  ruleIndex?: number;
  /** The backend Service as a host: `reviews-v2.shop.svc.cluster.local`. */
  host?: string;
  namespace: string;
}

const namespaceOf = (o: KubeObject): string => o.metadata.namespace ?? "default";
const ISTIO_CLASSES = ["istio", "istio-waypoint"];

/** `reviews`, `reviews.shop`, `reviews.shop.svc.cluster.local` -> `reviews.shop.svc.cluster.local`. */
function serviceFqdn(host: string, namespace: string): string {
  const parts = host.split(".");
  if (parts.length === 1) return `${host}.${namespace}.svc.cluster.local`;
  if (parts.length === 2) return `${host}.svc.cluster.local`;
  if (parts.length === 3 && parts[2] === "svc") return `${host}.cluster.local`;
  return host;
}

function hostnameCovers(pattern: string, host: string): boolean {
  return pattern.startsWith("*.") ? host.endsWith(pattern.slice(1)) : pattern === host;
}

/** Whether a parentRef attaches the route to the request's entry point. */
function attaches(
  ref: ParentRef,
  route: KubeObject,
  request: GatewayRequest,
  gateways: readonly KubeObject[],
): boolean {
  const ns = ref.namespace ?? namespaceOf(route);
  const kind = ref.kind ?? "Gateway";
  if (request.source === "mesh") {
    if (kind !== "Service" || (ref.group ?? "") !== "") return false;
    const client = request.clientNamespace ?? namespaceOf(route);
    return serviceFqdn(request.host, client) === `${ref.name}.${ns}.svc.cluster.local`;
  }
  if (kind !== "Gateway" || `${ns}/${ref.name}` !== request.source) return false;
  const gateway = gateways.find((g) => g.metadata.name === ref.name && namespaceOf(g) === ns);
  const className = (gateway?.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName ?? "";
  if (!ISTIO_CLASSES.includes(className)) return false;
  const hostnames = (route.spec as HttpRouteSpec).hostnames ?? [];
  return hostnames.length === 0 || hostnames.some((h) => hostnameCovers(h, request.host));
}

function matchApplies(m: HttpMatch, request: GatewayRequest): boolean {
  const path = request.uri ?? "/";
  const p = m.path ?? { type: "PathPrefix", value: "/" };
  const value = p.value ?? "/";
  const type = p.type ?? "PathPrefix";
  if (type === "Exact" && path !== value) return false;
  if (
    type === "PathPrefix" &&
    !(value === "/" || path === value || path.startsWith(`${value.replace(/\/$/, "")}/`))
  )
    return false;
  if (type === "RegularExpression" && !new RegExp(`^(?:${value})$`).test(path)) return false;
  if (m.method && (request.method ?? "GET") !== m.method) return false;
  const headers = Object.fromEntries(
    Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  );
  return (m.headers ?? []).every((h) => {
    const got = headers[h.name.toLowerCase()];
    if (got === undefined) return false;
    return (h.type ?? "Exact") === "RegularExpression"
      ? new RegExp(`^(?:${h.value})$`).test(got)
      : got === h.value;
  });
}

/** A backendRef by proportional weight, `u` uniform in [0, 1); undefined when every weight is 0. */
export function pickBackend(refs: readonly BackendRef[], u: number): BackendRef | undefined {
  const weights = refs.map((r) => r.weight ?? 1);
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= 0) return undefined;
  let x = u * total;
  for (const [i, w] of weights.entries()) {
    if (x < w) return refs[i];
    x -= w;
  }
  return refs.findLast((_, i) => (weights[i] ?? 0) > 0);
}

/** The HTTPRoute decision for a request, or undefined when no HTTPRoute is attached to its entry point. */
export function routeByHttpRoute(
  httpRoutes: readonly KubeObject[],
  gateways: readonly KubeObject[],
  request: GatewayRequest,
  random: () => number,
): GatewayDecision | undefined {
  const attached = httpRoutes.filter((r) =>
    ((r.spec as HttpRouteSpec).parentRefs ?? []).some((ref) => attaches(ref, r, request, gateways)),
  );
  for (const route of attached) {
    const namespace = namespaceOf(route);
    const rules = (route.spec as HttpRouteSpec).rules ?? [];
    const ruleIndex = rules.findIndex(
      (rule) =>
        !rule.matches || rule.matches.length === 0 || rule.matches.some((m) => matchApplies(m, request)),
    );
    if (ruleIndex < 0) continue;
    const backend = pickBackend((rules[ruleIndex] as Rule).backendRefs ?? [], random());
    const base = { route: `${namespace}/${route.metadata.name}`, ruleIndex, namespace };
    if (!backend || (backend.kind ?? "Service") !== "Service") return base;
    return { ...base, host: `${backend.name}.${backend.namespace ?? namespace}.svc.cluster.local` };
  }
  return attached.length > 0
    ? {
        route: `${namespaceOf(attached[0] as KubeObject)}/${attached[0]?.metadata.name}`,
        namespace: namespaceOf(attached[0] as KubeObject),
      }
    : undefined;
}
