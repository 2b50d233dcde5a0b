/**
 * The header-routed preview (`command: preview`, issue 23): one http route per managed route, put
 * just ahead of it, that sends the requests the managed route would take AND that carry the preview
 * header to the canary alone, so a workflow's tests reach the canary before any user does. Pure
 * planning over the VirtualService as read: the JSON Patch that adds the routes (guarded by a `test`
 * of the whole http list it was planned against, so any concurrent edit re-reads and re-plans), the
 * one that removes them (recognised by name and shape alone, so a rollback needs no record), and
 * the refusals where a preview cannot be added safely.
 */
import type { OriginalRoute, PatchOperation } from "../rollout/model/routes.ts";
import type { HttpRoute, RouteDestination, VirtualService } from "../rollout/model/virtual-service.ts";
import type { PreviewRequest, PreviewView } from "../rollout/ports.ts";
import { MeshError } from "./errors.ts";
import { pointer } from "./route-patches.ts";
import { classify, describeRoute, type ManagedRoute, sameHost, type Target } from "./routes.ts";

/** The name of the action's preview route; `istio-canary-preview-2`... when several routes are managed. */
const PREVIEW_ROUTE_NAME = "istio-canary-preview";
/** What the preview was added for (rollout, header, value, when): for reports and for refusing another rollout's. */
export const PREVIEW_ANNOTATION = "canary.istio-action.dev/preview";

const PREVIEW_NAME = /^istio-canary-preview(-[0-9]+)?$/;

/** The fields of a route the preview does not copy: its own name, match and destination; mirrors copy no test request elsewhere. */
const NOT_COPIED = new Set([
  "name",
  "match",
  "route",
  "mirror",
  "mirrorPercentage",
  "mirrorPercent",
  "mirrors",
]);

function isCanary(d: RouteDestination, target: Target, namespace: string): boolean {
  const host = target.canary.host;
  if (host !== undefined && !sameHost(d.destination.host, host, namespace)) return false;
  return (d.destination.subset ?? undefined) === target.canary.subset;
}

/**
 * The indices of the action's preview routes: named as the action names them and sending to the
 * canary alone. Recognised from the routes only, never from an annotation (anyone may write one).
 */
function previewRouteIndices(vs: VirtualService, target: Target): number[] {
  const namespace = vs.metadata.namespace ?? "default";
  return (vs.spec.http ?? []).flatMap((route, index) => {
    const destinations = route.route ?? [];
    const ours =
      typeof route.name === "string" &&
      PREVIEW_NAME.test(route.name) &&
      destinations.length > 0 &&
      destinations.every((d) => isCanary(d, target, namespace));
    return ours ? [index] : [];
  });
}

/** Whether every match entry of `route` requires `header` to be exactly `value`. */
function carriesHeader(route: HttpRoute | undefined, header: string, value: string): boolean {
  const entries = (route?.match ?? []) as Array<{ headers?: Record<string, { exact?: unknown }> }>;
  return entries.length > 0 && entries.every((m) => m?.headers?.[header]?.exact === value);
}

/**
 * A header and value a preview route matches on (the first exact header of its first match entry),
 * for reports when no agreeing annotation names it: the managed route's own headers come along too.
 */
function previewHeaderOf(route: HttpRoute | undefined): { header: string; value: string } | undefined {
  const first = route?.match?.[0] as { headers?: Record<string, { exact?: unknown }> } | undefined;
  for (const [header, m] of Object.entries(first?.headers ?? {}))
    if (typeof m?.exact === "string" && header.length > 0) return { header, value: m.exact };
  return undefined;
}

/**
 * The operations that remove every preview route (highest index first, so each index is still
 * right when its turn comes; each `test`s the name it expects there) and the preview annotation.
 */
export function planPreviewRemoval(
  vs: VirtualService,
  target: Target,
): { ops: PatchOperation[]; removed: number[] } {
  const removed = previewRouteIndices(vs, target);
  const ops: PatchOperation[] = [];
  for (const index of [...removed].reverse()) {
    const path = pointer("spec", "http", index);
    ops.push({ op: "test", path: `${path}/name`, value: vs.spec.http?.[index]?.name });
    ops.push({ op: "remove", path });
  }
  const annotation = vs.metadata.annotations?.[PREVIEW_ANNOTATION];
  if (annotation !== undefined) {
    const path = pointer("metadata", "annotations", PREVIEW_ANNOTATION);
    ops.push({ op: "test", path, value: annotation }, { op: "remove", path });
  }
  return { ops, removed };
}

