/**
 * The corpus harness: loads a published VirtualService fixture into the local mesh as a cluster
 * would hold it (namespaces with injection, one ready pod with its sidecar per Deployment), and
 * judges a run of the bundled action against what the user expects: the outcome, that every write
 * kept each route's weights at 100, and that nothing outside the managed weights changed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { loadAll } from "js-yaml";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { ambientAppPod, deployedWaypoint, waypointPod } from "../mesh/ambient.ts";
import { meshPod, seedObjects } from "../mesh/fixtures.ts";
import { type Mesh, startMesh } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import type { ActionRun } from "../support/action-runner.ts";
import { errorLines, fastInputs, writesKeptWeightsAt100 } from "../support/e2e.ts";
import type { CorpusCase, ManagedRoute, Outcome } from "./expectations.ts";

export const FIXTURES = join(import.meta.dirname, "fixtures");

export function loadFixture(file: string): KubeObject[] {
  return loadAll(readFileSync(join(FIXTURES, file), "utf8"), { filename: file }).flatMap((d) => {
    const object = d as KubeObject | null;
    return object ? [object] : [];
  });
}

/**
 * What the cluster holds for a fixture: its objects, a Namespace (injection enabled) for each
 * namespace they use and istio-system, and for each Deployment one ready pod with its sidecar.
 */
export function clusterObjects(objects: readonly KubeObject[]): KubeObject[] {
  const namespaces = new Set(["istio-system", ...objects.map((o) => o.metadata.namespace ?? "default")]);
  // A fixture's Namespace in ambient mode: its pods run without sidecars (issue 22).
  const ambient = new Set(
    objects
      .filter((o) => o.kind === "Namespace" && o.metadata.labels?.["istio.io/dataplane-mode"] === "ambient")
      .map((o) => o.metadata.name),
  );
  const pods = objects
    .filter((o) => o.kind === "Deployment")
    .map((d) => {
      const labels = (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template
        .metadata.labels;
      const namespace = d.metadata.namespace ?? "default";
      const pod = ambient.has(namespace) ? ambientAppPod : meshPod;
      return pod(`${d.metadata.name}-5d8f7c9b4-x7k2p`, namespace, labels);
    });
  // Each waypoint as Istio runs it once applied: programmed, with its proxy's pod.
  const waypoints = objects.filter(
    (o) =>
      o.kind === "Gateway" && (o.spec as { gatewayClassName?: string }).gatewayClassName === "istio-waypoint",
  );
  pods.push(...waypoints.map((w) => waypointPod(w.metadata.namespace ?? "default", w.metadata.name)));
  const namespaceObjects = [...namespaces].map(
    (name) =>
      ({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name, labels: { "istio-injection": "enabled" } },
      }) as KubeObject,
  );
  const rest = objects
    .filter((o) => o.kind !== "Deployment")
    .map((o) => (waypoints.includes(o) ? deployedWaypoint(o) : o));
  return [...namespaceObjects, ...rest, ...pods];
}

export const virtualServicesOf = (objects: readonly KubeObject[]): KubeObject[] =>
  objects.filter((o) => o.kind === "VirtualService");

const refOf = (o: KubeObject) => `${o.metadata.namespace ?? "default"}/${o.metadata.name}`;

/** A fresh mesh for one case: the fixture's cluster, its traffic mix, real Prometheus. */
export async function startCorpusMesh(c: CorpusCase): Promise<{ mesh: Mesh; skipped: string[] }> {
  const objects = clusterObjects(loadFixture(c.fixture));
  const first = virtualServicesOf(objects)[0] as KubeObject;
  let skipped: string[] = [];
  const healthy = { errorRate: 0.002, latencyMedianMs: 20 };
  const mesh = await startMesh({
    seedWith: (kube) => {
      skipped = seedObjects(kube, objects);
    },
    namespace: first.metadata.namespace,
    virtualService: first.metadata.name,
    traffic: c.traffic,
    requestsPerSecond: 200,
    seed: 5,
    stable: healthy,
    canary: healthy,
    versions: { v3: healthy, unknown: healthy },
    stableVersion: c.versions?.stable ?? "v1",
  });
  return { mesh, skipped };
}

