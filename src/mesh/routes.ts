/**
 * Pure reading of the user's VirtualService: which http routes the action manages (by name, by
 * position, or the catch-all route to stable), what each sends to stable and the canary, and how to
 * name them in a message. The RFC 6902 JSON Patches that move those routes are route-patches.ts.
 */

import { type OriginalRoute, routePosition } from "../rollout/model/routes.ts";
import type { Split } from "../rollout/model/split.ts";
import type { Destination, HttpRoute, VirtualService } from "../rollout/model/virtual-service.ts";
import { delegateOf, delegatingRouteProblem, rootVirtualServiceProblem } from "./delegation.ts";
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
export function selects(selector: string, route: HttpRoute, index: number): boolean {
  const position = routePosition(selector);
  return position === undefined ? route.name === selector : position === index;
}

/** Classifies a route's destinations; undefined when it routes anywhere but stable and canary. */
export function classify(
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
      const delegate = delegateOf(route, namespace);
      if (delegate) throw new MeshError(delegatingRouteProblem(where, { index, name: route.name, delegate }));
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
  const root = managed.length === 0 ? rootVirtualServiceProblem(where, vs) : undefined;
  if (root) throw new MeshError(root);
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
  return originalOf(managed, (index) => vs.spec.http?.[index]?.route ?? []);
}

/**
 * The record of `managed` as found, for either kind: `weighted(index)` is the route's (or rule's)
 * weighted entries (a VirtualService's destinations, an HTTPRoute's backendRefs).
 */
export function originalOf(
  managed: readonly ManagedRoute[],
  weighted: (index: number) => ReadonlyArray<{ weight?: number }>,
): OriginalRoute[] {
  return managed.map((m) => {
    const entries = weighted(m.index);
    return {
      index: m.index,
      name: m.name,
      canaryAdded: m.canaryIndex === undefined,
      stableWeight: entries[m.stableIndex]?.weight,
      canaryWeight: m.canaryIndex === undefined ? undefined : entries[m.canaryIndex]?.weight,
    };
  });
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
