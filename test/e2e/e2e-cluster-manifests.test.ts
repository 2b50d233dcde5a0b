/**
 * The real-cluster workflow's manifests and inputs (scripts/e2e-cluster/) on the local mesh, where
 * they can run here: the app, the route and the namespace as deploy-app.sh applies them, the inputs
 * as inputs.sh prints them (Prometheus and the kubeconfig pointed at the mesh), through the bundled
 * action. The dry run passes preflight and plans the stages on the scenario's route only; a healthy
 * canary is promoted; a canary failing like web-failing (20 % errors), run through run-action.ts
 * (run.sh's way to run the bundle by hand: main, then post), is rolled back, and route-weights.sh,
 * the script the workflow asserts with, reads 100 % stable from the route the action left.
 * The VirtualService scenario and sidecar-httproute (the HTTPRoute attached to Service web, GAMMA,
 * the callers in the mesh) run here; ambient-httproute waits for ambient mode on the local mesh.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { meshPod, seedObjects } from "../mesh/fixtures.ts";
import type { Mesh, MeshOptions } from "../mesh/index.ts";
import type { KubeObject } from "../mesh/kube-api.ts";
import { errorLines, fastInputs, runOnMesh, useMesh, writesKeptWeightsAt100 } from "../support/e2e.ts";
import { ROOT } from "../support/workflows.ts";

const DIR = join(ROOT, "scripts/e2e-cluster");
interface OnMesh {
  scenario: string;
  route: string;
  resource: "virtualservices" | "httproutes";
  kind: "VirtualService" | "HTTPRoute";
  /** The names route-weights.sh reads the versions by (subsets, or the versions' Services). */
  versions: [stable: string, canary: string];
  /** route-weights.sh's name of the managed rule. */
  rule: string;
  /** The JSON Patch paths of the managed rule's stable and canary weights. */
  weightPaths: [string, string];
  /** How the callers reach the route (default: through the VirtualService `web`). */
  traffic?: MeshOptions["traffic"];
  /** Why the scenario cannot run on the local mesh yet. */
  pending?: string;
}

const ON_MESH: OnMesh[] = [
  {
    scenario: "sidecar-virtualservice",
    route: "virtualservice.yaml",
    resource: "virtualservices",
    kind: "VirtualService",
    versions: ["v1", "v2"],
    rule: "http[0]:primary",
    weightPaths: ["/spec/http/0/route/0/weight", "/spec/http/0/route/1/weight"],
  },
  {
    scenario: "sidecar-httproute",
    route: "httproute.yaml",
    resource: "httproutes",
    kind: "HTTPRoute",
    versions: ["web-v1", "web-v2"],
    rule: "rules[0]",
    weightPaths: ["/spec/rules/0/backendRefs/0/weight", "/spec/rules/0/backendRefs/1/weight"],
    // GAMMA: the route's parent is Service web, so the callers are in the mesh, calling web.
    traffic: [{ source: "mesh", host: "web", clientNamespace: "e2e", share: 1 }],
  },
  {
    scenario: "ambient-httproute",
    route: "httproute.yaml",
    resource: "httproutes",
    kind: "HTTPRoute",
    versions: ["web-v1", "web-v2"],
    rule: "rules[0]",
    weightPaths: ["/spec/rules/0/backendRefs/0/weight", "/spec/rules/0/backendRefs/1/weight"],
    traffic: [{ source: "mesh", host: "web", clientNamespace: "e2e", share: 1 }],
    pending:
      "ambient mode (waypoint, reporter=waypoint) is not on the local mesh on this branch (issue 22's ambient part)",
  },
];

/** The canary's share in percent of a stable/canary weight pair (Gateway API weights are proportional). */
const shareOf = (stable: number, canary: number) =>
  stable + canary > 0 ? (canary * 100) / (stable + canary) : 0;

const manifest = (file: string): KubeObject[] =>
  (loadAll(readFileSync(join(DIR, "manifests", file), "utf8")) as KubeObject[]).filter(Boolean);