/**
 * The action's inputs for a case: fast timings, stages 50,100, the case's own inputs on top. A 2 s
 * interval gives Prometheus over a second to answer while other cases load the machine.
 */
export function caseInputs(c: CorpusCase, mesh: Mesh): Record<string, string> {
  return fastInputs(mesh, {
    stages: "50,100",
    interval: "2s",
    "min-stage-duration": "2s",
    "settle-time": "1s",
    ...c.inputs,
  });
}

export function snapshot(mesh: Mesh, objects: readonly KubeObject[]): Map<string, KubeObject> {
  return new Map(
    virtualServicesOf(objects).map((o) => [
      refOf(o),
      mesh.kube.get("virtualservices", o.metadata.namespace ?? "default", o.metadata.name) as KubeObject,
    ]),
  );
}

interface Dest {
  destination: { host: string; subset?: string };
  weight?: number;
}

/** Whether a destination is the canary named by the inputs (subset, or host). */
export function isCanary(c: CorpusCase, d: Dest): boolean {
  const canarySubset = c.inputs["canary-subset"] ?? "v2";
  const canaryHost = c.inputs["canary-host"];
  if (canaryHost)
    return d.destination.host.split(".")[0] === canaryHost.split(".")[0] && !d.destination.subset;
  return d.destination.subset === canarySubset;
}

function routeAt(vs: KubeObject, m: ManagedRoute): { route?: Dest[] } | undefined {
  return (vs.spec as Record<string, Array<{ route?: Dest[] }> | undefined>)[m.protocol]?.[m.index];
}

/**
 * The VirtualService without what the action may change: its annotation, resourceVersion and
 * generation, and on the managed routes the weights and the canary destination.
 */
export function comparable(vs: KubeObject, managed: readonly ManagedRoute[], c: CorpusCase): KubeObject {
  const copy = structuredClone(vs);
  const { resourceVersion, generation, ...metadata } = copy.metadata;
  const annotations = { ...(metadata.annotations ?? {}) };
  delete annotations[STATE_ANNOTATION];
  copy.metadata = { ...metadata, annotations } as KubeObject["metadata"];
  for (const m of managed.filter((r) => r.vs === refOf(vs))) {
    const route = routeAt(copy, m);
    if (route?.route)
      route.route = route.route.filter((d) => !isCanary(c, d)).map((d) => ({ destination: d.destination }));
  }
  return copy;
}

/** The canary's weight on a route (a lone destination without weight has 100). */
export function canaryWeightOf(
  vs: KubeObject | undefined,
  m: ManagedRoute,
  c: CorpusCase,
): number | undefined {
  const route = vs ? routeAt(vs, m) : undefined;
  const list = route?.route;
  if (!list) return undefined;
  return list
    .filter((d) => isCanary(c, d))
    .reduce((s, d) => s + (list.length === 1 ? (d.weight ?? 100) : (d.weight ?? 0)), 0);
}

const successfulWrites = (mesh: Mesh) =>
  mesh.kube.audit.filter(
    (e) => e.resource === "virtualservices" && ["patch", "update"].includes(e.verb) && e.code === 200,
  );

