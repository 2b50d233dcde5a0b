/**
 * End to end on a Gateway API HTTPRoute (issue 22): `node dist/index.js` as the runner runs it, on
 * the local mesh with real Prometheus, the versions as two Services (backend-v1, backend-v2) and
 * the HTTPRoute attached to the ingress Gateway (north-south) or to the Service (GAMMA, east-west).
 */
import { describe, expect, it } from "vitest";
import { NAMESPACE, SERVICE } from "../mesh/fixtures.ts";
import {
  type Attachment,
  backendWeights,
  CANARY_SERVICE,
  httpRouteTraffic,
  STABLE_SERVICE,
  seedHttpRouteRunbook,
} from "../mesh/gateway-fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import { errorLines, fastInputs, fastRouteInputs, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();

function routeMesh(attach: Attachment, canary: { errorRate: number } = { errorRate: 0.002 }): Promise<Mesh> {
  return meshWith({
    seedWith: (kube) => seedHttpRouteRunbook(kube, attach),
    traffic: httpRouteTraffic(attach),
    canary,
  });
}

/** The weights of each of the action's writes of the HTTPRoute: `[stable, canary]` of the managed rule. */
function writtenWeights(m: Mesh): number[][] {
  return m.kube.audit
    .filter((e) => e.resource === "httproutes" && e.verb === "patch" && e.code === 200 && e.object)
    .map((e) => {
      const refs =
        (e.object?.spec as { rules: Array<{ backendRefs: Array<{ weight?: number }> }> } | undefined)
          ?.rules[0]?.backendRefs ?? [];
      return refs.map((r) => r.weight ?? 1);
    });
}

