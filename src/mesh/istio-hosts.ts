/**
 * Pure host resolution as Istio does it, for preflight: the Kubernetes Service a route's host names,
 * whether a DestinationRule or ServiceEntry in one namespace is visible from another (`exportTo`),
 * and which of them applies to a host (the most specific host wins; rules for one host in one
 * namespace are merged). The I/O that feeds these is src/mesh/istio-lookup.ts.
 *
 * What this relies on, from Istio's own source (pilot/pkg/model/push_context.go, `destinationRule`,
 * `setDestinationRules`, `getExportedDestinationRuleFromNamespace`) and istio.io's "Traffic
 * Management Best Practices" (Cross-namespace configuration):
 * - a host is matched against the rules' hosts with `MostSpecificHostMatch`: an exact host beats
 *   any wildcard, and the longest matching wildcard (`*.prod.svc.cluster.local` over `*.local`
 *   over `*`) beats shorter ones;
 * - a rule whose `exportTo` is absent or holds `*` is visible everywhere, `.` (or its own namespace)
 *   only in its own namespace, otherwise in the namespaces listed (`~`: nowhere);
 * - a DestinationRule with a `workloadSelector` applies only to the workloads it selects and is
 *   never exported;
 * - several DestinationRules for one host in one namespace are merged oldest first: a subset name
 *   already defined keeps its first definition.
 * Not modelled: meshConfig's defaultDestinationRuleExportTo / defaultServiceExportTo (taken as `*`,
 * Istio's default) and a cluster domain other than cluster.local.
 */
import type { ObjectMeta } from "../rollout/model/virtual-service.ts";
import type { DestinationRule, ServiceEntry } from "./types.ts";

export const CLUSTER_DOMAIN = "cluster.local";

/**
 * The Kubernetes name of a route's host: `reviews` (in `namespace`), `reviews.prod`,
 * `reviews.prod.svc` and `reviews.prod.svc.cluster.local` are all the Service prod/reviews.
 * Wildcards and other names are kept as written. (Istio itself expands only a name without dots,
 * ResolveShortnameToFQDN in pilot/pkg/model/config.go; the action also takes the forms Kubernetes
 * DNS resolves, so that a route written `reviews.prod` is checked against that Service.)
 */
export function qualifyHost(host: string, namespace: string): string {
  if (host.startsWith("*")) return host;
  const parts = host.split(".");
  if (parts.length === 1) return `${host}.${namespace}.svc.${CLUSTER_DOMAIN}`;
  if (parts.length === 2) return `${host}.svc.${CLUSTER_DOMAIN}`;
  if (parts.length === 3 && parts[2] === "svc") return `${host}.${CLUSTER_DOMAIN}`;
  return host;
}

/** `reviews.prod.svc.cluster.local` -> the Service prod/reviews; undefined for any other name. */
export function kubernetesServiceOf(fqdn: string): { name: string; namespace: string } | undefined {
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(fqdn);
  return m ? { name: m[1] as string, namespace: m[2] as string } : undefined;
}

/** How specifically `pattern` matches `host`: undefined when it does not, exact beats every wildcard. */
export function matchSpecificity(pattern: string, host: string): number | undefined {
  if (pattern === host) return Number.POSITIVE_INFINITY;
  // `*` matches every host; `*.example.com` every host ending in `.example.com`.
  if (pattern.startsWith("*") && host.endsWith(pattern.slice(1))) return pattern.length;
  return undefined;
}

/** Whether an object with this `exportTo`, in namespace `owner`, is visible to clients in `client`. */
export function isExportedTo(
  exportTo: readonly string[] | undefined,
  owner: string,
  client: string,
): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  if (exportTo.includes("~")) return false;
  return exportTo.some((e) => e === "*" || e === client || (e === "." && owner === client));
}

const created = (m: ObjectMeta) => String(m.creationTimestamp ?? "");

/** Oldest first, then by name: the order in which Istio merges configuration (sortConfigByCreationTime). */
function byAge<T extends { metadata: ObjectMeta }>(a: T, b: T): number {
  return (
    created(a.metadata).localeCompare(created(b.metadata)) || a.metadata.name.localeCompare(b.metadata.name)
  );
}

/** The objects whose hosts match one of `hosts` most specifically, oldest first, with the host matched. */
export function mostSpecific<T extends { metadata: ObjectMeta }>(
  objects: readonly T[],
  hostsOf: (o: T) => readonly string[],
  hosts: readonly string[],
): Array<{ object: T; host: string }> {
  let best = -1;
  let found: Array<{ object: T; host: string }> = [];
  for (const object of [...objects].sort(byAge)) {
    for (const pattern of hostsOf(object)) {
      const score = Math.max(...hosts.map((h) => matchSpecificity(pattern, h) ?? -1));
      if (score < 0 || score < best) continue;
      if (score > best) found = [];
      best = score;
      if (!found.some((f) => f.object === object)) found.push({ object, host: pattern });
    }
  }
  return found;
}

/** The DestinationRules of one namespace that apply to clients in `client`, as Istio indexes them. */
export function visibleRules(
  rules: readonly DestinationRule[],
  namespace: string,
  client: string,
): DestinationRule[] {
  return rules.filter(
    (r) => r.spec.workloadSelector === undefined && isExportedTo(r.spec.exportTo, namespace, client),
  );
}

/** The ServiceEntries of one namespace visible to clients in `client`. */
export function visibleEntries(
  entries: readonly ServiceEntry[],
  namespace: string,
  client: string,
): ServiceEntry[] {
  return entries.filter((e) => isExportedTo(e.spec.exportTo, namespace, client));
}

export interface MergedRule {
  /** `ns/name` of every rule merged, oldest first. */
  names: string[];
  host: string;
  subsets: Array<{ name: string; labels?: Record<string, string> }>;
}

/**
 * The DestinationRule that applies to `fqdn` among the visible rules of one namespace (short hosts
 * in a rule are in the rule's namespace), merged as Istio merges rules for one host; undefined when
 * none matches.
 */
export function ruleForHost(
  rules: readonly DestinationRule[],
  namespace: string,
  fqdn: string,
): MergedRule | undefined {
  const matched = mostSpecific(rules, (r) => [qualifyHost(r.spec.host, namespace)], [fqdn]);
  if (matched.length === 0) return undefined;
  const subsets: MergedRule["subsets"] = [];
  for (const { object } of matched) {
    for (const subset of object.spec.subsets ?? [])
      if (!subsets.some((s) => s.name === subset.name)) subsets.push(subset);
  }
  return {
    names: matched.map((m) => `${namespace}/${m.object.metadata.name}`),
    host: matched[0]?.host as string,
    subsets,
  };
}

/** A list for messages without repeats: `shop, istio-system`. */
export function distinct(values: ReadonlyArray<string | undefined>): string[] {
  return [...new Set(values.filter((v): v is string => v !== undefined && v !== ""))];
}
