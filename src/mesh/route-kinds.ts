/**
 * The two kinds of object the traffic router moves, behind one interface: Istio's VirtualService
 * (routes.ts, route-patches.ts) and the Gateway API's HTTPRoute (http-route-rules.ts,
 * http-route-patches.ts). The router (router.ts) reads, plans, patches and retries the same way for
 * both; only where the weights live and how they are written differ.
 */
import type { GatewayHttpRoute } from "../rollout/model/http-route.ts";
import type { OriginalRoute, PatchOperation } from "../rollout/model/routes.ts";
import type { RouteObject, VirtualService } from "../rollout/model/virtual-service.ts";
import type { PreviewView } from "../rollout/ports.ts";
import { MeshError } from "./errors.ts";
import { notAccepted } from "./http-route-parents.ts";
import { planRuleRollback, planRuleWeights } from "./http-route-patches.ts";
import {
  describeRuleTraffic,
  findManagedRules,
  originalRules,
  rollbackRules,
  ruleCanaryWeight,
  unmanagedRulesTo,
} from "./http-route-rules.ts";
import type { GatewayApi, MeshApi } from "./kubernetes.ts";
import { planPreviewRemoval, readPreview } from "./preview-routes.ts";
import { planRollback, planWeights, rollbackRoutes } from "./route-patches.ts";
import {
  canaryWeightOf,
  describeTraffic,
  findManagedRoutes,
  type ManagedRoute,
  originalRoutes,
  type Target,
  unmanagedRoutesTo,
} from "./routes.ts";

export interface RouteKind<D extends RouteObject> {
  /** `VirtualService`, `HTTPRoute`: how messages name the object. */
  readonly kind: string;
  get(namespace: string, name: string, signal?: AbortSignal): Promise<D>;
  patch(
    namespace: string,
    name: string,
    apiVersion: string,
    ops: PatchOperation[],
    signal?: AbortSignal,
  ): Promise<D>;
  /** The routes a rollout manages; throws a MeshError naming what is missing. */
  managed(o: D, target: Target, selectors: readonly string[]): ManagedRoute[];
  /** The routes a rollback puts on stable: the managed ones and any other still sending to the canary. */
  rollbackRoutes(o: D, target: Target, selectors: readonly string[]): ManagedRoute[];
  /** A managed route's canary share in percent. */
  canaryWeight(o: D, m: ManagedRoute): number;
  original(o: D, managed: readonly ManagedRoute[]): OriginalRoute[];
  unmanaged(
    o: D,
    target: Target,
    managed: readonly ManagedRoute[],
  ): Array<{ route: string; to: Array<"stable" | "canary"> }>;
  /** The operations to `weight` % canary (above 0). */
  planWeights(o: D, managed: readonly ManagedRoute[], weight: number, target: Target): PatchOperation[];
  planRollback(o: D, managed: readonly ManagedRoute[], recorded?: readonly OriginalRoute[]): PatchOperation[];
  describeTraffic(o: D, target: Target): string;
  /** Why the object routes nothing now whatever its weights (a parent no longer accepts it), or undefined. */
  notRouting?(o: D): string | undefined;
  /** The header-routed preview (issue 23), where the kind supports one: as found, and its removal. */
  readPreview?(o: D, target: Target): PreviewView | undefined;
  planPreviewRemoval?(o: D, target: Target): { ops: PatchOperation[]; removed: number[] };
}

/**
 * The VirtualService; when there is none of that name but an HTTPRoute of that name exists, an
 * error that says so and names the input to use (the API's own 404 says only "not found").
 */
export async function getVirtualService(
  api: MeshApi & Partial<GatewayApi>,
  namespace: string,
  name: string,
  signal?: AbortSignal,
): Promise<VirtualService> {
  try {
    return await api.getVirtualService(namespace, name, signal);
  } catch (error) {
    if (!(error instanceof MeshError) || error.status !== 404 || error.isUnservedVersion || !api.getHttpRoute)
      throw error;
    const found = await api.getHttpRoute(namespace, name, signal).then(
      () => true,
      () => false,
    );
    if (!found) throw error;
    throw new MeshError(
      `VirtualService ${namespace}/${name} does not exist, but Gateway API HTTPRoute ${namespace}/${name} does: name it in the 'http-route' input instead of 'virtual-service' (the action moves an HTTPRoute's backendRef weights, with stable-host and canary-host as the two Services)`,
      404,
      error.reason,
      error.server,
    );
  }
}

export function virtualServiceKind(api: MeshApi & Partial<GatewayApi>): RouteKind<VirtualService> {
  return {
    kind: "VirtualService",
    get: (namespace, name, signal) => getVirtualService(api, namespace, name, signal),
    patch: (namespace, name, apiVersion, ops, signal) =>
      api.patchVirtualService(namespace, name, apiVersion, ops, signal),
    managed: findManagedRoutes,
    rollbackRoutes,
    canaryWeight: canaryWeightOf,
    original: originalRoutes,
    unmanaged: unmanagedRoutesTo,
    planWeights: (vs, managed, weight, target) => planWeights(vs, managed, weight, target),
    planRollback,
    describeTraffic,
    readPreview,
    planPreviewRemoval,
  };
}

export function httpRouteKind(api: GatewayApi): RouteKind<GatewayHttpRoute> {
  return {
    kind: "HTTPRoute",
    get: (namespace, name, signal) => api.getHttpRoute(namespace, name, signal),
    patch: (namespace, name, apiVersion, ops, signal) =>
      api.patchHttpRoute(namespace, name, apiVersion, ops, signal),
    managed: findManagedRules,
    rollbackRoutes: rollbackRules,
    canaryWeight: ruleCanaryWeight,
    original: originalRules,
    unmanaged: unmanagedRulesTo,
    planWeights: planRuleWeights,
    planRollback: planRuleRollback,
    describeTraffic: describeRuleTraffic,
    notRouting: (route) => notAccepted(route),
  };
}
