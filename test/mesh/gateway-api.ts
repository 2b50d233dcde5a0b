/**
 * The Gateway API (gateway.networking.k8s.io/v1) as the Kubernetes API emulator serves it, for
 * HTTPRoute and Gateway: the CRDs' defaults and structural schema (422 Invalid with
 * details.causes, as kube-apiserver answers for a CRD), and the status a Gateway API controller
 * (istiod) writes: a Gateway with class `istio` is Accepted and Programmed; an HTTPRoute's
 * `status.parents` has, per parentRef, Accepted (the parent Gateway or Service exists and, for a
 * Gateway, is istiod's) and ResolvedRefs (every backendRef is an existing Service).
 */
import type { KubeObject } from "./kube-api.ts";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";
export const ISTIO_CONTROLLER = "istio.io/gateway-controller";
/** Gateway classes istiod serves: `istio` (ingress gateways) and `istio-waypoint`. */
const ISTIO_CLASSES = ["istio", "istio-waypoint"];

type Lookup = (resource: string, namespace: string | undefined, name: string) => KubeObject | undefined;

interface BackendRef {
  group?: string;
  kind?: string;
  name?: unknown;
  namespace?: string;
  port?: number;
  weight?: unknown;
}
interface Rule {
  matches?: unknown[];
  backendRefs?: BackendRef[];
}
interface ParentRef {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
}

/** The CRD's defaults, as the API server applies them on every write: matches, group, kind, weight. */
export function defaultHttpRoute(obj: KubeObject): void {
  const spec = (obj.spec ?? {}) as { rules?: Rule[]; parentRefs?: ParentRef[] };
  if (!Array.isArray(spec.rules)) return;
  for (const rule of spec.rules) {
    if (!rule || typeof rule !== "object") continue;
    rule.matches ??= [{ path: { type: "PathPrefix", value: "/" } }];
    for (const ref of Array.isArray(rule.backendRefs) ? rule.backendRefs : []) {
      if (!ref || typeof ref !== "object") continue;
      ref.group ??= "";
      ref.kind ??= "Service";
      ref.weight ??= 1;
    }
  }
}

/** The structural schema's checks the action could trip: a weight that is not an integer from 0 to 1,000,000. */
export function invalidHttpRoute(
  obj: KubeObject,
): { field: string; value: unknown; detail: string } | undefined {
  const rules = (obj.spec as { rules?: unknown } | undefined)?.rules;
  if (rules === undefined) return undefined;
  if (!Array.isArray(rules))
    return { field: "spec.rules", value: rules, detail: "spec.rules in body must be of type array" };
  if (rules.length > 16)
    return { field: "spec.rules", value: rules.length, detail: "must have at most 16 items" };
  for (const [i, rule] of (rules as Rule[]).entries()) {
    for (const [j, ref] of (Array.isArray(rule?.backendRefs) ? rule.backendRefs : []).entries()) {
      const field = `spec.rules[${i}].backendRefs[${j}]`;
      if (typeof ref?.name !== "string" || ref.name === "")
        return { field: `${field}.name`, value: ref?.name, detail: "Required value" };
      const w = ref.weight;
      if (w !== undefined && !(typeof w === "number" && Number.isInteger(w)))
        return {
          field: `${field}.weight`,
          value: w,
          detail: `${field}.weight in body must be of type integer: "${typeof w}"`,
        };
      if (typeof w === "number" && (w < 0 || w > 1_000_000))
        return {
          field: `${field}.weight`,
          value: w,
          detail: "should be less than or equal to 1000000 and greater than or equal to 0",
        };
    }
  }
  return undefined;
}

const condition = (type: string, ok: boolean, reason: string, message: string, generation: unknown) => ({
  type,
  status: ok ? "True" : "False",
  reason,
  message,
  observedGeneration: generation,
  lastTransitionTime: "2026-01-01T00:00:00Z",
});

/** The Gateway's status as istiod reports it: Accepted and Programmed when its class is istiod's. */
export function gatewayStatus(gateway: KubeObject): unknown {
  const className = (gateway.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName ?? "";
  const ours = ISTIO_CLASSES.includes(className);
  const g = gateway.metadata.generation;
  return {
    conditions: [
      condition(
        "Accepted",
        ours,
        ours ? "Accepted" : "InvalidParameters",
        ours ? "Resource accepted" : `unknown GatewayClass ${className}`,
        g,
      ),
      condition(
        "Programmed",
        ours,
        ours ? "Programmed" : "Invalid",
        ours ? "Resource programmed" : "not accepted",
        g,
      ),
    ],
  };
}

/** Why a parentRef is not accepted, or undefined when it is. */
function parentProblem(
  ref: ParentRef,
  namespace: string,
  lookup: Lookup,
): { reason: string; message: string } | undefined {
  const ns = ref.namespace ?? namespace;
  const kind = ref.kind ?? "Gateway";
  if (kind === "Service" && (ref.group ?? "") === "") {
    return lookup("services", ns, ref.name)
      ? undefined
      : { reason: "NoMatchingParent", message: `service ${ns}/${ref.name} not found` };
  }
  if (kind !== "Gateway")
    return { reason: "NotAllowedByListeners", message: `unsupported parent kind ${kind}` };
  const gateway = lookup("gateways", ns, ref.name);
  if (!gateway) return { reason: "NoMatchingParent", message: `gateway ${ns}/${ref.name} not found` };
  const className = (gateway.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName ?? "";
  if (!ISTIO_CLASSES.includes(className))
    return { reason: "NoMatchingParent", message: `gateway class ${className} is not istiod's` };
  return undefined;
}

/** A backendRef that does not resolve (a Service that does not exist, or another kind), or undefined. */
function unresolved(rules: readonly Rule[], namespace: string, lookup: Lookup): string | undefined {
  for (const rule of rules)
    for (const ref of Array.isArray(rule?.backendRefs) ? rule.backendRefs : []) {
      if ((ref.group ?? "") !== "" || (ref.kind ?? "Service") !== "Service")
        return `unsupported backendRef kind ${ref.kind}`;
      if (!lookup("services", ref.namespace ?? namespace, String(ref.name)))
        return `backend(${ref.name}.${ref.namespace ?? namespace}) not found`;
    }
  return undefined;
}

/** status.parents as istiod writes it for a route: one entry per parentRef. */
export function httpRouteStatus(route: KubeObject, lookup: Lookup): unknown {
  const namespace = route.metadata.namespace ?? "default";
  const spec = (route.spec ?? {}) as { rules?: Rule[]; parentRefs?: ParentRef[] };
  const rules = Array.isArray(spec.rules) ? spec.rules : [];
  const missing = unresolved(rules, namespace, lookup);
  const g = route.metadata.generation;
  return {
    parents: (Array.isArray(spec.parentRefs) ? spec.parentRefs : []).map((parentRef) => {
      const problem = parentProblem(parentRef, namespace, lookup);
      return {
        parentRef,
        controllerName: ISTIO_CONTROLLER,
        conditions: [
          condition(
            "Accepted",
            !problem,
            problem?.reason ?? "Accepted",
            problem?.message ?? "Route was valid",
            g,
          ),
          condition(
            "ResolvedRefs",
            !missing,
            missing ? "BackendNotFound" : "ResolvedRefs",
            missing ?? "All references resolved",
            g,
          ),
        ],
      };
    }),
  };
}
