/**
 * Istio's ambient mode: pods without sidecars, captured by the node's ztunnel (L4 only). L7 —
 * a VirtualService's (or HTTPRoute's) weights and the istio_requests_total metrics — happens in a
 * waypoint proxy, and only for Services enrolled in one. So in ambient the question preflight asks is
 * not "does the pod have its sidecar?" but "does a programmed, ready waypoint serve the Services the
 * routes split?". Independent of the route kind: it takes the namespace, the Services and the pods.
 *
 * Labels and precedence as Istio documents them (istio.io/latest/docs/reference/config/labels,
 * docs/ambient/usage/waypoint): `istio.io/dataplane-mode` on the namespace or pod (`none` opts a
 * pod out); `istio.io/use-waypoint` (and `istio.io/use-waypoint-namespace`) on the Service, else on
 * its namespace, `none` opting out; the waypoint is a Gateway of class `istio-waypoint` whose
 * `istio.io/waypoint-for` (default `service`) must take Service traffic; Istio's gateway controller
 * labels its pods `gateway.networking.k8s.io/gateway-name=<name>`.
 */
import { forbiddenAsWarning, MeshError } from "./errors.ts";
import type { MeshApi } from "./kubernetes.ts";
import type { Gateway, PodSummary } from "./types.ts";

export const DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode";
const USE_WAYPOINT_LABEL = "istio.io/use-waypoint";
const USE_WAYPOINT_NAMESPACE_LABEL = "istio.io/use-waypoint-namespace";
const WAYPOINT_FOR_LABEL = "istio.io/waypoint-for";
const WAYPOINT_CLASS = "istio-waypoint";
const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";
const INGRESS_USE_WAYPOINT_LABEL = "istio.io/ingress-use-waypoint";

/** Who carries a pod's traffic: its own sidecar, ztunnel (ambient), or nothing of Istio's. */
type Dataplane = "sidecar" | "ambient" | "none";

export interface ServiceRef {
  name: string;
  namespace: string;
}

/** The waypoint a Service uses, and which object's label says so. */
export interface WaypointRef {
  name: string;
  namespace: string;
  /** `Service shop/backend` or `namespace shop`. */
  from: string;
}

/**
 * A pod's data plane as Istio decides it: an injected sidecar wins; then the pod's own label;
 * then istio-cni's capture mark; then its namespace's label.
 */
export function podDataplane(pod: PodSummary, namespaceLabels: Readonly<Record<string, string>>): Dataplane {
  if (pod.hasSidecar) return "sidecar";
  if (pod.dataplaneLabel === "none") return "none";
  if (pod.dataplaneLabel === "ambient" || pod.ambientRedirected) return "ambient";
  return namespaceLabels[DATAPLANE_MODE_LABEL] === "ambient" ? "ambient" : "none";
}

/**
 * The waypoint a Service is enrolled in: its own `istio.io/use-waypoint`, else its namespace's
 * (the waypoint's namespace from the matching `use-waypoint-namespace`, else the Service's).
 * `optedOut` when the label says `none`; undefined when nothing enrolls it.
 */
export function waypointOf(
  service: ServiceRef,
  serviceLabels: Readonly<Record<string, string>> | undefined,
  namespaceLabels: Readonly<Record<string, string>>,
): WaypointRef | { optedOut: string } | undefined {
  const sources: Array<[string, Readonly<Record<string, string>>]> = [
    [`Service ${service.namespace}/${service.name}`, serviceLabels ?? {}],
    [`namespace ${service.namespace}`, namespaceLabels],
  ];
  for (const [from, labels] of sources) {
    const name = labels[USE_WAYPOINT_LABEL];
    if (!name) continue;
    if (name === "none") return { optedOut: from };
    return { name, namespace: labels[USE_WAYPOINT_NAMESPACE_LABEL] || service.namespace, from };
  }
  return undefined;
}

