/**
 * Finds, through the Kubernetes API, what Istio would use for a route's host: the Kubernetes
 * Service or the ServiceEntry that defines it (and so its pods), and the DestinationRule that
 * applies to it. The matching rules themselves are pure, in src/mesh/istio-hosts.ts.
 *
 * DestinationRule lookup order, as istio.io's "Traffic Management Best Practices" (Cross-namespace
 * configuration sharing) states and pilot/pkg/model/push_context.go `destinationRule()` does: the
 * client's namespace (any rule visible there), then the service's namespace, then the root
 * namespace (meshConfig.rootNamespace, istio-system by default), each of the last two only for
 * rules exported to the client's namespace; the first namespace with a matching rule wins. The
 * clients here are the VirtualService's: the action takes its namespace as theirs.
 *
 * A namespace the action may not read (403: its RBAC is usually one namespace's Role) is skipped
 * with a warning that says what would go unseen there; it is never read when an earlier namespace
 * already decided.
 */
import { forbiddenAsWarning } from "./errors.ts";
import {
  distinct,
  kubernetesServiceOf,
  type MergedRule,
  mostSpecific,
  qualifyHost,
  ruleForHost,
  visibleEntries,
  visibleRules,
} from "./istio-hosts.ts";
import type { MeshApi } from "./kubernetes.ts";

export interface LookupContext {
  api: MeshApi;
  /** The VirtualService's namespace, taken as the client's namespace. */
  clientNamespace: string;
  rootNamespace: string;
  signal?: AbortSignal;
  /** Receives one line for each namespace that could not be read. */
  warnings: string[];
}

/** Where a host's pods are and how Istio's metrics name it. */
export interface ResolvedHost {
  /** As the route writes it. */
  host: string;
  /** The name Istio knows it by (a Service's FQDN, or the route's host for a ServiceEntry). */
  fqdn: string;
  /** The namespace of its pods, which is Istio's "service namespace" for lookups. */
  namespace: string;
  /** Labels that select its pods (empty when a Service has no selector). */
  selector: Record<string, string>;
  /** destination_service_name / destination_service_namespace in Istio's metrics. */
  metrics: { name: string; namespace: string };
  /** What defines it: `Service prod/reviews` or `ServiceEntry shop/payments`. */
  source: string;
}

export class HostProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostProblem";
  }
}

/** Lists one kind in one namespace; a 403 becomes a warning and undefined. */
async function listOrWarn<T>(
  ctx: LookupContext,
  namespace: string,
  kind: string,
  host: string,
  list: () => Promise<T[]>,
): Promise<T[] | undefined> {
  return forbiddenAsWarning(
    list,
    ctx.warnings,
    `could not list ${kind}s in namespace ${namespace} (forbidden): a ${kind} there for host ${host} would not be seen; grant list on ${kind.toLowerCase()}s.networking.istio.io in ${namespace} to include it (see manifests/rbac.yaml)`,
    undefined,
  );
}

export interface RuleLookup {
  rule?: MergedRule;
  /** The namespaces looked in, in order, and those that could not be read. */
  searched: string[];
  unreadable: string[];
}

/** The DestinationRule Istio applies to `fqdn` (whose service lives in `serviceNamespace`). */
export async function findDestinationRule(
  ctx: LookupContext,
  fqdn: string,
  serviceNamespace: string,
): Promise<RuleLookup> {
  const searched: string[] = [];
  const unreadable: string[] = [];
  for (const namespace of distinct([ctx.clientNamespace, serviceNamespace, ctx.rootNamespace])) {
    searched.push(namespace);
    const rules = await listOrWarn(ctx, namespace, "DestinationRule", fqdn, () =>
      ctx.api.listDestinationRules(namespace, ctx.signal),
    );
    if (!rules) {
      unreadable.push(namespace);
      continue;
    }
    const rule = ruleForHost(visibleRules(rules, namespace, ctx.clientNamespace), namespace, fqdn);
    if (rule) return { rule, searched, unreadable };
  }
  return { searched, unreadable };
}

