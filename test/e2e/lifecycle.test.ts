/**
 * End to end across processes: pause and promote, a cancelled or crashed main step and its post
 * step, and two runs racing for one VirtualService.
 */
import type { ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import { STATE_ANNOTATION } from "../../src/constants.ts";
import { NAMESPACE } from "../mesh/fixtures.ts";
import { BOT } from "../mesh/github-api.ts";
import type { Mesh } from "../mesh/index.ts";
import {
  COMMIT,
  canaryWeight,
  errorLines,
  fastInputs,
  onceInStage,
  PULL_REQUEST,
  REPOSITORY,
  runOnMesh,
  useMesh,
} from "../support/e2e.ts";

const meshWith = useMesh();

const stateOf = (m: Mesh) =>
  JSON.parse(
    m.kube.get("virtualservices", NAMESPACE, "backend")?.metadata.annotations?.[STATE_ANNOTATION] ?? "null",
  );
/** Runs a rollout with a long first stage and sends the main step `signal` one second into it. */
async function signalMidStage(m: Mesh, signal: NodeJS.Signals) {
  let child: ChildProcess | undefined;
  return runOnMesh(m, {
    inputs: fastInputs(m, { "min-stage-duration": "30s", "max-stage-duration": "60s" }),
    onSpawn: (c) => {
      child = c;
    },
    onStdout: onceInStage("1/3 · 10 %", 1, () => child?.kill(signal)),
  });
}

const patches = (m: Mesh) => m.kube.audit.filter((e) => e.verb === "patch").length;

describe("across runs", () => {
  it("pauses after 10 %, then a second process promotes", async () => {
    const m = await meshWith();
    const first = await runOnMesh(m, { inputs: fastInputs(m, { "pause-after": "10" }) });
    expect(first.outputs.result).toBe("paused");
    expect(first.exitCode).toBe(0);
    expect(canaryWeight(m)).toEqual([90, 10]);
    expect(stateOf(m)).toMatchObject({ status: "paused", weight: 10, stageIndex: 0 });
    expect(stateOf(m).lease).toBeUndefined();

    // A different commit's workflow_dispatch run promotes it.
    // The dispatch runs at a later commit of main; the report still goes to the paused rollout's commit.
    const second = await runOnMesh(m, {
      commit: "fedcba9876543210fedcba9876543210fedcba98",
      inputs: fastInputs(m, { command: "promote", "rollout-id": stateOf(m).rolloutId }),
      runId: "2002",
    });
    expect(second.exitCode, second.stdout).toBe(0);
    expect(second.outputs.result).toBe("promoted");
    expect(canaryWeight(m)).toEqual([0, 100]);
    const report = JSON.parse(second.outputs.report as string);
    // The report shows every stage: the one the first run analysed, from the state, and this run's.
    expect(report.stages.map((s: { weight: number; decision: string }) => [s.weight, s.decision])).toEqual([
      [10, "pass"],
      [50, "pass"],
      [100, "pass"],
    ]);
    const comments = (m.github.comments.get(`${REPOSITORY}#${PULL_REQUEST}`) ?? []).filter(
      (c) => c.user.login === BOT.login,
    );
    expect(comments).toHaveLength(1);
    expect(comments[0]?.body).toContain("### ✅ Promoted");
    expect(m.github.statuses.at(-1)).toMatchObject({ sha: COMMIT, state: "success" });
  });

  it("refuses a promote with nothing paused, writing nothing", async () => {
    const m = await meshWith();
    const run = await runOnMesh(m, { inputs: fastInputs(m, { command: "promote" }) });
    expect(run.exitCode).toBe(1);
    expect(errorLines(run)[0]).toContain("nothing to promote");
    expect(patches(m)).toBe(0);
  });

  it("rolls back to 100 % stable when the main step gets SIGTERM mid-stage", async () => {
    const m = await meshWith();
    const main = await signalMidStage(m, "SIGTERM");
    expect(main.outputs.result).toBe("rolled-back");
    expect(canaryWeight(m)).toEqual([100]);
    expect(stateOf(m)).toMatchObject({ status: "rolled-back", weight: 0 });
    expect(stateOf(m).reason).toContain("cancelled during stage 1 (10 %)");
    // The post step, with main's saved state, finds nothing left to do.
    const post = await runOnMesh(m, { inputs: fastInputs(m), state: main.state });
    expect(post.exitCode).toBe(0);
    expect(post.stdout).toContain("nothing to clean up");
  });

  it("the post step restores 100 % stable after the main step was killed mid-stage", async () => {
    const m = await meshWith();
    const main = await signalMidStage(m, "SIGKILL");
    expect(main.signal).toBe("SIGKILL");
    expect(canaryWeight(m)).toEqual([90, 10]);
    expect(main.state.rolloutInFlight).toContain('"weight":10');
    const post = await runOnMesh(m, { inputs: fastInputs(m), state: main.state });
    expect(post.exitCode, post.stdout).toBe(0);
    expect(post.outputs.result).toBe("rolled-back");
    expect(canaryWeight(m)).toEqual([100]);
    expect(stateOf(m)).toMatchObject({ status: "rolled-back" });
    expect(stateOf(m).reason).toContain("the post step restored 100 % stable");
  });

  it("refuses a second rollout on the same VirtualService while the first runs, writing nothing", async () => {
    const m = await meshWith();
    let second: Promise<Awaited<ReturnType<typeof runOnMesh>>> | undefined;
    let patchesBefore = 0;
    const first = runOnMesh(m, {
      inputs: fastInputs(m),
      onStdout: onceInStage("1/3 · 10 %", 1, () => {
        patchesBefore = patches(m);
        second = runOnMesh(m, { inputs: fastInputs(m), runId: "3003" });
      }),
    });
    const a = await first;
    // The second run started from the first's output, which has all been read by now.
    expect(second).toBeDefined();
    const b = await (second as NonNullable<typeof second>);
    expect(b.exitCode).toBe(1);
    expect(errorLines(b)[0]).toMatch(
      /is being rolled out by acme\/shop run 1001 attempt 1 .*this run changed nothing/,
    );
    expect(a.outputs.result).toBe("promoted");
    // Every patch after the second run started came from the first (the first made 4 in all).
    expect(patchesBefore).toBe(1);
    expect(patches(m)).toBe(4);
  });
});