/** Why a waypoint cannot carry the split (problems), and what the action cannot vouch for (warnings). */
function judgeWaypoint(
  ref: WaypointRef,
  gateway: Gateway | undefined,
  pods: readonly PodSummary[] | undefined,
): { problems: string[]; warnings: string[] } {
  const where = `waypoint ${ref.namespace}/${ref.name}`;
  const named = `${ref.from} names ${where} (${USE_WAYPOINT_LABEL})`;
  if (!gateway)
    return {
      problems: [
        `${named}, but there is no Gateway ${ref.namespace}/${ref.name}: create it with \`istioctl waypoint apply -n ${ref.namespace} --name ${ref.name}\``,
      ],
      warnings: [],
    };
  const problems: string[] = [];
  const warnings: string[] = [];
  const className = gateway.spec?.gatewayClassName;
  if (className !== WAYPOINT_CLASS)
    warnings.push(
      `${named}, whose gatewayClassName is ${className ?? "(none)"}, not ${WAYPOINT_CLASS}: the action cannot tell whether it is a waypoint`,
    );
  const waypointFor = gateway.metadata.labels?.[WAYPOINT_FOR_LABEL] ?? "service";
  if (waypointFor !== "service" && waypointFor !== "all")
    problems.push(
      `${where} takes ${waypointFor === "none" ? "no" : waypointFor} traffic (${WAYPOINT_FOR_LABEL}=${waypointFor}), not traffic addressed to a Service, so the route's weights are not applied to it: label it ${WAYPOINT_FOR_LABEL}=service (or all)`,
    );
  const programmed = gateway.status?.conditions?.find((c) => c.type === "Programmed");
  if (programmed?.status !== "True") {
    const why = programmed
      ? `Programmed=${programmed.status}${programmed.reason ? ` (${programmed.reason}${programmed.message ? `: ${programmed.message.slice(0, 200)}` : ""})` : ""}`
      : "no Programmed condition in its status";
    problems.push(
      `${where} is not programmed (${why}): Istio has not deployed it yet; see \`kubectl describe gateway ${ref.name} -n ${ref.namespace}\``,
    );
  }
  if (pods && !pods.some((p) => p.ready))
    problems.push(
      pods.length === 0
        ? `${where} runs no pods (none labelled ${GATEWAY_NAME_LABEL}=${ref.name} in ${ref.namespace}): nothing applies the route's weights`
        : `no pod of ${where} is ready (${pods.map((p) => p.name).join(", ")}): nothing applies the route's weights`,
    );
  return { problems, warnings };
}

/** The refusal when ambient Services have no waypoint: the reason, and the fix that keeps ambient. */
function noWaypointProblem(service: ServiceRef, optedOut?: string): string {
  const reason = optedOut
    ? `${optedOut} opts out of waypoints (${USE_WAYPOINT_LABEL}=none)`
    : `no waypoint serves Service ${service.namespace}/${service.name} (neither it nor namespace ${service.namespace} has the ${USE_WAYPOINT_LABEL} label)`;
  return `the canary runs in Istio's ambient mode and ${reason}: without a waypoint, ztunnel carries the traffic at L4 only, so the route's weights are not applied (traffic is not split at L7) and there are no L7 metrics (istio_requests_total) to judge the canary by. Deploy a waypoint and enroll the namespace: \`istioctl waypoint apply -n ${service.namespace} --enroll-namespace\` (or label the Service: \`kubectl label service ${service.name} -n ${service.namespace} ${USE_WAYPOINT_LABEL}=waypoint\`); sidecars are not needed`;
}

interface WaypointCheck {
  /** The waypoints that serve the Services, `ns/name`. */
  waypoints: string[];
  /**
   * Whether every Service (or its namespace) opts ingress gateways into its waypoint
   * (`istio.io/ingress-use-waypoint=true`): else a gateway applies a route itself and the waypoint
   * never sees its requests (Istio: "Ingress behaves differently, must explicitly opt in").
   */
  ingressUsesWaypoint: boolean;
  problems: string[];
  warnings: string[];
}

const DENIED = Symbol("denied");

/**
 * A read the action may be denied (403): DENIED, and a warning naming what was not checked. A
 * symbol, not undefined: a Service or Gateway that is not there reads as undefined.
 */
function readOrWarn<T>(read: () => Promise<T>, what: string, warnings: string[]): Promise<T | typeof DENIED> {
  return forbiddenAsWarning(
    read,
    warnings,
    `could not read ${what} (forbidden): the ambient waypoint is not checked`,
    DENIED,
  );
}

/**
 * Checks that a waypoint serves each Service (the stable's and the canary's): enrolled, its
 * Gateway programmed, a pod ready; and each waypoint a route is attached to directly (`parents`: an
 * HTTPRoute whose parentRef is the waypoint's Gateway applies to all traffic enrolled in it, as
 * Istio's "Use Layer 7 features" describes). Every problem at once; a denied read is a warning.
 */
