/**
 * The corpus harness for published HTTPRoutes (fixtures/httproute/, http-route-expectations.ts):
 * loads a fixture into the local mesh as a cluster would hold it (harness.ts' namespaces and one
 * ready pod per Deployment; Gateways and HTTPRoutes as the emulator serves them, with istiod's
 * status), sends traffic the way the route's parents take it, runs the bundled action with
 * `http-route`, and judges the run: the outcome, that every caller reaches the canary after a
 * promotion, and that nothing of the route but the managed weights (and the canary's backendRef)
 * changed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { loadAll } from "js-yaml";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { seedObjects } from "../mesh/fixtures.ts";
import { type Mesh, startMesh } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import type { TrafficFlow } from "../mesh/traffic.ts";
import type { ActionRun } from "../support/action-runner.ts";
import { errorLines, fastInputs } from "../support/e2e.ts";
import { clusterObjects } from "./harness.ts";
import { HTTP_ROUTE_FIXTURES, type HttpRouteCase } from "./http-route-expectations.ts";

interface Ref {
  name: string;
  namespace?: string;
  weight?: number;
  kind?: string;
  group?: string;
}
interface Spec {
  parentRefs?: Ref[];
  hostnames?: string[];
  rules?: Array<{ backendRefs?: Ref[] }>;
}

const STAGES = [50, 100];

export function loadHttpRouteFixture(file: string, dir = HTTP_ROUTE_FIXTURES): KubeObject[] {
  return loadAll(readFileSync(join(dir, file), "utf8"), { filename: file }).flatMap((d) =>
    d ? [d as KubeObject] : [],
  );
}

const routeOf = (objects: readonly KubeObject[]) => objects.find((o) => o.kind === "HTTPRoute") as KubeObject;
const ns = (o: KubeObject) => o.metadata.namespace ?? "default";

/** The version label of a Service's pods (its selector's), as the simulator's metrics carry it. */
function versionOf(objects: readonly KubeObject[], service: string | undefined, fallback: string): string {
  const s = objects.find((o) => o.kind === "Service" && o.metadata.name === service);
  return (s?.spec as { selector?: Record<string, string> } | undefined)?.selector?.version ?? fallback;
}

/** Callers as the route's parents take them: through its Gateway (to its first hostname), or in the mesh to its Service. */
export function flowsOf(route: KubeObject, c: HttpRouteCase): TrafficFlow[] {
  const spec = route.spec as Spec;
  const flows = (spec.parentRefs ?? []).map((p): TrafficFlow => {
    const parentNs = p.namespace ?? ns(route);
    if ((p.kind ?? "Gateway") === "Service")
      return { source: "mesh", host: p.name, clientNamespace: parentNs, share: 1 };
    return { source: `${parentNs}/${p.name}`, host: spec.hostnames?.[0] ?? "www.example.com", share: 1 };
  });
  return flows.length > 0
    ? flows
    : [{ source: "mesh", host: c.stable ?? "unknown", clientNamespace: ns(route), share: 1 }];
}

/**
 * The case with its two Services: the header's, else as a user would name them from the route: the
 * first rule's first backendRef as stable, its second (or `<stable>-canary`) as the canary.
 */
function withServices(c: HttpRouteCase, route: KubeObject): HttpRouteCase {
  if (c.stable && c.canary) return c;
  const refs = (route.spec as Spec).rules?.find((r) => (r.backendRefs ?? []).length > 0)?.backendRefs ?? [];
  const stable = c.stable ?? refs[0]?.name ?? "unknown";
  return { ...c, stable, canary: c.canary ?? refs[1]?.name ?? `${stable}-canary` };
}

export async function startHttpRouteMesh(given: HttpRouteCase, dir?: string) {
  const objects = clusterObjects(loadHttpRouteFixture(given.fixture, dir));
  const route = routeOf(objects);
  const c = withServices(given, route);
  const healthy = { errorRate: 0.002, latencyMedianMs: 20 };
  const versions = { stable: versionOf(objects, c.stable, "v1"), canary: versionOf(objects, c.canary, "v2") };
  let skipped: string[] = [];
  const mesh = await startMesh({
    seedWith: (kube) => {
      skipped = seedObjects(kube, objects);
    },
    namespace: ns(route),
    traffic: flowsOf(route, c),
    requestsPerSecond: 200,
    seed: 5,
    stable: healthy,
    canary: healthy,
    versions: { [versions.stable]: healthy, [versions.canary]: healthy, v3: healthy, unknown: healthy },
    stableVersion: versions.stable,
  });
  return { mesh, route, versions, skipped, c };
}

