/**
 * The `virtual-service` and `routes` inputs together: one or more VirtualServices moved in lockstep
 * (for example the ingress gateway's and the mesh's for one service, as Argo Rollouts takes a list),
 * and which http routes of each are managed. Pure: reports problems through `fail`.
 */
import type { VirtualServiceRef } from "../rollout/model/routes.ts";
import { DNS1123_LABEL, DNS1123_SUBDOMAIN, type Fail, listOf, parseRoutes, show } from "./parsers.ts";

/** Which input names the objects, and their kind as messages name it. */
export interface RouteInput {
  input: "virtual-service" | "http-route";
  kind: "VirtualService" | "HTTPRoute";
}

export const VIRTUAL_SERVICE: RouteInput = { input: "virtual-service", kind: "VirtualService" };
export const HTTP_ROUTE: RouteInput = { input: "http-route", kind: "HTTPRoute" };

function parseEntry(
  entry: string,
  namespace: string,
  fail: Fail,
  { input, kind }: RouteInput,
): { namespace: string; name: string } | undefined {
  const parts = entry.split("/");
  const [ns, name] = parts.length === 2 ? parts : [namespace, parts[0]];
  if (parts.length > 2 || ns === undefined || name === undefined) {
    fail(input, `${show(entry)} is not a ${kind}: write its name, or namespace/name`);
    return undefined;
  }
  if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253) {
    fail(
      input,
      `${show(name)} is not a Kubernetes name (lowercase letters, digits, '-' and '.', at most 253 characters)`,
    );
    return undefined;
  }
  if (parts.length === 2 && (!DNS1123_LABEL.test(ns) || ns.length > 63)) {
    fail(input, `${show(ns)} in ${show(entry)} is not a namespace name`);
    return undefined;
  }
  return { namespace: ns, name };
}

/**
 * `virtual-service`: names (or namespace/name), comma or newline separated; the first is the
 * primary, whose annotation the reports and status name. `routes`: entries apply to every listed
 * VirtualService, unless qualified as `<virtual-service>:<route>` with the VirtualService as
 * written in `virtual-service`.
 */
export function parseVirtualServices(
  vsText: string,
  routesText: string,
  namespace: string,
  fail: Fail,
  named: RouteInput = VIRTUAL_SERVICE,
): VirtualServiceRef[] {
  const { input, kind } = named;
  const entries = listOf(vsText);
  if (entries.length === 0) {
    fail(
      "virtual-service",
      "is required (or http-route, for a Gateway API HTTPRoute): the name of the VirtualService to manage (or several, comma separated, moved together)",
    );
    return [];
  }
  const refs = entries.flatMap((entry) => {
    const parsed = parseEntry(entry, namespace, fail, named);
    return parsed ? [{ ...parsed, entry }] : [];
  });
  const keys = refs.map((r) => `${r.namespace}/${r.name}`);
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice) fail(input, `${show(vsText)} names ${kind} ${twice} twice`);

  const shared: string[] = [];
  const own = new Map<string, string[]>(refs.map((r) => [r.entry, []]));
  for (const entry of listOf(routesText)) {
    const colon = entry.lastIndexOf(":");
    const qualifier = colon > 0 ? entry.slice(0, colon) : undefined;
    const ref =
      qualifier === undefined ? undefined : refs.find((r) => r.entry === qualifier || r.name === qualifier);
    if (qualifier !== undefined && !ref) {
      fail(
        "routes",
        `${show(entry)} names ${kind} ${show(qualifier)}, which is not in ${input} (${entries.join(", ")}); write <${input}>:<route>, or the route alone for every ${kind}`,
      );
      continue;
    }
    if (ref) own.get(ref.entry)?.push(entry.slice(colon + 1));
    else shared.push(entry);
  }
  return refs.map((r) => ({
    ...r,
    routes: parseRoutes([...shared, ...(own.get(r.entry) ?? [])].join("\n"), fail),
  }));
}
