/**
 * Preflight of every VirtualService the action moves in lockstep: each is checked as one would be
 * (src/mesh/preflight.ts), every problem of every one reported at once, and the set as a whole is
 * checked for what no single one shows: when each applies only to gateways, callers inside the mesh
 * are routed by none of them and stay on stable after a "promoted" rollout.
 */
import type { VirtualServiceRef } from "../rollout/model/routes.ts";
import type { Split } from "../rollout/model/split.ts";
import { describeObject, type RouteObject, type VirtualService } from "../rollout/model/virtual-service.ts";
import { MeshError } from "./errors.ts";
import { preflightHttpRoute } from "./http-route-preflight.ts";
import type { GatewayApi, MeshApi } from "./kubernetes.ts";
import {
  gatewaysOf,
  PreflightError,
  type PreflightOptions,
  type PreflightResult,
  preflight,
} from "./preflight.ts";
import { describeManagedRoutes, type Target } from "./routes.ts";

export interface LockstepPreflight {
  /** The primary's result (labels and services for the metrics queries), with every warning. */
  primary: PreflightResult;
  results: PreflightResult[];
  warnings: string[];
  /** What a person should know but need not act on (a mirror left as it is), per VirtualService. */
  notes: string[];
  /** `VirtualService shop/backend: http route "primary"; VirtualService istio-system/gw: http route #0`. */
  managedRoutes: string;
}

const where = describeObject;

/**
 * The warning when none of the VirtualServices applies to the mesh (`gateways` set and without
 * `mesh`): only requests through those gateways follow the weights.
 */
export function gatewayOnlyWarning(objects: readonly RouteObject[]): string | undefined {
  // An HTTPRoute's reach is its parentRefs (a Gateway, or a Service for the mesh): preflight of HTTPRoutes says so.
  const vss = objects.filter((o): o is VirtualService => o.kind === "VirtualService");
  if (vss.length === 0 || vss.some((vs) => gatewaysOf(vs).includes("mesh"))) return undefined;
  const listed = vss.map((vs) => `${where(vs)} (gateways ${gatewaysOf(vs).join(", ")})`).join(", ");
  return `${listed} applies only to ingress gateways: callers inside the mesh are not routed by it and stay on stable, even after the canary is promoted. To move them too, add the mesh's VirtualService for this host to virtual-service (comma separated); the action moves them together`;
}

export async function preflightAll(
  api: MeshApi & Partial<GatewayApi>,
  refs: readonly VirtualServiceRef[],
  split: Split,
  target: Target,
  options: PreflightOptions = {},
): Promise<LockstepPreflight> {
  const results: PreflightResult[] = [];
  const problems: string[] = [];
  const several = refs.length > 1;
  const kind = options.kind ?? "VirtualService";
  const check = (ref: VirtualServiceRef) =>
    kind === "HTTPRoute"
      ? preflightHttpRoute(
          api as MeshApi & GatewayApi,
          ref.namespace,
          ref.name,
          split,
          target,
          ref.routes,
          options,
        )
      : preflight(api, ref.namespace, ref.name, split, target, ref.routes, options);
  for (const ref of refs) {
    const name = `${kind} ${ref.namespace}/${ref.name}`;
    try {
      results.push(await check(ref));
    } catch (error) {
      if (!several) throw error;
      if (error instanceof PreflightError) problems.push(...error.problems.map((p) => `${name}: ${p}`));
      else if (error instanceof MeshError && error.status === undefined) problems.push(error.message);
      else throw error;
    }
  }
  const whole = refs.map((r) => `${r.namespace}/${r.name}`).join(", ");
  if (problems.length > 0) throw new PreflightError(`${kind} ${whole}`, problems);
  const primary = results[0] as PreflightResult;
  const warnings = results.flatMap((r) => r.warnings.map((w) => (several ? `${where(r.object)}: ${w}` : w)));
  const gatewayOnly = gatewayOnlyWarning(results.map((r) => r.object));
  if (gatewayOnly) warnings.push(gatewayOnly);
  const managedRoutes = results
    .map((r) => `${where(r.object)}: ${describeManagedRoutes(r.managed)}`)
    .join("; ");
  const notes = results.flatMap((r) => r.notes.map((n) => (several ? `${where(r.object)}: ${n}` : n)));
  return { primary, results, warnings, notes, managedRoutes };
}
