/**
 * End to end on Bookinfo's `virtual-service-reviews-80-20.yaml` shape (one unnamed http route,
 * stable 80 / canary 20, no state): the bundled action, run as the runner runs it on the local
 * mesh with real Prometheus, adopts the split and continues from the next stage above 20 %.
 */
import { describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { HOST, NAMESPACE } from "../mesh/fixtures.ts";
import { canaryWeight, fastInputs, runOnMesh, useMesh, writesKeptWeightsAt100 } from "../support/e2e.ts";

const meshWith = useMesh();

describe("adopting a split in progress, end to end", () => {
  it("continues an 80/20 route from 50 %, promotes, and a rollback then gives 100 % stable", async () => {
    const m = await meshWith({});
    // Bookinfo's reviews 80/20 VirtualService (istio/istio samples/bookinfo/networking), on this host.
    m.kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      (o.spec as { http: unknown[] }).http = [
        {
          route: [
            { destination: { host: HOST, subset: "v1" }, weight: 80 },
            { destination: { host: HOST, subset: "v2" }, weight: 20 },
          ],
        },
      ];
    });
    const run = await runOnMesh(m, { inputs: fastInputs(m, { stages: "1,10,50,100" }) });
    expect(run.exitCode, run.stdout).toBe(0);
    expect(run.outputs.result).toBe("promoted");
    const adopted = run.stdout
      .split("\n")
      .filter((l) => l.startsWith("::warning::"))
      .map((l) => l.replace(/%25/g, "%"))
      .find((l) => l.includes("Adopting"));
    expect(adopted).toMatch(
      /^::warning::⚠ Adopting a split in progress \(no rollout recorded\): the canary already gets http route #0 20 %\. First the split is judged where it is, beside stable, .* Then: stage 3 of 4 \(50 %\), the first stage above 20 %\./,
    );
    // The first write takes the split over at 20 % (judged there before anything raises it); the
    // first weight change is 50 %: the canary never goes back to 1 % or 10 %.
    const { writes, sums } = writesKeptWeightsAt100(m);
    expect(writes).toBe(4);
    expect(sums).toEqual([100, 100, 100, 100]);
    const canaryWrites = m.kube.audit
      .filter((e) => e.verb === "patch" && e.code === 200 && e.object)
      .map(
        (e) =>
          ((e.object?.spec ?? {}) as { http: Array<{ route: Array<{ weight?: number }> }> }).http[0]?.route[1]
            ?.weight,
      );
    expect(canaryWrites).toEqual([20, 50, 100, 100]);
    const report = JSON.parse(run.outputs.report as string);
    expect(report.stages.map((s: { weight: number; decision: string }) => [s.weight, s.decision])).toEqual([
      [20, "pass"],
      [50, "pass"],
      [100, "pass"],
    ]);

    const rollback = await runOnMesh(m, { inputs: fastInputs(m, { command: "rollback" }), runId: "1002" });
    expect(rollback.exitCode, rollback.stdout).toBe(0);
    // 100 % stable, never the 80/20 the rollout found; the state records the routes as left.
    expect(canaryWeight(m)).toEqual([100, 0]);
    const vs = m.kube.get("virtualservices", NAMESPACE, "backend");
    expect(JSON.parse(vs?.metadata.annotations?.[STATE_ANNOTATION] as string)).toMatchObject({
      status: "rolled-back",
      weight: 0,
      original: [{ index: 0, canaryAdded: false, stableWeight: 100, canaryWeight: 0 }],
    });
  });
});
