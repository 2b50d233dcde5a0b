/**
 * Pure planning over the user's VirtualService: which http routes the action manages, and the RFC
 * 6902 JSON Patch that moves them to a canary weight. A patch `test`s each managed route's current
 * destinations (what it relies on) and changes only their weights, the canary destination it adds
 * or removes, and the action's own annotation; a concurrent edit of those destinations fails the
 * `test` and is re-read, never overwritten, and an edit of anything else is simply kept.
 */

import { type OriginalRoute, type PatchOperation, routePosition } from "../rollout/model/routes.ts";
import type { Split } from "../rollout/model/split.ts";
import type {
  Destination,
  HttpRoute,
  RouteDestination,
  VirtualService,
} from "../rollout/model/virtual-service.ts";
import { MeshError } from "./errors.ts";

/** Which destination is stable and which is the canary. */
export interface Target {
  stable: { host?: string; subset?: string };
  canary: { host?: string; subset?: string };
}

export function targetOf(split: Split): Target {
  return split.mode === "subset"
    ? {
        stable: { host: split.host, subset: split.stableSubset },
        canary: { host: split.host, subset: split.canarySubset },
      }
    : { stable: { host: split.stableHost }, canary: { host: split.canaryHost } };
}

/** `reviews`, `reviews.prod`, `reviews.prod.svc` and `reviews.prod.svc.cluster.local` are one host in namespace prod. */
export function sameHost(a: string, b: string, namespace: string): boolean {
  const full = (h: string) => {
    const parts = h.split(".");
    if (parts.length === 1) return `${h}.${namespace}.svc.cluster.local`;
    if (parts.length === 2) return `${h}.svc.cluster.local`;
    if (parts.length === 3 && parts[2] === "svc") return `${h}.cluster.local`;
    return h;
  };
  return full(a) === full(b);
}

function matches(d: Destination, want: { host?: string; subset?: string }, namespace: string): boolean {
  if (want.host !== undefined && !sameHost(d.host, want.host, namespace)) return false;
  return (d.subset ?? undefined) === want.subset;
}

export interface ManagedRoute {
  /** Index in spec.http. */
  index: number;
  name?: string;
  stableIndex: number;
  canaryIndex?: number;
}

export function describeRoute(route: HttpRoute, index: number): string {
  return route.name ? `http route "${route.name}"` : `http route #${index}`;
}

/** The managed routes as one list for a log line: `http route "primary", http route #1`. */
export function describeManagedRoutes(managed: readonly ManagedRoute[]): string {
  return managed.map((m) => (m.name ? `http route "${m.name}"` : `http route #${m.index}`)).join(", ");
}

function describeDestination(d: Destination): string {
  return `${d.host}${d.subset ? ` (subset ${d.subset})` : ""}`;
}

/** The stable or canary side of a target, which may have no host (subsets of the route's host). */
export function describeTargetSide(side: Target["stable"]): string {
  if (side.host === undefined) return `subset ${side.subset}`;
  return describeDestination({ host: side.host, subset: side.subset });
}

/** Whether the `routes` entry `selector` (a name, or `#N` for the position) selects this route. */
function selects(selector: string, route: HttpRoute, index: number): boolean {
  const position = routePosition(selector);
  return position === undefined ? route.name === selector : position === index;
}

/** Classifies a route's destinations; undefined when it routes anywhere but stable and canary. */
function classify(
  route: HttpRoute,
  index: number,
  target: Target,
  namespace: string,
): ManagedRoute | undefined {
  const destinations = route.route ?? [];
  let stableIndex: number | undefined;
  let canaryIndex: number | undefined;
  for (const [i, d] of destinations.entries()) {
    if (matches(d.destination, target.stable, namespace) && stableIndex === undefined) stableIndex = i;
    else if (matches(d.destination, target.canary, namespace) && canaryIndex === undefined) canaryIndex = i;
    else return undefined;
  }
  if (stableIndex === undefined) return undefined;
  return { index, name: route.name, stableIndex, canaryIndex };
}

/**
 * Whether a route takes every request that reaches it: no `match`, or a match entry that only
 * says `uri: prefix "/"` (or `regex ".*"`), the catch-all that gateway VirtualServices often carry
 * without a name. Such a route is a default route, managed by default like one without match.
 */
export function catchesAll(route: HttpRoute): boolean {
  if (!route.match || route.match.length === 0) return true;
  return route.match.some((m) => {
    if (typeof m !== "object" || m === null) return false;
    const { uri, ...rest } = m as { uri?: Record<string, unknown> } & Record<string, unknown>;
    const only = Object.keys(rest).every((k) => k === "name" || k === "ignoreUriCase");
    const keys = Object.keys(uri ?? {});
    const all = uri?.prefix === "/" || uri?.regex === ".*" || uri?.regex === "/.*";
    return only && keys.length === 1 && all;
  });
}

/** Every http route as `routes` selects it (by name, else by position): `primary, #1 (unnamed)`. */
function listRoutes(http: readonly HttpRoute[]): string {
  return http.map((r, i) => r.name ?? `#${i} (unnamed)`).join(", ");
}

/**
 * The managed routes: those selected in `routes` (by name, or by position `#N` in spec.http), or
 * by default every http route without `match` whose destinations are only stable (and the canary,
 * once a rollout has begun). A route with `match` blocks is managed only when selected.
 */