export function httpRouteInputs(c: HttpRouteCase, mesh: Mesh, route: KubeObject): Record<string, string> {
  const { "virtual-service": _, "stable-subset": __, "canary-subset": ___, ...rest } = fastInputs(mesh);
  return {
    ...rest,
    "http-route": route.metadata.name,
    namespace: ns(route),
    "stable-host": c.stable ?? "",
    "canary-host": c.canary ?? "",
    stages: STAGES.join(","),
    interval: "2s",
    "min-stage-duration": "2s",
    "settle-time": "1s",
    ...c.inputs,
  };
}

/** The canary's share in percent of the rule that routes to stable, or undefined. */
function canaryShare(route: KubeObject | undefined, c: HttpRouteCase): number | undefined {
  for (const rule of (route?.spec as Spec | undefined)?.rules ?? []) {
    const refs = rule.backendRefs ?? [];
    const stable = refs.find((r) => r.name === c.stable);
    if (!stable) continue;
    const canary = refs.find((r) => r.name === c.canary);
    const w = (r: Ref | undefined) => (r ? (r.weight ?? 1) : 0);
    const total = w(stable) + w(canary);
    return total > 0 ? Math.round((w(canary) * 100 * 1000) / total) / 1000 : 0;
  }
  return undefined;
}

/** The route without what the action may change: its state, version fields, status, the weights and the canary's backendRef. */
export function comparableRoute(route: KubeObject, c: HttpRouteCase): unknown {
  const copy = structuredClone(route) as KubeObject & { spec: Spec; status?: unknown };
  const { resourceVersion: _, generation: __, annotations, ...metadata } = copy.metadata;
  const kept = { ...(annotations ?? {}) };
  delete kept[STATE_ANNOTATION];
  for (const rule of copy.spec.rules ?? [])
    if (rule.backendRefs?.some((r) => r.name === c.stable))
      rule.backendRefs = rule.backendRefs
        .filter((r) => r.name !== c.canary)
        .map(({ weight: ___, ...r }) => r as Ref);
  return { metadata: { ...metadata, annotations: kept }, spec: copy.spec };
}

/** What is wrong with a run ([] when the user got what they expect). */
export function httpRouteProblems(
  c: HttpRouteCase,
  run: ActionRun,
  mesh: Mesh,
  before: KubeObject,
  canaryVersion: string,
): string[] {
  const problems: string[] = [];
  const summary = `result ${run.outputs.result ?? "-"}, exit ${run.exitCode}, errors: ${errorLines(run).join(" | ").slice(0, 500)}`;
  const now = mesh.kube.get("httproutes", ns(before), before.metadata.name);
  const writes = mesh.kube.audit.filter(
    (e) => e.resource === "httproutes" && e.verb === "patch" && e.code === 200,
  );
  if (c.outcome.kind === "refused") {
    if (run.exitCode === 0) problems.push(`expected a refusal, got ${summary}`);
    // The reason matters, not just that something refused: a case refused for another reason
    // than its header gives says nothing of the case.
    if (!c.outcome.message.test(errorLines(run).join("\n")))
      problems.push(`the refusal should give the reason and fix ${c.outcome.message}; ${summary}`);
    if (writes.length > 0)
      problems.push(`a refusal must come before any write, but ${writes.length} write(s) were made`);
    return problems;
  }
  if (run.outputs.result !== "promoted" || run.exitCode !== 0)
    problems.push(`expected promoted, got ${summary}`);
  const share = canaryShare(now, c);
  if (share !== 100) problems.push(`the canary's share of the managed rule is ${share} %, expected 100 %`);
  for (const flow of flowsOf(before, c)) {
    const served = mesh.traffic.probe(flow, 200).served;
    if (served[canaryVersion] !== 200)
      problems.push(
        `${flow.source} -> ${flow.host} now reaches ${JSON.stringify(served)}, not all ${canaryVersion}`,
      );
  }
  if (c.outcome.kind === "continued") {
    const found = canaryShare(before, c) ?? 0;
    const want = c.outcome.firstWeight ?? STAGES.find((s) => s > found);
    const moved = writes.map((w) => canaryShare(w.object, c)).find((s) => s !== found);
    if (moved !== want)
      problems.push(`the first write that moves the canary should move it to ${want} %, it wrote ${moved} %`);
  }
  if (now && !isDeepStrictEqual(comparableRoute(now, c), comparableRoute(before, c)))
    problems.push(
      `the route changed outside the managed weights: ${JSON.stringify(comparableRoute(now, c))}`,
    );
  return problems;
}