/**
 * The Service or ServiceEntry behind a route's host. A Kubernetes name (`reviews`, `reviews.prod`,
 * ...) is first its Service; a host without one is looked up among the ServiceEntries of the
 * client's, the named service's and the root namespace, honouring exportTo. Throws HostProblem
 * with the reason when the host has no pods the action can check.
 */
export async function resolveHost(ctx: LookupContext, host: string): Promise<ResolvedHost> {
  const fqdn = qualifyHost(host, ctx.clientNamespace);
  const service = kubernetesServiceOf(fqdn);
  if (service) {
    const selector = await ctx.api.getServiceSelector(service.namespace, service.name, ctx.signal);
    if (selector !== undefined) {
      return {
        host,
        fqdn,
        namespace: service.namespace,
        selector,
        metrics: service,
        source: `Service ${service.namespace}/${service.name}`,
      };
    }
  }
  // Istio names a ServiceEntry host exactly as written; a route's dotted name is also taken literally.
  const names = distinct([host.includes(".") ? host : fqdn, fqdn]);
  const namespaces = distinct([ctx.clientNamespace, service?.namespace, ctx.rootNamespace]);
  const unreadable: string[] = [];
  for (const namespace of namespaces) {
    const entries = await listOrWarn(ctx, namespace, "ServiceEntry", host, () =>
      ctx.api.listServiceEntries(namespace, ctx.signal),
    );
    if (!entries) {
      unreadable.push(namespace);
      continue;
    }
    const visible = visibleEntries(entries, namespace, ctx.clientNamespace);
    const [match] = mostSpecific(visible, (e) => e.spec.hosts ?? [], names);
    if (!match) continue;
    const entry = match.object;
    const source = `ServiceEntry ${namespace}/${entry.metadata.name}`;
    const labels = entry.spec.workloadSelector?.labels ?? {};
    if (Object.keys(labels).length === 0) {
      const what = entry.spec.endpoints?.length
        ? "lists its endpoints instead of selecting workloads"
        : `has no workloadSelector (location ${entry.spec.location ?? "MESH_EXTERNAL"}: its endpoints are outside the mesh)`;
      throw new HostProblem(
        `host ${host} is defined by ${source}, which ${what}: there are no pods to check the readiness of, and Istio's metrics carry no version label the action can select each version by; if both versions' requests can still be told apart in Prometheus, set canary-selector and stable-selector (for example destination_workload="payments-v2")`,
      );
    }
    // Istio's metrics name a ServiceEntry's service by its host, not an object name:
    // destination_service_name="www.example.com" (istio/istio#52897, a ServiceEntry host's series).
    // Its namespace: since Istio 1.23 the ServiceEntry's namespace (#52897; "unknown" before, as
    // source-reported series showed); destination-reported series set it to the serving workload's
    // namespace (istio/istio#49842: "service namespace == workload namespace"), which a
    // workloadSelector keeps in the ServiceEntry's namespace. A wildcard host was reported as `*`
    // by some proxy versions (istio/istio#44602): not certain, so canary-selector remains the way out.
    return {
      host,
      // The route's own name for rule lookups: the entry's host may be a wildcard.
      fqdn: names[0] as string,
      namespace,
      selector: labels,
      metrics: { name: match.host, namespace },
      source,
    };
  }
  const where = namespaces.join(", ");
  const cannot =
    unreadable.length > 0
      ? `; namespace${unreadable.length > 1 ? "s" : ""} ${unreadable.join(", ")} could not be read (forbidden)`
      : "";
  throw new HostProblem(
    service
      ? `host ${host}: no Service ${service.namespace}/${service.name}, and no ServiceEntry for it in namespaces ${where} exported to ${ctx.clientNamespace}${cannot}`
      : `host ${host}: no ServiceEntry for it in namespaces ${where} exported to ${ctx.clientNamespace}${cannot}`,
  );
}