/** The namespace as deploy-app.sh labels it for sidecars, the app's Services and route, one ready pod per Deployment. */
function clusterOf(routeFile: string): KubeObject[] {
  const namespace = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: "e2e", labels: { "istio-injection": "enabled" } },
  } as KubeObject;
  const app = manifest("app.yaml");
  const pods = app
    .filter((o) => o.kind === "Deployment")
    .map((d) => {
      const labels = (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template
        .metadata.labels;
      return meshPod(`${d.metadata.name}-6c9f8d7b5-q2w4e`, "e2e", labels);
    });
  return [namespace, ...app.filter((o) => o.kind === "Service"), ...manifest(routeFile), ...pods];
}

/** inputs.sh's inputs for the scenario, with Prometheus and the cluster the mesh's. */
function scenarioInputs(
  scenario: string,
  mesh: Mesh,
  overrides: Record<string, string>,
): Record<string, string> {
  const printed = spawnSync("bash", [join(DIR, "inputs.sh"), scenario], { encoding: "utf8" }).stdout;
  const inputs = Object.fromEntries(
    printed
      .trim()
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
  // The Deployments are pods here (no controller): finalization is the workflow's to check on kind.
  // The mesh scrapes every second: its timings replace the cluster's (15 s scrapes, 1 m stages).
  const { "prometheus-url": _, "stable-deployment": __, "canary-deployment": ___, ...rest } = inputs;
  const { interval, "min-stage-duration": min, "max-stage-duration": max, ...meshInputs } = fastInputs(mesh);
  return {
    ...meshInputs,
    ...rest,
    interval,
    "min-stage-duration": min,
    "max-stage-duration": max,
    kubeconfig: mesh.kube.kubeconfig("admin-token", "e2e"),
    finalize: "none",
    ...overrides,
  } as Record<string, string>;
}

const routeWeights = (route: KubeObject | undefined, stable: string, canary: string) =>
  spawnSync("bash", [join(DIR, "route-weights.sh"), stable, canary], {
    input: JSON.stringify(route),
    encoding: "utf8",
  }).stdout;

describe("the e2e-cluster manifests and inputs on the local mesh", () => {
  const mesh = useMesh();
  const healthy = { errorRate: 0.002, latencyMedianMs: 20 };

  for (const s of ON_MESH) {
    if (s.pending) {
      it.skip(`${s.scenario}: skipped: ${s.pending}`, () => {});
      continue;
    }
    const start = (canary: typeof healthy) =>
      mesh({
        seedWith: (kube) => {
          expect(seedObjects(kube, clusterOf(s.route))).toEqual([]);
        },
        namespace: "e2e",
        virtualService: "web",
        requestsPerSecond: 200,
        seed: 22,
        stable: healthy,
        canary,
        ...(s.traffic ? { traffic: s.traffic } : {}),
      });
    const stages = (inputs: Record<string, string>) => (inputs.stages ?? "").split(",").map(Number);

    it(`${s.scenario}: preflight passes and the dry run plans every stage on the route's weights only`, async () => {
      const m = await start(healthy);
      await m.scraped(15_000);
      const inputs = scenarioInputs(s.scenario, m, { "dry-run": "true" });
      const run = await runOnMesh(m, { inputs });
      expect(errorLines(run)).toEqual([]);
      expect(run.exitCode).toBe(0);
      // Each stage's JSON Patch, as the dry run prints it: the canary's weight, the stable's, the record.
      const plans = [
        ...run.stdout.matchAll(
          new RegExp(
            `dry run: the JSON Patch for ([\\d.]+) % \\(${s.kind} e2e/web\\):\\n(\\[[\\s\\S]*?\\n\\])`,
            "g",
          ),
        ),
      ];
      // Every stage inputs.sh gives (0.5 % first on the HTTPRoute), in order.
      expect(plans.map((p) => Number(p[1]))).toEqual(stages(inputs));
      expect(stages(inputs).length).toBeGreaterThanOrEqual(3);
      for (const [, weight, json] of plans) {
        const writes = (
          JSON.parse(json as string) as Array<{ op: string; path: string; value: unknown }>
        ).filter((op) => op.op !== "test");
        // Only the two weights change, and the action's record (its annotation, created at the first write).
        const paths = writes.map((op) =>
          op.path.startsWith("/metadata/annotations") ? "the record" : op.path,
        );
        expect(paths).toEqual([...s.weightPaths, "the record"]);
        // The two weights give the stage's share (whole percentages on a VirtualService, proportions on an HTTPRoute).
        const [stableWeight, canaryWeight] = writes.slice(0, 2).map((op) => op.value as number);
        expect(shareOf(stableWeight as number, canaryWeight as number)).toBeCloseTo(Number(weight), 6);
        if (s.kind === "VirtualService")
          expect((stableWeight as number) + (canaryWeight as number)).toBe(100);
      }
      expect(m.kube.audit.filter((e) => ["patch", "update", "create"].includes(e.verb))).toEqual([]);
    });

    it(`${s.scenario}: a healthy canary is promoted through the scenario's stages`, async () => {
      const m = await start(healthy);
      await m.scraped(15_000);
      const run = await runOnMesh(m, { inputs: scenarioInputs(s.scenario, m, {}), timeoutMs: 180_000 });
      expect(errorLines(run)).toEqual([]);
      expect(run.outputs.result).toBe("promoted");
      // finalize: none here, so the canary keeps the traffic (on kind, finalize copies it back to stable).
      expect(routeWeights(m.kube.get(s.resource, "e2e", "web"), ...s.versions)).toBe(
        `${s.rule} stable=0 canary=100\n`,
      );
      // Every stage of inputs.sh was judged, the canary's requests real.
      const report = JSON.parse(run.outputs.report as string) as { stages: Array<{ weight: number }> };
      expect(report.stages.map((stage) => stage.weight)).toEqual(stages(scenarioInputs(s.scenario, m, {})));
      expect(m.traffic.totals("v2").requests).toBeGreaterThan(0);
    });

    it(`${s.scenario}: run-action.ts rolls back a canary failing like web-failing; route-weights.sh reads 100 % stable`, async () => {
      const m = await start({ errorRate: 0.2, latencyMedianMs: 20 });
      await m.scraped(15_000);
      // By hand, as run.sh does: the inputs file, the kubeconfig in KUBECONFIG, main then post.
      const { kubeconfig, ...inputs } = scenarioInputs(s.scenario, m, {});
      const dir = mkdtempSync(join(tmpdir(), "run-action-"));
      try {
        writeFileSync(join(dir, "kubeconfig"), kubeconfig as string);
        writeFileSync(
          join(dir, "inputs.env"),
          Object.entries(inputs)
            .map(([k, v]) => `${k}=${v}\n`)
            .join(""),
        );
        const run = await new Promise<{ code: number; stdout: string }>((done) =>
          execFile(
            process.execPath,
            [join(DIR, "run-action.ts"), join(dir, "inputs.env"), join(dir, "outputs.env")],
            {
              env: { ...process.env, KUBECONFIG: join(dir, "kubeconfig") },
              encoding: "utf8",
              timeout: 180_000,
            },
            (error, stdout) => done({ code: error ? Number(error.code ?? 1) : 0, stdout }),
          ),
        );
        expect(run.code).not.toBe(0);
        expect(run.stdout).toMatch(/main exited 1, post exited 0\n$/);
        expect(readFileSync(join(dir, "outputs.env"), "utf8")).toMatch(/^result=rolled-back$/m);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      if (s.kind === "VirtualService") {
        const kept = writesKeptWeightsAt100(m);
        expect(kept.writes).toBeGreaterThan(0);
        expect(kept.sums.every((sum) => sum === 100)).toBe(true);
      } else {
        // Every write left valid Gateway API weights: whole, not negative, not all zero.
        const written = m.kube.audit
          .filter((e) => e.resource === "httproutes" && e.verb === "patch" && e.code === 200 && e.object)
          .map((e) => {
            const spec = e.object?.spec as { rules?: Array<{ backendRefs?: Array<{ weight?: number }> }> };
            return (spec.rules?.[0]?.backendRefs ?? []).map((r) => r.weight ?? 1);
          });
        expect(written.length).toBeGreaterThan(0);
        for (const weights of written) {
          expect(weights.every((w) => Number.isInteger(w) && w >= 0)).toBe(true);
          expect(weights.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
        }
      }
      expect(routeWeights(m.kube.get(s.resource, "e2e", "web"), ...s.versions)).toBe(
        `${s.rule} stable=100 canary=0\n`,
      );
    });
  }
});