/** What is wrong with a run against one expected outcome ([] when it is that outcome). */
export function outcomeProblems(
  c: CorpusCase,
  outcome: Outcome,
  run: ActionRun,
  mesh: Mesh,
  before: Map<string, KubeObject>,
): string[] {
  const problems: string[] = [];
  const summary = `result ${run.outputs.result ?? "-"}, exit ${run.exitCode}, errors: ${errorLines(run).join(" | ").slice(0, 600)}`;
  const vsNow = (ref: string) => {
    const [ns, name] = ref.split("/") as [string, string];
    return mesh.kube.get("virtualservices", ns, name);
  };
  if (outcome.kind === "refused") {
    if (run.exitCode === 0) problems.push(`expected a refusal, got ${summary}`);
    const errors = errorLines(run).join("\n");
    if (!outcome.message.test(errors)) problems.push(`refusal should match ${outcome.message}; ${summary}`);
    const writes = successfulWrites(mesh);
    if (writes.length > 0)
      problems.push(`a refusal must come before any write, but ${writes.length} write(s) were made`);
    return problems;
  }
  if (run.outputs.result !== "promoted" || run.exitCode !== 0)
    problems.push(`expected promoted, got ${summary}`);
  for (const m of outcome.managed) {
    const weight = canaryWeightOf(vsNow(m.vs), m, c);
    if (weight !== 100)
      problems.push(`${m.vs} ${m.protocol} route #${m.index}: canary at ${weight}, expected 100`);
  }
  const canary = c.versions?.canary ?? "v2";
  for (const flow of c.traffic.filter((f) => f.movesToCanary !== false)) {
    const served = mesh.traffic.probe(flow, 200).served;
    if (served[canary] !== 200)
      problems.push(
        `${flow.source} -> ${flow.host}${flow.uri ?? ""} now reaches ${JSON.stringify(served)}, not all ${canary}`,
      );
  }
  const warnings = run.stdout.split("\n").filter((l) => l.startsWith("::warning::"));
  if (c.warns && !warnings.some((w) => c.warns?.test(w)))
    problems.push(
      `expected a warning matching ${c.warns}, got: ${warnings.join(" | ").slice(0, 400) || "none"}`,
    );
  const falseWarning = c.neverWarns && warnings.find((w) => c.neverWarns?.test(w));
  if (falseWarning) problems.push(`a false warning: ${falseWarning}`);
  if (outcome.kind === "continued") {
    // An adopted split is first judged where it is (a write that records the rollout and keeps the
    // weights), so the first write that moves the canary is the one to check: the next stage.
    const m = outcome.managed[0] as ManagedRoute;
    const found = before.get(m.vs);
    const weightFound = found ? canaryWeightOf(found, m, c) : undefined;
    const weights = successfulWrites(mesh)
      .map((w) => w.object)
      .filter((o): o is KubeObject => o !== undefined && refOf(o) === m.vs)
      .map((o) => canaryWeightOf(o, m, c));
    const weight = weights.find((w) => w !== weightFound);
    if (weight !== outcome.firstWeight)
      problems.push(
        `the first write that moves the canary should move it to ${outcome.firstWeight}, it wrote ${weight}`,
      );
    if (
      weights[0] !== undefined &&
      weightFound !== undefined &&
      weights[0] > weightFound &&
      weights[0] === 100
    )
      problems.push(`the first write took an adopted split straight to 100 % before judging it`);
  }
  return problems;
}

/** Everything wrong with a run: the outcome (any of the acceptable ones), the weights, the rest of each VirtualService. */
export function runProblems(
  c: CorpusCase,
  run: ActionRun,
  mesh: Mesh,
  before: Map<string, KubeObject>,
): string[] {
  const outcomes = Array.isArray(c.outcome) ? c.outcome : [c.outcome];
  const each = outcomes.map((o) => outcomeProblems(c, o, run, mesh, before));
  const problems = each.some((p) => p.length === 0) ? [] : each.flat();
  const { sums } = writesKeptWeightsAt100(mesh, ["http", "tcp", "tls"]);
  if (sums.some((s) => s !== 100)) problems.push(`a write left route weights summing to ${sums.join(", ")}`);
  const managed = outcomes.flatMap((o) => ("managed" in o ? o.managed : []));
  for (const [ref, original] of before) {
    const [ns, name] = ref.split("/") as [string, string];
    const now = mesh.kube.get("virtualservices", ns, name) as KubeObject;
    if (!isDeepStrictEqual(comparable(now, managed, c), comparable(original, managed, c)))
      problems.push(
        `${ref} changed outside the managed weights: ${JSON.stringify(comparable(now, managed, c).spec)} was ${JSON.stringify(comparable(original, managed, c).spec)}`,
      );
  }
  return problems;
}