describe("HTTPRoute end to end", () => {
  for (const attach of ["gateway", "service"] as Attachment[]) {
    const on = attach === "gateway" ? "attached to a Gateway" : "attached to a Service (GAMMA)";

    it(`promotes a healthy canary on an HTTPRoute ${on}`, async () => {
      const m = await routeMesh(attach);
      const run = await runOnMesh(m, { inputs: fastRouteInputs(m) });
      expect(run.exitCode, run.stdout).toBe(0);
      expect(run.outputs.result).toBe("promoted");
      expect(run.stdout).toMatch(
        /HTTPRoute shop\/backend on (Gateway istio-ingress\/gateway|Service shop\/backend \(port 8080\)): Accepted True \(Accepted\), ResolvedRefs True/,
      );
      expect(writtenWeights(m).map(([, canary]) => canary)).toEqual([10, 50, 100, 100]);
      expect(backendWeights(m.kube)).toEqual([
        { name: STABLE_SERVICE, weight: 0 },
        { name: CANARY_SERVICE, weight: 100 },
      ]);
      const report = JSON.parse(run.outputs.report as string);
      expect(report.stages.map((s: { weight: number; decision: string }) => [s.weight, s.decision])).toEqual([
        [10, "pass"],
        [50, "pass"],
        [100, "pass"],
      ]);
      // The canary's requests were judged from its own Service's series, and they are real.
      expect(m.traffic.totals("v2").requests).toBeGreaterThan(100);
    });

    it(`rolls back a failing canary on an HTTPRoute ${on}, restoring the rule exactly`, async () => {
      const m = await routeMesh(attach, { errorRate: 0.2 });
      const run = await runOnMesh(m, { inputs: fastRouteInputs(m) });
      expect(run.exitCode).toBe(1);
      expect(run.outputs.result).toBe("rolled-back");
      expect(errorLines(run)[0]).toMatch(/^::error::Rolled back at 10 %/);
      // As the API server stored it before the rollout (the CRD's default weight 1 included).
      expect(backendWeights(m.kube)).toEqual([{ name: STABLE_SERVICE, weight: 1 }]);
      expect(m.traffic.totals("v2").errors).toBeGreaterThan(0);
    });
  }

  it("takes a stage below 1 %: 0.1 % is written as canary 1, stable 999", async () => {
    const m = await routeMesh("gateway");
    const run = await runOnMesh(m, {
      inputs: fastRouteInputs(m, { stages: "0.1,50,100", "max-stage-duration": "6s" }),
    });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.result).toBe("promoted");
    expect(writtenWeights(m)[0]).toEqual([999, 1]);
    const report = JSON.parse(run.outputs.report as string);
    expect(report.stages[0].weight).toBe(0.1);
    const first = report.stages[0] as {
      decision: string;
      canary?: { requests: number };
      stable?: { requests: number };
    };
    console.log(
      `stage 0.1 %: ${first.decision}; canary ${first.canary?.requests} of ${(first.canary?.requests ?? 0) + (first.stable?.requests ?? 0)} requests`,
    );
    expect(run.stdout).toContain("0.1 %");
  });

  it("a person's edit of the weights wins: the action stops where they left it", async () => {
    const m = await routeMesh("gateway");
    let edited = false;
    const run = await runOnMesh(m, {
      inputs: fastRouteInputs(m, { "min-stage-duration": "6s" }),
      onStdout: (chunk) => {
        if (edited || !/stage 1\/\d+ · /.test(chunk)) return;
        edited = true;
        m.kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (o) => {
          const refs = (o.spec as { rules: Array<{ backendRefs: Array<{ weight: number }> }> }).rules[0]!
            .backendRefs;
          refs[0]!.weight = 70;
          refs[1]!.weight = 30;
        });
      },
    });
    expect(edited).toBe(true);
    expect(run.exitCode).not.toBe(0);
    expect(run.stdout).toContain("someone else changed the canary's weight from 10 % to 30 %");
    expect(backendWeights(m.kube)).toEqual([
      { name: STABLE_SERVICE, weight: 70 },
      { name: CANARY_SERVICE, weight: 30 },
    ]);
  });

  it("command rollback puts a split made by hand (no record) back on stable", async () => {
    const m = await routeMesh("service");
    m.kube.editOutOfBand("httproutes", NAMESPACE, SERVICE, (o) => {
      (o.spec as { rules: Array<{ backendRefs: unknown[] }> }).rules[0]!.backendRefs = [
        { name: STABLE_SERVICE, port: 8080, weight: 7 },
        { name: CANARY_SERVICE, port: 8080, weight: 3 },
      ];
    });
    const run = await runOnMesh(m, { inputs: fastRouteInputs(m, { command: "rollback" }) });
    expect(run.outputs.result, run.stdout).toBe("rolled-back");
    expect(backendWeights(m.kube)).toEqual([
      { name: STABLE_SERVICE, weight: 100 },
      { name: CANARY_SERVICE, weight: 0 },
    ]);
    expect(m.traffic.probe(httpRouteTraffic("service")[0]!, 500).served).toEqual({ v1: 500 });
  });

  it("dry-run prints the JSON Patch of the backendRefs and writes nothing", async () => {
    const m = await routeMesh("service");
    const run = await runOnMesh(m, { inputs: fastRouteInputs(m, { "dry-run": "true" }) });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(m.kube.audit.filter((e) => e.verb === "patch")).toEqual([]);
    const patches = [
      ...run.stdout.matchAll(/dry run: the JSON Patch for (\d+) % \(HTTPRoute shop\/backend\):/g),
    ].map((x) => Number(x[1]));
    expect(patches).toEqual([10, 50, 100]);
    expect(run.stdout.match(/"path": "\/spec\/rules\/0\/backendRefs\/-"/g)).toHaveLength(1);
  });

  it("an HTTPRoute named in virtual-service is refused naming http-route; both inputs at once are refused", async () => {
    const m = await routeMesh("gateway");
    const wrong = await runOnMesh(m, {
      inputs: {
        ...fastInputs(m),
        "stable-subset": "",
        "canary-subset": "",
        "stable-host": STABLE_SERVICE,
        "canary-host": CANARY_SERVICE,
      },
    });
    expect(wrong.exitCode).toBe(1);
    expect(errorLines(wrong).join("\n")).toContain(
      "VirtualService shop/backend does not exist, but Gateway API HTTPRoute shop/backend does: name it in the 'http-route' input",
    );
    const both = await runOnMesh(m, { inputs: { ...fastRouteInputs(m), "virtual-service": SERVICE } });
    expect(errorLines(both).join("\n")).toContain(
      "Input 'http-route': cannot be combined with virtual-service",
    );
    expect(m.kube.audit.filter((e) => e.verb === "patch")).toEqual([]);
  });
});
