/**
 * The `virtual-service` and `routes` inputs together: one or more VirtualServices moved in lockstep
 * (for example the ingress gateway's and the mesh's for one service, as Argo Rollouts takes a list),
 * and which http routes of each are managed. Pure: reports problems through `fail`.
 */
import type { VirtualServiceRef } from "../rollout/model/routes.ts";
import { DNS1123_LABEL, DNS1123_SUBDOMAIN, type Fail, listOf, parseRoutes, show } from "./parsers.ts";

function parseEntry(
  entry: string,
  namespace: string,
  fail: Fail,
): { namespace: string; name: string } | undefined {
  const parts = entry.split("/");
  const [ns, name] = parts.length === 2 ? parts : [namespace, parts[0]];
  if (parts.length > 2 || ns === undefined || name === undefined) {
    fail("virtual-service", `${show(entry)} is not a VirtualService: write its name, or namespace/name`);
    return undefined;
  }
  if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253) {
    fail(
      "virtual-service",
      `${show(name)} is not a Kubernetes name (lowercase letters, digits, '-' and '.', at most 253 characters)`,
    );
    return undefined;
  }
  if (parts.length === 2 && (!DNS1123_LABEL.test(ns) || ns.length > 63)) {
    fail("virtual-service", `${show(ns)} in ${show(entry)} is not a namespace name`);
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
): VirtualServiceRef[] {
  const entries = listOf(vsText);
  if (entries.length === 0) {
    fail(
      "virtual-service",
      "is required: the name of the VirtualService to manage (or several, comma separated, moved together)",
    );
    return [];
  }
  const refs = entries.flatMap((entry) => {
    const parsed = parseEntry(entry, namespace, fail);
    return parsed ? [{ ...parsed, entry }] : [];
  });
  const keys = refs.map((r) => `${r.namespace}/${r.name}`);
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice) fail("virtual-service", `${show(vsText)} names VirtualService ${twice} twice`);

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
        `${show(entry)} names VirtualService ${show(qualifier)}, which is not in virtual-service (${entries.join(", ")}); write <virtual-service>:<route>, or the route alone for every VirtualService`,
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
