/**
 * The RFC 6902 JSON Patches over the user's HTTPRoute, as route-patches.ts plans them over a
 * VirtualService: each `test`s the rule's backendRefs it relies on (a concurrent edit fails the
 * patch and is re-read, never overwritten) and changes only the managed rules' weights. Gateway
 * API weights are proportional integers, so a share below 1 % is written scaled: 0.1 % is canary 1,
 * stable 999; a whole percentage is written out of 100, as people write them.
 */
import type { BackendRef, GatewayHttpRoute, HttpRouteRule } from "../rollout/model/http-route.ts";
import type { OriginalRoute, PatchOperation } from "../rollout/model/routes.ts";
import { MeshError } from "./errors.ts";
import { ruleCanaryWeight } from "./http-route-rules.ts";
import { pointer } from "./route-patches.ts";
import type { ManagedRoute, Target } from "./routes.ts";

/** The finest share written: 0.001 % (canary 1 of 100,000; Gateway API allows weights to 1,000,000). */
export const HTTP_ROUTE_DECIMALS = 3;

/** The two integer weights that give the canary `percent` of a rule: `[stable, canary]`. */
export function scaledWeights(percent: number): [number, number] {
  for (let scale = 1; scale <= 10 ** HTTP_ROUTE_DECIMALS; scale *= 10) {
    const canary = percent * scale;
    if (Math.abs(canary - Math.round(canary)) < 1e-6)
      return [100 * scale - Math.round(canary), Math.round(canary)];
  }
  throw new MeshError(
    `canary weight ${percent} % has more than ${HTTP_ROUTE_DECIMALS} decimals: an HTTPRoute's weights are integers of at most 1,000,000`,
  );
}

/** The canary's backendRef: a copy of stable's (port and filters kept) naming the canary Service. */
function canaryBackend(stable: BackendRef, target: Target, weight: number): BackendRef {
  const host = target.canary.host as string;
  const [name, namespace] = host.split(".");
  const copy: BackendRef = { ...structuredClone(stable), name: name as string, weight };
  if (namespace !== undefined && namespace !== (stable.namespace ?? undefined) && host.split(".").length > 1)
    copy.namespace = namespace;
  return copy;
}

const rulePath = (m: ManagedRoute) => pointer("spec", "rules", m.index, "backendRefs");

/** The operations that put every managed rule at `percent` % canary (above 0: a rollback is planRuleRollback). */
export function planRuleWeights(
  route: GatewayHttpRoute,
  managed: readonly ManagedRoute[],
  percent: number,
  target: Target,
): PatchOperation[] {
  if (!(percent > 0 && percent <= 100))
    throw new MeshError(`canary weight ${percent} is not above 0 and at most 100`);
  const [stableWeight, canaryWeight] = scaledWeights(percent);
  return managed.flatMap((m) => {
    const refs = route.spec.rules?.[m.index]?.backendRefs ?? [];
    const base = rulePath(m);
    const ops: PatchOperation[] = [
      { op: "test", path: base, value: refs },
      { op: "add", path: `${base}${pointer(m.stableIndex, "weight")}`, value: stableWeight },
    ];
    if (m.canaryIndex !== undefined)
      ops.push({ op: "add", path: `${base}${pointer(m.canaryIndex, "weight")}`, value: canaryWeight });
    else
      ops.push({
        op: "add",
        path: `${base}/-`,
        value: canaryBackend(refs[m.stableIndex] as BackendRef, target, canaryWeight),
      });
    return ops;
  });
}

/** A recorded original rule whose restoring certainly gives 100 % stable: same index and name, no canary share. */
function consistentOriginal(
  recorded: readonly OriginalRoute[] | undefined,
  rule: HttpRouteRule,
  m: ManagedRoute,
): OriginalRoute | undefined {
  const o = recorded?.find((r) => r.index === m.index);
  if (!o || o.name !== rule.name) return undefined;
  return o.canaryAdded || o.canaryWeight === 0 ? o : undefined;
}

/**
 * Every rule of `managed` to canary 0 / stable 100, from the rules alone: the recorded original
 * restored exactly where it is consistent with that (the canary backendRef the action added
 * removed, stable's weight as it was), else only the weights change. A rule without a canary
 * backendRef, or already at 0 %, already sends everything to stable and is left alone.
 */
export function planRuleRollback(
  route: GatewayHttpRoute,
  managed: readonly ManagedRoute[],
  recorded?: readonly OriginalRoute[],
): PatchOperation[] {
  return managed.flatMap((m) => {
    if (m.canaryIndex === undefined) return [];
    const rule = route.spec.rules?.[m.index] as HttpRouteRule;
    const refs = rule.backendRefs ?? [];
    const base = rulePath(m);
    const stablePath = `${base}${pointer(m.stableIndex, "weight")}`;
    const original = consistentOriginal(recorded, rule, m);
    const ops: PatchOperation[] = [{ op: "test", path: base, value: refs }];
    if (original?.canaryAdded) {
      if (original.stableWeight !== undefined)
        ops.push({ op: "add", path: stablePath, value: original.stableWeight });
      else if (refs[m.stableIndex]?.weight !== undefined) ops.push({ op: "remove", path: stablePath });
      ops.push({ op: "remove", path: `${base}${pointer(m.canaryIndex)}` });
      return ops;
    }
    if (ruleCanaryWeight(route, m) === 0 && weightOfStable(refs, m) > 0) return [];
    ops.push({ op: "add", path: stablePath, value: original?.stableWeight || 100 });
    ops.push({ op: "add", path: `${base}${pointer(m.canaryIndex, "weight")}`, value: 0 });
    return ops;
  });
}

const weightOfStable = (refs: readonly BackendRef[], m: ManagedRoute) => refs[m.stableIndex]?.weight ?? 1;
