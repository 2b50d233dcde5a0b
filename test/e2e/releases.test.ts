/**
 * Release after release from one unchanged workflow (issue 14), through the bundled action on the
 * local mesh with the Deployment controller: each release updates the canary Deployment's image
 * and runs the action with the same inputs; a promotion is finalized onto the stable Deployment.
 */
import { describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { NAMESPACE } from "../mesh/fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import { canaryWeight, errorLines, fastInputs, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();
const IMAGE = "registry.example/backend";

const stateOf = (m: Mesh) =>
  JSON.parse(
    m.kube.get("virtualservices", NAMESPACE, "backend")?.metadata.annotations?.[STATE_ANNOTATION] ?? "null",
  );

interface DeploymentView {
  image: string;
  replicas: number;
  pods: number;
}
function deployment(m: Mesh, name: string): DeploymentView {
  const d = m.kube.get("deployments", NAMESPACE, name) as unknown as {
    spec: { replicas: number; template: { spec: { containers: Array<{ image: string }> } } };
  };
  return {
    image: d.spec.template.spec.containers[0]?.image ?? "",
    replicas: d.spec.replicas,
    pods: m.apps?.pods(NAMESPACE, name).length ?? -1,
  };
}

/** What a deploy workflow does before it runs the action: `kubectl set image` on the canary. */
function release(m: Mesh, version: string): void {
  m.apps?.edit(NAMESPACE, "backend-v2", (d) => {
    const containers = (d.spec as { template: { spec: { containers: Array<{ image: string }> } } }).template
      .spec.containers;
    (containers[0] as { image: string }).image = `${IMAGE}:${version}`;
  });
}

const commitOf = (n: number) => `${String(n).repeat(7)}${"0".repeat(33)}`;

describe("four releases from one workflow", () => {
  it("v2 promoted and finalized, v3 rolled back, v4 promoted, with the same inputs", async () => {
    const m = await meshWith({ deployments: { readyDelayMs: 300 } });
    const inputs = fastInputs(m);

    // v2: the canary Deployment already runs it.
    const v2 = await runOnMesh(m, { inputs, commit: commitOf(2), runId: "2" });
    expect(errorLines(v2)).toEqual([]);
    expect(v2.outputs).toMatchObject({ result: "promoted", finalized: "true", "canary-weight": "0" });
    expect(canaryWeight(m)).toEqual([100]);
    expect(deployment(m, "backend-v1").image).toBe(`${IMAGE}:v2`);
    expect(deployment(m, "backend-v2")).toMatchObject({ replicas: 0 });
    expect(stateOf(m)).toMatchObject({ status: "promoted", finalized: true, canaryScaledDown: true });
    expect(v2.summary).toMatch(/Promoted and finalized/);

    // v3 is bad: it is rolled back, and the stable keeps v2.
    release(m, "v3");
    m.traffic.setBehaviour("v2", { errorRate: 0.4 });
    const v3 = await runOnMesh(m, { inputs, commit: commitOf(3), runId: "3" });
    expect(v3.stdout).toMatch(/canary Deployment was scaled back up/);
    expect(v3.outputs).toMatchObject({ result: "rolled-back", finalized: "false" });
    expect(v3.exitCode).toBe(1);
    expect(canaryWeight(m)).toEqual([100]);
    expect(deployment(m, "backend-v1").image).toBe(`${IMAGE}:v2`);

    // v4 is good again: promoted and finalized.
    release(m, "v4");
    m.traffic.setBehaviour("v2", { errorRate: 0.002 });
    const v4 = await runOnMesh(m, { inputs, commit: commitOf(4), runId: "4" });
    expect(errorLines(v4)).toEqual([]);
    expect(v4.outputs).toMatchObject({ result: "promoted", finalized: "true" });
    expect(canaryWeight(m)).toEqual([100]);
    expect(deployment(m, "backend-v1").image).toBe(`${IMAGE}:v4`);
    expect(deployment(m, "backend-v2").replicas).toBe(0);
    await m.apps?.rolledOut(NAMESPACE, "backend-v2");
    expect(deployment(m, "backend-v2").pods).toBe(0);
  }, 240_000);

  it("a stable that never gets ready keeps the traffic on the canary; promote finishes once it can start", async () => {
    const m = await meshWith({ deployments: { readyDelayMs: 300, progressDeadlineSeconds: 4 } });
    const inputs = fastInputs(m, { environment: "production" });
    // The canary's running pods stay ready; new pods of this image never do (a pull secret missing on stable's nodes).
    m.apps?.breakImage(`${IMAGE}:v2`, "ImagePullBackOff");

    const first = await runOnMesh(m, { inputs, runId: "2" });
    expect(first.exitCode).toBe(1);
    expect(first.outputs).toMatchObject({ result: "promoted", finalized: "false", "canary-weight": "100" });
    expect(errorLines(first).join("\n")).toMatch(/not finalized: .*backend-v1.*ImagePullBackOff/);
    expect(canaryWeight(m)).toEqual([0, 100]);
    expect(stateOf(m)).toMatchObject({ status: "finalizing", weight: 100 });
    expect(first.summary).toMatch(/Promoted, not finalized/);
    const lastStatus = () => m.github.deployments.at(-1)?.statuses.at(-1);
    expect(lastStatus()).toMatchObject({ state: "failure" });
    expect(lastStatus()?.description).toMatch(/^Promoted, but not finalized/);

    // A rollback must not route to a stable that cannot serve.
    const rollback = await runOnMesh(m, { inputs: { ...inputs, command: "rollback" }, runId: "3" });
    expect(rollback.exitCode).toBe(1);
    expect(errorLines(rollback).join("\n")).toMatch(
      /Rollback refused: .*not ready.*traffic stays on the canary/,
    );
    expect(canaryWeight(m)).toEqual([0, 100]);

    m.apps?.repairImage(`${IMAGE}:v2`);
    const promote = await runOnMesh(m, { inputs: { ...inputs, command: "promote" }, runId: "4" });
    expect(errorLines(promote)).toEqual([]);
    expect(promote.outputs).toMatchObject({ result: "promoted", finalized: "true" });
    expect(lastStatus()).toMatchObject({ state: "success" });
    const comments = [...m.github.comments.values()].flat().map((c) => c.body);
    expect(comments.at(-1)).toMatch(/Promoted and finalized/);
    expect(comments.at(-1)).toMatch(/Finalization/);
    expect(canaryWeight(m)).toEqual([100]);
    expect(deployment(m, "backend-v1").image).toBe(`${IMAGE}:v2`);
    expect(deployment(m, "backend-v2").replicas).toBe(0);
  }, 180_000);
});
