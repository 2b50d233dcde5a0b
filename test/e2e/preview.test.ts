/**
 * `command: preview` end to end (issue 23), through the bundled action on the local mesh with a
 * real Prometheus, as a workflow runs it: a preview step, a test step that sends requests with the
 * header (they reach only the canary; users' requests never do before stage 1), then `rollout` in
 * the same job (same run id: the same rollout id). The preview route is gone after the promotion,
 * after a rollback, after a cancel (the post step), and after a job whose test step failed (the
 * preview step's own post step).
 */
import type { ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import { NAMESPACE } from "../mesh/fixtures.ts";
import type { Mesh } from "../mesh/index.ts";
import type { TrafficFlow } from "../mesh/traffic.ts";
import { actionDefaults } from "../support/action-runner.ts";
import { fastInputs, onceInStage, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();
/** Users: every request from the mesh's callers to the backend, routed through the VirtualService. */
const USERS: TrafficFlow[] = [{ source: "mesh", host: "backend", share: 1 }];
const ROLLOUT_ID = "0123456-1001";

const httpRoutes = (m: Mesh): Array<{ name?: string }> =>
  (
    m.kube.get("virtualservices", NAMESPACE, "backend")?.spec as
      | { http?: Array<{ name?: string }> }
      | undefined
  )?.http ?? [];
const previewRoutes = (m: Mesh) => httpRoutes(m).filter((r) => r.name?.startsWith("istio-canary-preview"));
/** As GitHub runs the action: every action.yml default arrives as an INPUT_ variable, the workflow's inputs over them. */
const workflowInputs = (m: Mesh, overrides: Record<string, string> = {}) => ({
  ...actionDefaults({ "github.token": "ghs_bot_token" }),
  ...fastInputs(m, overrides),
});
const usersOnCanary = (m: Mesh) => m.traffic.flows.get(0)?.served.v2 ?? 0;

/** The workflow's preview step and its test step: what the header's requests reached. */
async function previewThenTest(m: Mesh, inputs: Record<string, string>) {
  const preview = await runOnMesh(m, { inputs: { ...inputs, command: "preview" } });
  expect(preview.exitCode, preview.stdout).toBe(0);
  expect(preview.outputs).toMatchObject({
    result: "unchanged",
    "preview-header": "x-canary",
    "preview-value": ROLLOUT_ID,
  });
  expect(preview.summary).toContain(`curl -H 'x-canary: ${ROLLOUT_ID}'`);
  expect(previewRoutes(m)).toHaveLength(1);
  const tested = m.traffic.request(
    { source: "mesh", host: "backend", headers: { "x-canary": ROLLOUT_ID } },
    300,
  );
  // Users are served meanwhile, and none of them by the canary.
  await new Promise((done) => setTimeout(done, 1500));
  expect(usersOnCanary(m)).toBe(0);
  return { preview, tested };
}

describe("command: preview, then rollout", () => {
  it("the test step's requests reach only the canary, users' none before stage 1; promoted, the route is gone", async () => {
    // 20 users' requests a second: at 10 % the canary gets ~2/s, far fewer than the test step's 300 in stage 1.
    const m = await meshWith({ traffic: USERS, requestsPerSecond: 20 });
    const inputs = workflowInputs(m);
    const { tested } = await previewThenTest(m, inputs);
    expect(tested.served).toEqual({ v2: 300 });

    const rollout = await runOnMesh(m, { inputs });
    expect(rollout.exitCode, rollout.stdout).toBe(0);
    expect(rollout.outputs.result).toBe("promoted");
    expect(previewRoutes(m)).toEqual([]);
    expect(httpRoutes(m).map((r) => r.name)).toEqual(["primary"]);
    // The first stage counted from the preview: its canary requests include the test step's 300.
    const report = JSON.parse(rollout.outputs.report as string);
    const stage1 = report.stages[0].canary.requests;
    console.log(
      `stage 1 canary requests counted: ${stage1} (test step 300; users on the canary over the whole rollout: ${usersOnCanary(m)})`,
    );
    expect(stage1).toBeGreaterThanOrEqual(300);
    expect(stage1).toBeLessThanOrEqual(300 + usersOnCanary(m));
    expect(usersOnCanary(m)).toBeGreaterThan(0);
    const state = JSON.parse(
      m.kube.get("virtualservices", NAMESPACE, "backend")?.metadata.annotations?.[
        "canary.istio-action.dev/state"
      ] ?? "{}",
    );
    expect(state.history.find((h: { event: string }) => h.event === "preview")?.reason).toMatch(
      new RegExp(`^stage 1 counts the canary's requests from the preview of x-canary: ${ROLLOUT_ID}, added `),
    );
  });

  it("preview: keep — the route serves the header through the stages and goes with the rollback", async () => {
    const m = await meshWith({ traffic: USERS, canary: { errorRate: 0.3 } });
    const inputs = workflowInputs(m, { preview: "keep" });
    await previewThenTest(m, inputs);
    let during: Record<string, number> | undefined;
    const rollout = await runOnMesh(m, {
      inputs,
      onStdout: (chunk) => {
        if (!during && chunk.includes("stage 1/3 · 10 %"))
          during = m.traffic.request(
            { source: "mesh", host: "backend", headers: { "x-canary": ROLLOUT_ID } },
            20,
          ).served;
      },
    });
    expect(rollout.outputs.result, rollout.stdout).toBe("rolled-back");
    expect(during).toEqual({ v2: 20 });
    expect(previewRoutes(m)).toEqual([]);
    expect(httpRoutes(m).map((r) => r.name)).toEqual(["primary"]);
  });

  it("a cancelled rollout's post step removes the kept preview route with the rollback", async () => {
    const m = await meshWith({ traffic: USERS });
    const inputs = workflowInputs(m, {
      preview: "keep",
      "min-stage-duration": "30s",
      "max-stage-duration": "60s",
    });
    const { preview } = await previewThenTest(m, inputs);
    let child: ChildProcess | undefined;
    const main = await runOnMesh(m, {
      inputs,
      onSpawn: (c) => {
        child = c;
      },
      onStdout: onceInStage("1/3 · 10 %", 1, () => child?.kill("SIGKILL")),
    });
    expect(main.signal).toBe("SIGKILL");
    expect(previewRoutes(m)).toHaveLength(1);
    const post = await runOnMesh(m, { inputs, state: main.state });
    expect(post.outputs.result, post.stdout).toBe("rolled-back");
    expect(previewRoutes(m)).toEqual([]);
    // The preview step's own post step, last in the job, finds nothing left.
    const previewPost = await runOnMesh(m, {
      inputs: { ...inputs, command: "preview" },
      state: preview.state,
    });
    expect(previewPost.exitCode).toBe(0);
    expect(previewPost.stdout).toContain("No preview route is left");
  });

  it("a job whose test step failed (no rollout ran): the preview step's post step removes it", async () => {
    const m = await meshWith({ traffic: USERS });
    const inputs = workflowInputs(m);
    const { preview } = await previewThenTest(m, inputs);
    const post = await runOnMesh(m, { inputs: { ...inputs, command: "preview" }, state: preview.state });
    expect(post.exitCode, post.stdout).toBe(0);
    expect(post.stdout).toContain("removed the preview route (istio-canary-preview)");
    expect(httpRoutes(m).map((r) => r.name)).toEqual(["primary"]);
  });

  it("command: rollback removes a preview route when no rollout began", async () => {
    const m = await meshWith({ traffic: USERS });
    const inputs = workflowInputs(m);
    await previewThenTest(m, inputs);
    const status = await runOnMesh(m, { inputs: { ...inputs, command: "status" } });
    expect(status.outputs["canary-weight"]).toBe("0");
    expect(status.summary).toContain(
      `the preview route istio-canary-preview sends requests with x-canary: ${ROLLOUT_ID} to the canary`,
    );
    const rollback = await runOnMesh(m, { inputs: { ...inputs, command: "rollback" } });
    expect(rollback.outputs.result, rollback.stdout).toBe("rolled-back");
    expect(previewRoutes(m)).toEqual([]);
  });
});

describe("command: preview after a finalized promotion (the canary Deployment scaled to zero)", () => {
  it("scales the canary back up, previews it, and the rollout promotes and finalizes it", {
    timeout: 180_000,
  }, async () => {
    const m = await meshWith({ traffic: USERS, deployments: { readyDelayMs: 300 } });
    const first = await runOnMesh(m, { inputs: workflowInputs(m), runId: "900" });
    expect(first.outputs).toMatchObject({ result: "promoted", finalized: "true" });
    expect(m.kube.get("deployments", NAMESPACE, "backend-v2")?.spec).toMatchObject({ replicas: 0 });

    const inputs = workflowInputs(m);
    const preview = await runOnMesh(m, { inputs: { ...inputs, command: "preview" } });
    expect(preview.exitCode, preview.stdout).toBe(0);
    expect(preview.stdout).toMatch(/canary Deployment was scaled back up/);
    const tested = m.traffic.request(
      { source: "mesh", host: "backend", headers: { "x-canary": ROLLOUT_ID } },
      100,
    );
    expect(tested.served).toEqual({ v2: 100 });
    const rollout = await runOnMesh(m, { inputs });
    expect(rollout.outputs, rollout.stdout).toMatchObject({ result: "promoted", finalized: "true" });
    expect(httpRoutes(m).map((r) => r.name)).toEqual(["primary"]);
  });
});