/** Recorded routes' indices as they are once the routes at `removed` are gone. */
export function shiftOriginal(
  original: readonly OriginalRoute[],
  removed: readonly number[],
): OriginalRoute[] {
  if (removed.length === 0) return [...original];
  return original.map((o) => ({ ...o, index: o.index - removed.filter((r) => r < o.index).length }));
}

type Match = Record<string, unknown> & {
  headers?: Record<string, unknown>;
  withoutHeaders?: Record<string, unknown>;
  uri?: Record<string, unknown>;
};

const asMatch = (m: unknown): Match => (typeof m === "object" && m !== null ? (m as Match) : {});

function mentionsHeader(m: Match, header: string): boolean {
  const names = [...Object.keys(m.headers ?? {}), ...Object.keys(m.withoutHeaders ?? {})];
  return names.some((n) => n.toLowerCase() === header);
}

/** Whether match entry `earlier` takes every request `preview` takes (each of its conditions is implied). */
function covers(earlier: Match, preview: Match): boolean {
  return Object.entries(earlier).every(([key, condition]) => {
    if (key === "name" || key === "statPrefix") return true;
    const own = preview[key];
    if (key === "headers")
      return Object.entries(condition as Record<string, unknown>).every(
        ([h, c]) => JSON.stringify(preview.headers?.[h]) === JSON.stringify(c),
      );
    if (key === "uri" && typeof (condition as Match).prefix === "string") {
      const prefix = (own as Match | undefined)?.prefix;
      const sameCase = earlier.ignoreUriCase === preview.ignoreUriCase;
      return (
        typeof prefix === "string" && sameCase && prefix.startsWith((condition as Match).prefix as string)
      );
    }
    return JSON.stringify(own) === JSON.stringify(condition);
  });
}

/** Why an earlier route would take the preview's requests, or undefined when none would. */
function shadowedBy(
  earlier: HttpRoute,
  index: number,
  previewMatch: Match[],
  header: string,
): string | undefined {
  const what = describeRoute(earlier, index);
  if (earlier.delegate !== undefined)
    return `${what} delegates to another VirtualService, whose routes the action cannot see ahead of the preview`;
  const entries = (earlier.match ?? []).map(asMatch);
  if (entries.length === 0) return `${what}, ahead of it, has no match: it takes every request first`;
  if (entries.some((m) => mentionsHeader(m, header)))
    return `${what}, ahead of it, matches on the header ${header} itself`;
  if (previewMatch.some((p) => entries.some((e) => covers(e, p))))
    return `${what}, ahead of it, matches every request the preview would (its match is as wide or wider)`;
  return undefined;
}

/** The preview's match: each of the managed route's match entries (hosts, gateways, uris kept) plus the header. */
function previewMatch(route: HttpRoute, where: string, request: PreviewRequest): Match[] {
  const header = { [request.header]: { exact: request.value } };
  const entries = (route.match ?? []).map(asMatch);
  if (entries.length === 0) return [{ headers: header }];
  return entries.map((entry) => {
    if (mentionsHeader(entry, request.header))
      throw new MeshError(
        `preview refused: ${where} already matches on the header ${request.header}; choose another with 'preview-header'`,
      );
    const { name: _, ...conditions } = entry;
    return { ...conditions, headers: { ...(entry.headers ?? {}), ...header } };
  });
}

/** The preview route for one managed route: its other fields copied, the canary alone as destination. */
function previewRoute(
  route: HttpRoute,
  m: ManagedRoute,
  target: Target,
  name: string,
  match: Match[],
): HttpRoute {
  const copied = Object.fromEntries(Object.entries(route).filter(([key]) => !NOT_COPIED.has(key)));
  const stable = structuredClone((route.route ?? [])[m.stableIndex] as RouteDestination);
  const destination = { ...stable.destination };
  if (target.canary.subset !== undefined) destination.subset = target.canary.subset;
  else delete destination.subset;
  if (target.canary.host !== undefined) destination.host = target.canary.host;
  const { weight: _, ...rest } = stable;
  return { name, match, ...copied, route: [{ ...rest, destination }] };
}

