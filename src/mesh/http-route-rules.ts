/**
 * Pure reading of the user's Gateway API HTTPRoute, as routes.ts reads a VirtualService: which
 * rules the action manages (by name, by position, or the catch-all rule to stable), what each sends
 * to stable and the canary, and how to name them. The versions are two Services (the `stable-host`
 * and `canary-host` inputs), each a backendRef. Gateway API weights are proportional (default 1),
 * so a rule's canary weight is its share in percent, not a field's value.
 */
import type { BackendRef, GatewayHttpRoute, HttpRouteRule } from "../rollout/model/http-route.ts";
import { type OriginalRoute, routePosition } from "../rollout/model/routes.ts";
import { MeshError } from "./errors.ts";
import { type ManagedRoute, originalOf, sameHost, type Target } from "./routes.ts";

export const where = (route: GatewayHttpRoute): string =>
  `HTTPRoute ${route.metadata.namespace ?? "default"}/${route.metadata.name}`;

/** A backendRef's weight as the API server defaults it. */
export const weightOf = (ref: BackendRef | undefined): number => ref?.weight ?? 1;

/** Whether a backendRef is the Service `want.host` names (a Service in the route's namespace by default). */
export function backendIs(ref: BackendRef, want: Target["stable"], namespace: string): boolean {
  if ((ref.group ?? "") !== "" || (ref.kind ?? "Service") !== "Service" || want.host === undefined)
    return false;
  return sameHost(`${ref.name}.${ref.namespace ?? namespace}`, want.host, namespace);
}

export function describeRule(rule: HttpRouteRule, index: number): string {
  return rule.name ? `rule "${rule.name}"` : `rule #${index}`;
}

