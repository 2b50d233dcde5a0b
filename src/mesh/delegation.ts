/**
 * VirtualService delegation (Istio's `delegate`): a root VirtualService, usually a gateway's, hands
 * the requests one http route matches to another VirtualService, the delegate, whose routes carry
 * the destinations and weights. The action manages the delegate as any VirtualService; naming the
 * root is refused with the delegate to name instead. Pure: reads the root as the cluster holds it.
 */
import type { HttpRoute, VirtualService } from "../rollout/model/virtual-service.ts";

/** One http route of a root that delegates, and the delegate it names. */
export interface Delegation {
  index: number;
  name?: string;
  delegate: { name: string; namespace: string };
}

/**
 * The delegate an http route names, or undefined. Istio: `delegate.namespace` defaults to the
 * root's namespace; a delegating route has no `route` of its own.
 */
export function delegateOf(route: HttpRoute, rootNamespace: string): Delegation["delegate"] | undefined {
  const delegate = route.delegate as { name?: unknown; namespace?: unknown } | undefined;
  if (typeof delegate !== "object" || delegate === null || typeof delegate.name !== "string")
    return undefined;
  const namespace =
    typeof delegate.namespace === "string" && delegate.namespace ? delegate.namespace : rootNamespace;
  return { name: delegate.name, namespace };
}

/** Every http route of the VirtualService that delegates. */
function delegations(vs: VirtualService): Delegation[] {
  const namespace = vs.metadata.namespace ?? "default";
  return (vs.spec.http ?? []).flatMap((route, index) => {
    const delegate = delegateOf(route, namespace);
    return delegate ? [{ index, name: route.name, delegate }] : [];
  });
}

const routeName = (d: Delegation) => (d.name ? `http route "${d.name}"` : `http route #${d.index}`);
const inputsFor = (d: Delegation) =>
  `virtual-service: ${d.delegate.name}, namespace: ${d.delegate.namespace}`;

/** Why one delegating route cannot be managed here, and the inputs that manage its delegate. */
export function delegatingRouteProblem(where: string, d: Delegation): string {
  return `${where}: ${routeName(d)} delegates to VirtualService ${d.delegate.namespace}/${d.delegate.name} (delegate), which holds its destinations and weights; the root has none to shift. Manage the delegate instead: ${inputsFor(d)}`;
}

/**
 * The refusal for a root whose routes delegate and none routes to stable itself: each delegate
 * and the inputs that name it. Undefined when no route delegates.
 */
export function rootVirtualServiceProblem(where: string, vs: VirtualService): string | undefined {
  const all = delegations(vs);
  if (all.length === 0) return undefined;
  const listed = all
    .map((d) => `${routeName(d)} to VirtualService ${d.delegate.namespace}/${d.delegate.name}`)
    .join(", ");
  const first = all[0] as Delegation;
  return `${where} is a root VirtualService whose routes delegate (${listed}): the delegates hold the destinations and weights, so name the one that routes to stable, for example ${inputsFor(first)}`;
}