export async function checkWaypoints(
  api: MeshApi,
  services: readonly ServiceRef[],
  signal?: AbortSignal,
  parents: readonly WaypointRef[] = [],
): Promise<WaypointCheck> {
  const result: WaypointCheck = { waypoints: [], problems: [], warnings: [], ingressUsesWaypoint: true };
  const { warnings } = result;
  for (const ref of parents) await checkWaypoint(api, ref, result, signal);
  const unique = [...new Map(services.map((s) => [`${s.namespace}/${s.name}`, s])).values()];
  for (const service of unique) {
    const where = `${service.namespace}/${service.name}`;
    const labels = await readOrWarn(
      () => api.getServiceLabels(service.namespace, service.name, signal),
      `Service ${where}`,
      warnings,
    );
    const namespaceLabels = await readOrWarn(
      () => api.getNamespaceLabels(service.namespace, signal),
      `namespace ${service.namespace}`,
      warnings,
    );
    if (labels === DENIED || namespaceLabels === DENIED) continue;
    const ingress = labels?.[INGRESS_USE_WAYPOINT_LABEL] ?? namespaceLabels[INGRESS_USE_WAYPOINT_LABEL];
    if (ingress?.toLowerCase() !== "true") result.ingressUsesWaypoint = false;
    const ref = waypointOf(service, labels, namespaceLabels);
    if (!ref || "optedOut" in ref) {
      result.problems.push(noWaypointProblem(service, ref?.optedOut));
      continue;
    }
    await checkWaypoint(api, ref, result, signal);
  }
  return result;
}

/** One waypoint (once): its Gateway and pods read and judged into `result`. */
async function checkWaypoint(
  api: MeshApi,
  ref: WaypointRef,
  result: WaypointCheck,
  signal?: AbortSignal,
): Promise<void> {
  const key = `${ref.namespace}/${ref.name}`;
  if (result.waypoints.includes(key)) return;
  result.waypoints.push(key);
  const gateway = await readOrWarn(
    () => api.getGateway(ref.namespace, ref.name, signal),
    `Gateway ${key} (grant get on gateways.gateway.networking.k8s.io)`,
    result.warnings,
  );
  const pods = await readOrWarn(
    () => api.listPods(ref.namespace, `${GATEWAY_NAME_LABEL}=${ref.name}`, signal),
    `the pods of waypoint ${key}`,
    result.warnings,
  );
  if (gateway === DENIED) return;
  const verdict = judgeWaypoint(ref, gateway, pods === DENIED ? undefined : pods);
  result.problems.push(...verdict.problems);
  result.warnings.push(...verdict.warnings);
}

/**
 * The parents of a route that are waypoints (Gateways of class istio-waypoint), read only in
 * ambient mode; a Gateway the action may not read, or that is gone, counts as not one (an ingress).
 */
export async function waypointParents(
  api: MeshApi,
  gateways: readonly ServiceRef[],
  signal?: AbortSignal,
): Promise<WaypointRef[]> {
  const found: WaypointRef[] = [];
  for (const g of gateways) {
    const gateway = await api.getGateway(g.namespace, g.name, signal).catch((error: unknown) => {
      if (error instanceof MeshError && (error.status === 403 || error.status === 404)) return undefined;
      throw error;
    });
    if (gateway?.spec?.gatewayClassName === WAYPOINT_CLASS)
      found.push({ ...g, from: `the route's parentRef Gateway ${g.namespace}/${g.name}` });
  }
  return found;
}

/**
 * Ambient, a route bound only to ingress gateways: the gateway applies its weights and reports the
 * requests itself (as `reporter="source"`); the waypoint sees them only when the Service opts in.
 */
export function ingressWarning(where: string, gateways: readonly string[], ingressUsesWaypoint: boolean) {
  if (gateways.includes("mesh") || ingressUsesWaypoint) return undefined;
  return `${where} applies only to ingress gateways (${gateways.join(", ")}): in ambient mode the gateway applies its weights itself and reports those requests with reporter="source", and the waypoint never sees them unless the Service is labelled ${INGRESS_USE_WAYPOINT_LABEL}=true; label it so, or set reporter: source`;
}