export function findManagedRoutes(
  vs: VirtualService,
  target: Target,
  selectors: readonly string[],
): ManagedRoute[] {
  const namespace = vs.metadata.namespace ?? "default";
  const http = vs.spec.http ?? [];
  const where = `VirtualService ${namespace}/${vs.metadata.name}`;
  if (selectors.length > 0) {
    const managed = selectors.map((selector) => {
      const index = http.findIndex((r, i) => selects(selector, r, i));
      if (index < 0) {
        const known = listRoutes(http) || "no http routes";
        const what =
          routePosition(selector) === undefined
            ? `no http route named "${selector}"`
            : `no http route ${selector}`;
        throw new MeshError(`${where} has ${what} (it has ${known})`);
      }
      const route = http[index] as HttpRoute;
      const managed = classify(route, index, target, namespace);
      if (!managed) {
        const to = (route.route ?? []).map((d) => describeDestination(d.destination)).join(", ");
        throw new MeshError(
          `${where}: ${describeRoute(route, index)} routes to ${to || "nothing"}, not to the stable destination ${describeTargetSide(target.stable)} alone`,
        );
      }
      return managed;
    });
    const twice = managed.find((m, i) => managed.findIndex((o) => o.index === m.index) !== i);
    if (twice) {
      const route = http[twice.index] as HttpRoute;
      throw new MeshError(
        `the 'routes' input selects ${describeRoute(route, twice.index)} of ${where} twice (by name and by position #${twice.index})`,
      );
    }
    return managed;
  }
  const managed = http.flatMap((route, index) =>
    catchesAll(route) ? (classify(route, index, target, namespace) ?? []) : [],
  );
  if (managed.length === 0) {
    // Named as the inputs name them: the fix is usually a typo in one of them.
    const host = target.stable.host ? `host ${target.stable.host} (the 'stable-host' input)` : undefined;
    const stable = target.stable.subset
      ? `subset ${target.stable.subset} (the 'stable-subset' input)${host ? ` of the ${host}` : ""}`
      : host;
    const withMatch = http.flatMap((route, index) =>
      !catchesAll(route) && classify(route, index, target, namespace) ? [route.name ?? `#${index}`] : [],
    );
    const hint =
      withMatch.length > 0
        ? `; routes with a match that do: select them with routes: "${withMatch.join(", ")}"`
        : "";
    const others = (["tcp", "tls"] as const).flatMap((protocol) =>
      (vs.spec[protocol] ?? []).map((_, index) => `${protocol} route #${index}`),
    );
    const notShifted =
      others.length > 0
        ? `; its ${others.join(", ")} cannot be managed: the action shifts http routes only, so give those their own VirtualService or split them by hand`
        : "";
    throw new MeshError(
      `${where} has no http route without match (or with only a catch-all uri prefix "/") whose only destination is the stable ${stable}; select the routes to manage with the 'routes' input, by name or by position #N (it has ${listRoutes(http) || "no http routes"})${hint}${notShifted}`,
    );
  }
  return managed;
}

/** The canary weight a managed route has now (0 when it has no canary destination). */
export function canaryWeightOf(vs: VirtualService, route: ManagedRoute): number {
  const destinations = vs.spec.http?.[route.index]?.route ?? [];
  if (route.canaryIndex === undefined) return 0;
  return destinations[route.canaryIndex]?.weight ?? (destinations.length === 1 ? 100 : 0);
}

export function originalRoutes(vs: VirtualService, managed: readonly ManagedRoute[]): OriginalRoute[] {
  return managed.map((m) => {
    const destinations = vs.spec.http?.[m.index]?.route ?? [];
    return {
      index: m.index,
      name: m.name,
      canaryAdded: m.canaryIndex === undefined,
      stableWeight: destinations[m.stableIndex]?.weight,
      canaryWeight: m.canaryIndex === undefined ? undefined : destinations[m.canaryIndex]?.weight,
    };
  });
}

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
export function planAnnotation(vs: VirtualService, key: string, value: string): PatchOperation[] {
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

/**
 * The http routes outside `managed` that send traffic to stable or the canary: their traffic does
 * not follow the managed weights.
 */
export function unmanagedRoutesTo(
  vs: VirtualService,
  target: Target,
  managed: readonly ManagedRoute[],
): Array<{ route: string; to: Array<"stable" | "canary"> }> {
  const namespace = vs.metadata.namespace ?? "default";
  const ours = new Set(managed.map((m) => m.index));
  return (vs.spec.http ?? []).flatMap((route, index) => {
    if (ours.has(index)) return [];
    const destinations = (route.route ?? []).map((d) => d.destination);
    const to = (["stable", "canary"] as const).filter((side) =>
      destinations.some((d) => matches(d, target[side], namespace)),
    );
    return to.length > 0 ? [{ route: describeRoute(route, index), to }] : [];
  });
}

/** Where traffic goes on each route with a canary destination: `http route "primary": stable 90, canary 10`. */
export function describeTraffic(vs: VirtualService, target: Target): string {
  const namespace = vs.metadata.namespace ?? "default";
  const lines = (vs.spec.http ?? []).flatMap((route, index) => {
    const destinations = route.route ?? [];
    const weightOf = (want: Target["stable"]) =>
      destinations
        .filter((d) => matches(d.destination, want, namespace))
        .reduce((sum, d) => sum + (d.weight ?? (destinations.length === 1 ? 100 : 0)), 0);
    const canary = weightOf(target.canary);
    const hasCanary = destinations.some((d) => matches(d.destination, target.canary, namespace));
    return hasCanary
      ? [`${describeRoute(route, index)}: stable ${weightOf(target.stable)}, canary ${canary}`]
      : [];
  });
  return lines.length > 0 ? lines.join("; ") : "no route has a canary destination (all traffic to stable)";
}
