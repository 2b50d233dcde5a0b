/**
 * The RFC 6902 JSON Patches over the user's VirtualService: move the managed routes to a canary
 * weight, restore them to what they were, write the action's annotation. Each patch `test`s the
 * destinations it relies on, so a concurrent edit of them fails the patch and is re-read, never
 * overwritten. Which routes are managed is routes.ts.
 */
import type { OriginalRoute, PatchOperation } from "../rollout/model/routes.ts";
import type {
  HttpRoute,
  RouteDestination,
  RouteObject,
  VirtualService,
} from "../rollout/model/virtual-service.ts";
import { MeshError } from "./errors.ts";
import { canaryWeightOf, catchesAll, classify, type ManagedRoute, selects, type Target } from "./routes.ts";

/** JSON Pointer escaping (RFC 6901). */
export function pointer(...segments: Array<string | number>): string {
  return segments.map((s) => `/${String(s).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}

/** The canary destination: a copy of the stable one (port, headers kept) with the canary's subset or host. */
function canaryDestination(stable: RouteDestination, target: Target, weight: number): RouteDestination {
  const copy = structuredClone(stable);
  copy.destination = { ...copy.destination };
  if (target.canary.subset !== undefined) copy.destination.subset = target.canary.subset;
  else delete copy.destination.subset;
  if (target.canary.host !== undefined && target.stable.host !== target.canary.host)
    copy.destination.host = target.canary.host;
  copy.weight = weight;
  return copy;
}

/**
 * The operations that put every managed route at `canaryWeight` (0–100). At 0 with `restore`, a
 * route goes back to exactly what it was before the rollout (a canary destination the action added
 * is removed, stable's weight field restored). Weights always sum to 100 within a route.
 */
export function planWeights(
  vs: VirtualService,
  managed: readonly ManagedRoute[],
  canaryWeight: number,
  target: Target,
  restore?: readonly OriginalRoute[],
): PatchOperation[] {
  if (!Number.isInteger(canaryWeight) || canaryWeight < 0 || canaryWeight > 100)
    throw new MeshError(`canary weight ${canaryWeight} is not a whole number from 0 to 100`);
  const ops: PatchOperation[] = [];
  for (const m of managed) {
    const route = vs.spec.http?.[m.index] as HttpRoute;
    const destinations = route.route ?? [];
    const base = pointer("spec", "http", m.index, "route");
    ops.push({ op: "test", path: base, value: destinations });
    const original = restore?.find((o) => o.index === m.index);
    const stablePath = `${base}${pointer(m.stableIndex, "weight")}`;
    if (canaryWeight === 0 && original) {
      if (original.stableWeight === undefined) {
        if (destinations[m.stableIndex]?.weight !== undefined) ops.push({ op: "remove", path: stablePath });
      } else ops.push({ op: "add", path: stablePath, value: original.stableWeight });
      if (m.canaryIndex !== undefined) {
        if (original.canaryAdded) ops.push({ op: "remove", path: `${base}${pointer(m.canaryIndex)}` });
        else
          ops.push({
            op: "add",
            path: `${base}${pointer(m.canaryIndex, "weight")}`,
            value: original.canaryWeight ?? 0,
          });
      }
      continue;
    }
    ops.push({ op: "add", path: stablePath, value: 100 - canaryWeight });
    if (m.canaryIndex !== undefined) {
      ops.push({ op: "add", path: `${base}${pointer(m.canaryIndex, "weight")}`, value: canaryWeight });
    } else if (canaryWeight > 0) {
      ops.push({
        op: "add",
        path: `${base}/-`,
        value: canaryDestination(destinations[m.stableIndex] as RouteDestination, target, canaryWeight),
      });
    }
  }
  return ops;
}

/**
 * Operations that set the action's annotation, compare-and-swap against what was read. When the
 * object had no annotations at all, the map is created under a `test` of the resourceVersion read:
 * an `add` of the whole map would replace one another writer created meanwhile.
 */
export function planAnnotation(vs: RouteObject, key: string, value: string): PatchOperation[] {
  const annotations = vs.metadata.annotations;
  if (!annotations) {
    const version = vs.metadata.resourceVersion;
    return [
      ...(version === undefined
        ? []
        : [{ op: "test" as const, path: "/metadata/resourceVersion", value: version }]),
      { op: "add", path: "/metadata/annotations", value: { [key]: value } },
    ];
  }
  const path = pointer("metadata", "annotations", key);
  const previous = annotations[key];
  return previous === undefined
    ? [{ op: "add", path, value }]
    : [
        { op: "test", path, value: previous },
        { op: "replace", path, value },
      ];
}

/**
 * The routes a rollback puts back on stable: those a rollout manages (as far as they still exist)
 * and every other route whose destinations are stable and the canary with canary weight above 0
 * (a managed route someone renamed, or one the action no longer finds by its rule). "Rollback" is
 * "all traffic to stable now", so no route that can be is left sending traffic to the canary.
 */
export function rollbackRoutes(
  vs: VirtualService,
  target: Target,
  selectors: readonly string[],
): ManagedRoute[] {
  const namespace = vs.metadata.namespace ?? "default";
  return (vs.spec.http ?? []).flatMap((route, index) => {
    const m = classify(route, index, target, namespace);
    if (!m) return [];
    const selected =
      selectors.length > 0
        ? selectors.some((selector) => selects(selector, route, index))
        : catchesAll(route);
    return selected || canaryWeightOf(vs, m) > 0 ? [m] : [];
  });
}

/**
 * A recorded original route, when restoring it certainly gives 100 % stable: same index and name,
 * and it had either no canary destination or one at weight 0 beside stable at 100.
 */
function consistentOriginal(
  recorded: readonly OriginalRoute[] | undefined,
  route: HttpRoute,
  m: ManagedRoute,
): OriginalRoute | undefined {
  const o = recorded?.find((r) => r.index === m.index);
  if (!o || o.name !== route.name) return undefined;
  const allStable = o.canaryAdded
    ? o.stableWeight === undefined || o.stableWeight === 100
    : (o.canaryWeight ?? 0) === 0 && o.stableWeight === 100;
  return allStable ? o : undefined;
}

/**
 * The operations that put every route of `routes` at canary 0 / stable 100, from the routes alone.
 * Where the recorded original is consistent with that, it is restored exactly (the canary
 * destination the action added is removed, stable's weight field as it was). Otherwise (no
 * readable state, a route renamed or split by hand) only the weights change: stable 100, canary 0,
 * the canary destination kept. Changing nothing but weights is the one edit certainly right
 * whatever the route's history; a canary destination at 0 receives no traffic. A route without a
 * canary destination already sends everything to stable and is left alone.
 */
export function planRollback(
  vs: VirtualService,
  routes: readonly ManagedRoute[],
  recorded?: readonly OriginalRoute[],
): PatchOperation[] {
  const ops: PatchOperation[] = [];
  for (const m of routes) {
    if (m.canaryIndex === undefined) continue;
    const route = vs.spec.http?.[m.index] as HttpRoute;
    const destinations = route.route ?? [];
    const base = pointer("spec", "http", m.index, "route");
    ops.push({ op: "test", path: base, value: destinations });
    const stablePath = `${base}${pointer(m.stableIndex, "weight")}`;
    const canaryPath = `${base}${pointer(m.canaryIndex)}`;
    const original = consistentOriginal(recorded, route, m);
    if (original?.canaryAdded) {
      if (original.stableWeight !== undefined)
        ops.push({ op: "add", path: stablePath, value: original.stableWeight });
      else if (destinations[m.stableIndex]?.weight !== undefined)
        ops.push({ op: "remove", path: stablePath });
      ops.push({ op: "remove", path: canaryPath });
    } else {
      ops.push({ op: "add", path: stablePath, value: 100 });
      ops.push({ op: "add", path: `${canaryPath}/weight`, value: 0 });
    }
  }
  return ops;
}