/**
 * The operations that put one preview route just ahead of each managed route, refusing (naming
 * why) where that is not safe: a delegating route, an earlier route that would take the preview's
 * requests, a managed route that already matches on the header, routes chosen by position (the
 * insert would move them), a managed route already sending traffic to the canary, or a preview
 * already there for other requests.
 */
export function planPreview(
  vs: VirtualService,
  managed: readonly ManagedRoute[],
  target: Target,
  request: PreviewRequest,
  positional: boolean,
): { ops: PatchOperation[]; names: string[] } {
  const namespace = vs.metadata.namespace ?? "default";
  const where = `VirtualService ${namespace}/${vs.metadata.name}`;
  const http = vs.spec.http ?? [];
  const existing = previewRouteIndices(vs, target);
  if (existing.length > 0) {
    const same = existing.every((i) => carriesHeader(http[i], request.header, request.value));
    if (same) return { ops: [], names: existing.map((i) => http[i]?.name as string) };
    const other = readPreview(vs, target);
    throw new MeshError(
      `preview refused: ${where} already has a preview route (${describeRoute(http[existing[0] as number] as HttpRoute, existing[0] as number)}${other?.header ? ` for ${other.header}: ${other.value}` : ""}), from another rollout; command: rollback removes it`,
    );
  }
  if (positional)
    throw new MeshError(
      `preview refused: the 'routes' input selects routes of ${where} by position (#N), and the preview route inserted ahead would move them; select them by name`,
    );
  const delegating = http.findIndex((r) => r.delegate !== undefined);
  if (delegating >= 0)
    throw new MeshError(
      `preview refused: ${describeRoute(http[delegating] as HttpRoute, delegating)} of ${where} delegates to another VirtualService; a preview there cannot be placed safely`,
    );
  const planned = managed.map((m, k) => {
    const route = http[m.index] as HttpRoute;
    const canary = classify(route, m.index, target, namespace)?.canaryIndex;
    if (canary !== undefined && ((route.route ?? [])[canary]?.weight ?? 0) > 0)
      throw new MeshError(
        `preview refused: ${describeRoute(route, m.index)} of ${where} already sends traffic to the canary; a preview comes before the rollout (command: rollback first)`,
      );
    const match = previewMatch(route, `${describeRoute(route, m.index)} of ${where}`, request);
    for (let i = 0; i < m.index; i++) {
      const why = shadowedBy(http[i] as HttpRoute, i, match, request.header);
      if (why)
        throw new MeshError(`preview refused: for ${describeRoute(route, m.index)} of ${where}, ${why}`);
    }
    const name = managed.length === 1 ? PREVIEW_ROUTE_NAME : `${PREVIEW_ROUTE_NAME}-${k + 1}`;
    return { index: m.index, route: previewRoute(route, m, target, name, match) };
  });
  const ops: PatchOperation[] = [{ op: "test", path: pointer("spec", "http"), value: http }];
  for (const p of [...planned].sort((a, b) => b.index - a.index))
    ops.push({ op: "add", path: pointer("spec", "http", p.index), value: p.route });
  return { ops, names: planned.map((p) => p.route.name as string) };
}

/** The annotation's text for a preview added now. */
export function previewRecord(request: PreviewRequest, at: Date): string {
  return JSON.stringify({ ...request, at: at.toISOString() });
}

/**
 * The preview as the routes show it, or undefined when there is none. The annotation is believed
 * only where it agrees with the routes (the same header and value) and is well formed: it says
 * which rollout the preview is for and since when, never what to route.
 */
export function readPreview(vs: VirtualService, target: Target): PreviewView | undefined {
  const http = vs.spec.http ?? [];
  const indices = previewRouteIndices(vs, target);
  if (indices.length === 0) return undefined;
  const routes = indices.map((i) => http[i]?.name as string);
  let record: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(vs.metadata.annotations?.[PREVIEW_ANNOTATION] ?? "null");
    record = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    record = undefined;
  }
  const { header, value, rolloutId, at } = record ?? {};
  const agrees =
    typeof header === "string" &&
    typeof value === "string" &&
    indices.every((i) => carriesHeader(http[i], header, value));
  const since = typeof at === "string" ? Date.parse(at) : Number.NaN;
  if (!agrees) return { routes, ...previewHeaderOf(http[indices[0] as number]) };
  if (typeof rolloutId !== "string" || !Number.isFinite(since)) return { routes, header, value };
  return { routes, header, value, rolloutId, since: new Date(since).toISOString() };
}