function describeBackend(ref: BackendRef): string {
  const kind =
    (ref.group ?? "") === "" && (ref.kind ?? "Service") === "Service" ? "" : `${ref.kind ?? "Service"} `;
  return `${kind}${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;
}

function selectsRule(selector: string, rule: HttpRouteRule, index: number): boolean {
  const position = routePosition(selector);
  return position === undefined ? rule.name === selector : position === index;
}

/** The rule's backends as stable and canary; undefined when it routes anywhere else (or nowhere). */
export function classifyRule(
  rule: HttpRouteRule,
  index: number,
  target: Target,
  namespace: string,
): ManagedRoute | undefined {
  let stableIndex: number | undefined;
  let canaryIndex: number | undefined;
  for (const [i, ref] of (rule.backendRefs ?? []).entries()) {
    if (backendIs(ref, target.stable, namespace) && stableIndex === undefined) stableIndex = i;
    else if (backendIs(ref, target.canary, namespace) && canaryIndex === undefined) canaryIndex = i;
    else return undefined;
  }
  if (stableIndex === undefined) return undefined;
  return { index, name: rule.name, stableIndex, canaryIndex };
}

/** A rule that takes every request: no matches (the API server's default is path prefix "/"), or a match on path prefix "/" alone. */
export function ruleCatchesAll(rule: HttpRouteRule): boolean {
  if (!rule.matches || rule.matches.length === 0) return true;
  return rule.matches.some((m) => {
    if (typeof m !== "object" || m === null) return false;
    const { path, ...rest } = m as { path?: { type?: string; value?: string } };
    if (Object.keys(rest).length > 0) return false;
    return (
      path === undefined || ((path.type ?? "PathPrefix") === "PathPrefix" && (path.value ?? "/") === "/")
    );
  });
}

const listRules = (rules: readonly HttpRouteRule[]) =>
  rules.map((r, i) => r.name ?? `#${i} (unnamed)`).join(", ");

/** The managed rules: those `selectors` name, or every catch-all rule whose backends are stable (and the canary). */
export function findManagedRules(
  route: GatewayHttpRoute,
  target: Target,
  selectors: readonly string[],
): ManagedRoute[] {
  const namespace = route.metadata.namespace ?? "default";
  const rules = route.spec.rules ?? [];
  if (selectors.length > 0) {
    const managed = selectors.map((selector) => {
      const index = rules.findIndex((r, i) => selectsRule(selector, r, i));
      if (index < 0) {
        const what =
          routePosition(selector) === undefined ? `no rule named "${selector}"` : `no rule ${selector}`;
        throw new MeshError(
          `${where(route)} has ${what} (it has ${listRules(rules) || "no rules"}); rule names need Gateway API v1.2 or later, else select by position #N`,
        );
      }
      const rule = rules[index] as HttpRouteRule;
      const m = classifyRule(rule, index, target, namespace);
      if (!m) {
        const to = (rule.backendRefs ?? []).map(describeBackend).join(", ");
        throw new MeshError(
          `${where(route)}: ${describeRule(rule, index)} routes to ${to || "nothing"}, not to the stable Service ${target.stable.host} (the 'stable-host' input) alone`,
        );
      }
      return m;
    });
    const twice = managed.find((m, i) => managed.findIndex((o) => o.index === m.index) !== i);
    if (twice)
      throw new MeshError(
        `the 'routes' input selects ${describeRule(rules[twice.index] as HttpRouteRule, twice.index)} of ${where(route)} twice`,
      );
    return managed;
  }
  const managed = rules.flatMap((rule, index) =>
    ruleCatchesAll(rule) ? (classifyRule(rule, index, target, namespace) ?? []) : [],
  );
  if (managed.length > 0) return managed;
  const withMatch = rules.flatMap((rule, index) =>
    !ruleCatchesAll(rule) && classifyRule(rule, index, target, namespace) ? [rule.name ?? `#${index}`] : [],
  );
  const hint =
    (withMatch.length > 0
      ? `; rules with matches that do: select them with routes: "${withMatch.join(", ")}"`
      : "") + otherKinds(rules, target);
  throw new MeshError(
    `${where(route)} has no rule without matches (or with only path prefix "/") whose only backendRef is the stable Service ${target.stable.host} (the 'stable-host' input); select the rules to manage with the 'routes' input, by name or by position #N (it has ${listRules(rules) || "no rules"})${hint}`,
  );
}

/**
 * backendRefs named like a version's Service that are not a core Service (`group: core`, a
 * ServiceImport): Istio resolves such a ref as that kind or not at all, so the action does not
 * take it for the Service.
 */
function otherKinds(rules: readonly HttpRouteRule[], target: Target): string {
  const names = [target.stable.host, target.canary.host].map((h) => h?.split(".")[0]);
  const odd = rules.flatMap((r) =>
    (r.backendRefs ?? []).filter(
      (ref) =>
        names.includes(ref.name) && ((ref.group ?? "") !== "" || (ref.kind ?? "Service") !== "Service"),
    ),
  );
  if (odd.length === 0) return "";
  const named = (refs: readonly BackendRef[]) =>
    refs.map((ref) => `${ref.name} (group "${ref.group ?? ""}", kind ${ref.kind ?? "Service"})`).join(", ");
  // `group: core` is a Service written as Linkerd reads it; any other group or kind is another object.
  const misspelt = odd.filter((ref) => ref.group === "core" && (ref.kind ?? "Service") === "Service");
  const other = odd.filter((ref) => !misspelt.includes(ref));
  const parts = [
    misspelt.length > 0
      ? `backendRefs ${named(misspelt)} say group "core", which the Gateway API and Istio do not resolve (Linkerd does): the core group is ""; write group: "" or leave group out`
      : "",
    other.length > 0
      ? `backendRefs ${named(other)} are not Services of this cluster: the action splits between two Services, one per version, whose pods it checks; route to the versions' Services (the 'stable-host' and 'canary-host' inputs) instead`
      : "",
  ];
  return `; ${parts.filter(Boolean).join("; ")}`;
}

/** The canary's share of a managed rule in percent (to a millionth: 1 of 1000 is 0.1). */
export function ruleCanaryWeight(route: GatewayHttpRoute, m: ManagedRoute): number {
  if (m.canaryIndex === undefined) return 0;
  const refs = route.spec.rules?.[m.index]?.backendRefs ?? [];
  const canary = weightOf(refs[m.canaryIndex]);
  const total = canary + weightOf(refs[m.stableIndex]);
  return total > 0 ? Number(((canary * 100) / total).toFixed(6)) : 0;
}

export function originalRules(route: GatewayHttpRoute, managed: readonly ManagedRoute[]): OriginalRoute[] {
  return originalOf(managed, (index) => route.spec.rules?.[index]?.backendRefs ?? []);
}

/** Rules outside `managed` that send traffic to stable or the canary. */
export function unmanagedRulesTo(
  route: GatewayHttpRoute,
  target: Target,
  managed: readonly ManagedRoute[],
): Array<{ route: string; to: Array<"stable" | "canary"> }> {
  const namespace = route.metadata.namespace ?? "default";
  const ours = new Set(managed.map((m) => m.index));
  return (route.spec.rules ?? []).flatMap((rule, index) => {
    if (ours.has(index)) return [];
    const to = (["stable", "canary"] as const).filter((side) =>
      (rule.backendRefs ?? []).some((ref) => backendIs(ref, target[side], namespace)),
    );
    return to.length > 0 ? [{ route: describeRule(rule, index), to }] : [];
  });
}

/**
 * The rules a rollback puts on stable: the managed ones (as far as they still exist) and every other
 * rule to stable and the canary with a canary share above 0.
 */
export function rollbackRules(
  route: GatewayHttpRoute,
  target: Target,
  selectors: readonly string[],
): ManagedRoute[] {
  const namespace = route.metadata.namespace ?? "default";
  return (route.spec.rules ?? []).flatMap((rule, index) => {
    const m = classifyRule(rule, index, target, namespace);
    if (!m) return [];
    const selected =
      selectors.length > 0 ? selectors.some((s) => selectsRule(s, rule, index)) : ruleCatchesAll(rule);
    return selected || ruleCanaryWeight(route, m) > 0 ? [m] : [];
  });
}

/** `rule "primary": stable 99.9, canary 0.1` for each rule with a canary backend. */
export function describeRuleTraffic(route: GatewayHttpRoute, target: Target): string {
  const namespace = route.metadata.namespace ?? "default";
  const lines = (route.spec.rules ?? []).flatMap((rule, index) => {
    const m = classifyRule(rule, index, target, namespace);
    if (!m || m.canaryIndex === undefined) return [];
    const canary = ruleCanaryWeight(route, m);
    return [`${describeRule(rule, index)}: stable ${Number((100 - canary).toFixed(6))}, canary ${canary}`];
  });
  return lines.length > 0 ? lines.join("; ") : "no rule has a canary backend (all traffic to stable)";
}
