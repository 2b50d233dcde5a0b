/** Finalizing a promotion onto the stable Deployment (issue 14): the real engine, virtual time, a fake WorkloadPort. */
import { describe, expect, it } from "vitest";
import { InputError, parseConfig } from "../../src/inputs/config.ts";
import { CommandError, type EngineSettings, RolloutEngine } from "../../src/rollout/engine.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { FakeWorkloads } from "../support/fake-workloads.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const healthy = { requestsPerSecond: 100, stableErrorRate: 0.0005, canaryErrorRate: 0.0005 };

function setup(
  settings: Partial<EngineSettings> = {},
  shared: { traffic?: InMemoryTraffic; workloads?: FakeWorkloads } = {},
  holder = "run-1",
  commit = "abc1234def",
) {
  const traffic = shared.traffic ?? new InMemoryTraffic();
  const workloads = shared.workloads ?? new FakeWorkloads();
  const clock = new VirtualClock();
  const metrics = new SimulatedMetrics(clock, traffic, { ...healthy, seed: 5 });
  const log = new EventLog();
  const controller = new AbortController();
  const engine = new RolloutEngine(
    { ...defaultEngineSettings(), ...settings },
    { holder, commit, newRolloutId: `${commit.slice(0, 7)}-${holder}` },
    { traffic, metrics, workloads, clock, events: log, signal: controller.signal },
    "VirtualService shop/backend",
  );
  return { traffic, workloads, engine, log, controller };
}

const finished = (log: EventLog) => log.events.find((e) => e.type === "finished");

describe("finalize: copy", () => {
  it("copies the canary onto stable, moves all traffic back to it, then scales the canary to zero", async () => {
    const { engine, traffic, workloads, log } = setup();
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "promoted", weight: 0, failed: false, finalized: true });
    expect(outcome.reason).toMatch(/promoted and finalized/);
    expect(traffic.writes.map((w) => [w.weight, w.status])).toEqual([
      [1, "progressing"],
      [10, "progressing"],
      [50, "progressing"],
      [100, "progressing"],
      [100, "finalizing"],
      [0, "promoted"],
      [0, "promoted"],
    ]);
    expect(workloads.calls).toEqual([
      "resolve",
      "waitCanary",
      "stableStatus",
      "resolve",
      "copy",
      "waitStable",
      "servesPromoted",
      "scaleCanary 0",
    ]);
    expect(workloads.stable.images).toEqual({ app: "backend:v2" });
    expect(workloads.canary.replicas).toBe(0);
    expect(traffic.state).toMatchObject({
      status: "promoted",
      finalized: true,
      canaryScaledDown: true,
      stableImagesBefore: { app: "backend:v1" },
      deployments: { stable: "shop/backend-v1", canary: "shop/backend-v2" },
    });
    expect(traffic.state?.lease).toBeUndefined();
    expect(traffic.state?.stageResults).toHaveLength(4);
    expect(finished(log)).toMatchObject({ finalized: true, weight: 0 });
  });

  it("keeps traffic on the canary when the stable never gets ready; rollback refuses; promote retries", async () => {
    const workloads = new FakeWorkloads();
    workloads.stableBroken = true;
    const first = setup({}, { workloads });
    const outcome = await first.engine.run();
    expect(outcome).toMatchObject({ result: "promoted", weight: 100, failed: true, finalized: false });
    expect(outcome.reason).toMatch(/not finalized: shop\/backend-v1 is not ready .*ImagePullBackOff/);
    expect(first.traffic.weight).toBe(100);
    expect(first.traffic.state).toMatchObject({ status: "finalizing", weight: 100 });
    expect(first.traffic.state?.finalizeProblem).toMatch(/ImagePullBackOff/);
    // A later rollback finds the stable by name to check it (the action's rollback has no preflight).
    expect(first.traffic.state?.deployments).toEqual({
      stable: "shop/backend-v1",
      canary: "shop/backend-v2",
    });
    expect(first.traffic.state?.lease).toBeUndefined();
    expect(workloads.calls).not.toContain("scaleCanary 0");

    const rollback = setup({ command: "rollback" }, { traffic: first.traffic, workloads }, "run-2");
    const refused = await rollback.engine.run();
    expect(refused).toMatchObject({ result: "unchanged", weight: 100, failed: true });
    expect(refused.reason).toMatch(/stable Deployment is not ready.*traffic stays on the canary/);
    expect(first.traffic.weight).toBe(100);

    workloads.stableBroken = false;
    workloads.calls.length = 0;
    const promote = setup({ command: "promote" }, { traffic: first.traffic, workloads }, "run-3");
    expect(await promote.engine.run()).toMatchObject({ result: "promoted", weight: 0, finalized: true });
    expect(workloads.calls).toEqual([
      "resolve",
      "resolve",
      "copy",
      "waitStable",
      "servesPromoted",
      "scaleCanary 0",
    ]);
    expect(first.traffic.state).toMatchObject({ status: "promoted", finalized: true });
    expect(first.traffic.state?.finalizeProblem).toBeUndefined();
    expect(first.traffic.state?.history.map((h) => h.event)).toContain("finalize-retry");
  });

  it("records finalizing before anything can fail, so the post step never rolls back a canary that passed", async () => {
    const workloads = new FakeWorkloads();
    // The Deployments resolve at the start, then the API refuses (RBAC changed mid-rollout).
    workloads.onCall = (call) => {
      if (call === "waitCanary") workloads.resolveError = new Error("deployments.apps is forbidden");
    };
    const { engine, traffic } = setup({}, { workloads });
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "promoted", weight: 100, failed: true, finalized: false });
    expect(outcome.reason).toMatch(/could not be updated: deployments.apps is forbidden/);
    expect(traffic.state).toMatchObject({ status: "finalizing", weight: 100 });
    const post = setup({ command: "rollback" }, { traffic, workloads }, "run-1");
    expect(await post.engine.abandon(traffic.state!.rolloutId, "cancelled", [100])).toMatchObject({
      result: "unchanged",
      weight: 100,
    });
    expect(traffic.weight).toBe(100);
  });

  it("a rollback while finalizing goes to the stable once it is ready", async () => {
    const workloads = new FakeWorkloads();
    workloads.stableBroken = true;
    const first = setup({}, { workloads });
    await first.engine.run();
    workloads.stableBroken = false;
    const rollback = setup({ command: "rollback" }, { traffic: first.traffic, workloads }, "run-2");
    expect(await rollback.engine.run()).toMatchObject({ result: "rolled-back", weight: 0 });
    expect(first.traffic.state?.status).toBe("rolled-back");
  });

  it("a forged finalizing record naming a Deployment that does not run the stable subset cannot block a rollback", async () => {
    const workloads = new FakeWorkloads();
    const first = setup({}, { workloads });
    await first.engine.run();
    // Someone who may edit the VirtualService forges a finalization at 100 % canary whose stable
    // is another app's Deployment, scaled to zero: its status alone would refuse the rollback.
    const forged = { ...first.traffic.state!, status: "finalizing" as const, weight: 100 };
    forged.deployments = { stable: "shop/other-app", canary: "shop/backend-v2" };
    first.traffic.weight = 100;
    first.traffic.state = forged;
    workloads.stableBroken = true;
    workloads.resolveError = new Error("Deployment shop/other-app does not run the stable version");
    workloads.calls.length = 0;
    const rollback = setup({ command: "rollback" }, { traffic: first.traffic, workloads }, "run-2");
    expect(await rollback.engine.run()).toMatchObject({ result: "rolled-back", weight: 0, failed: false });
    expect(first.traffic.weight).toBe(0);
    expect(first.traffic.state?.status).toBe("rolled-back");
    expect(workloads.calls).not.toContain("stableStatus");
    const warning = rollback.log.events.find((e) => e.type === "warning");
    expect(warning).toMatchObject({ message: expect.stringMatching(/names in the record are not used/) });
  });

  it("with finalize: none, a finalizing record (not this workflow's own) cannot block a rollback", async () => {
    const first = setup();
    await first.engine.run();
    first.traffic.weight = 100;
    first.traffic.state = { ...first.traffic.state!, status: "finalizing" as const, weight: 100 };
    const clock = new VirtualClock();
    const log = new EventLog();
    // finalize: none gives the engine no workloads port: nothing can check the stable Deployment.
    const rollback = new RolloutEngine(
      { ...defaultEngineSettings(), command: "rollback" },
      { holder: "run-2", commit: "abc1234def", newRolloutId: "abc1234-run-2" },
      {
        traffic: first.traffic,
        metrics: new SimulatedMetrics(clock, first.traffic, { ...healthy, seed: 5 }),
        clock,
        events: log,
      },
      "VirtualService shop/backend",
    );
    expect(await rollback.run()).toMatchObject({ result: "rolled-back", weight: 0 });
    expect(first.traffic.weight).toBe(0);
    const warning = log.events.find((e) => e.type === "warning");
    expect(warning).toMatchObject({ message: expect.stringMatching(/finalize: none/) });
  });

  it("a promote resumes a finalization; another run's rollout (any commit) refuses and writes nothing", async () => {
    const workloads = new FakeWorkloads();
    workloads.stableBroken = true;
    const first = setup({}, { workloads });
    await first.engine.run();
    const writes = first.traffic.writes.length;
    const other = setup({}, { traffic: first.traffic, workloads }, "run-2", "fff9999000");
    await expect(other.engine.run()).rejects.toThrow(/not finalized yet.*would promote it without analysis/);
    expect(first.traffic.writes).toHaveLength(writes);
    workloads.stableBroken = false;
    // The record is not proof that the canary passed: another run of the same commit copies nothing.
    const sameCommit = setup({}, { traffic: first.traffic, workloads }, "run-3");
    await expect(sameCommit.engine.run()).rejects.toThrow(/not by this run: a record is not proof/);
    expect(first.traffic.writes).toHaveLength(writes);
    const again = setup({ command: "promote" }, { traffic: first.traffic, workloads }, "run-3");
    expect(await again.engine.run()).toMatchObject({ result: "promoted", weight: 0, finalized: true });
  });

  it("the post step leaves a finalization's traffic on the canary", async () => {
    const workloads = new FakeWorkloads();
    workloads.stableBroken = true;
    const first = setup({}, { workloads });
    await first.engine.run();
    const post = setup({ command: "rollback" }, { traffic: first.traffic, workloads }, "run-1");
    const outcome = await post.engine.abandon(first.traffic.state!.rolloutId, "cancelled", [100]);
    expect(outcome).toMatchObject({ result: "unchanged", weight: 100, failed: false });
    expect(outcome?.reason).toMatch(/leaves the traffic on the canary/);
    expect(first.traffic.weight).toBe(100);
    expect(first.traffic.state?.status).toBe("finalizing");
  });

  it("the next release scales the canary back up and waits for it before stage 1", async () => {
    const first = setup();
    await first.engine.run();
    const { traffic, workloads } = first;
    workloads.canary.images = { app: "backend:v3" };
    const writesAtScale: number[] = [];
    workloads.onCall = (call) => {
      if (call.startsWith("scaleCanary") || call === "waitCanary") writesAtScale.push(traffic.writes.length);
    };
    const next = setup({}, { traffic, workloads }, "run-2", "def5678abc");
    workloads.calls.length = 0;
    const outcome = await next.engine.run();
    expect(workloads.calls.slice(0, 3)).toEqual(["resolve", "scaleCanary stable", "waitCanary"]);
    expect(new Set(writesAtScale.slice(0, 2))).toEqual(new Set([7]));
    expect(outcome).toMatchObject({ result: "promoted", weight: 0, finalized: true });
    expect(workloads.stable.images).toEqual({ app: "backend:v3" });
    expect(next.log.events.some((e) => e.type === "finalize" && e.step === "canary-scaled-up")).toBe(true);
  });

  it("scales the canary up to canary-replicas when given", async () => {
    const first = setup();
    await first.engine.run();
    const settings = { finalize: { ...defaultEngineSettings().finalize, canaryReplicas: 2 } };
    const next = setup(
      settings,
      { traffic: first.traffic, workloads: first.workloads },
      "run-2",
      "def5678abc",
    );
    await next.engine.run();
    expect(first.workloads.calls).toContain("scaleCanary 2");
  });

  it("a canary that never gets ready fails the next release before any weight is written", async () => {
    const first = setup();
    await first.engine.run();
    const writes = first.traffic.writes.length;
    first.workloads.canaryBroken = true;
    const next = setup({}, { traffic: first.traffic, workloads: first.workloads }, "run-2", "def5678abc");
    await expect(next.engine.run()).rejects.toThrow(
      /was scaled back up for this release but did not roll out.*no weight was written/,
    );
    expect(first.traffic.writes).toHaveLength(writes);
    expect(first.traffic.weight).toBe(0);
  });

  it("refuses a rollout before any write when the Deployments cannot be resolved", async () => {
    const workloads = new FakeWorkloads();
    workloads.resolveError = new CommandError("two Deployments own the canary's pods: a, b");
    const { engine, traffic } = setup({}, { workloads });
    await expect(engine.run()).rejects.toThrow(/two Deployments/);
    expect(traffic.writes).toHaveLength(0);
  });

  it("a promotion from before finalization: a rollout refuses and says to promote; promote finalizes it", async () => {
    const none = { finalize: { ...defaultEngineSettings().finalize, policy: "none" as const } };
    const first = setup(none);
    expect(await first.engine.run()).toMatchObject({ result: "promoted", weight: 100 });
    expect(first.workloads.calls).toEqual([]);
    const shared = { traffic: first.traffic, workloads: first.workloads };
    const next = setup({}, shared, "run-2", "def5678abc");
    await expect(next.engine.run()).rejects.toThrow(/never finalized.*run command: promote to finalize it/);
    const promote = setup({ command: "promote" }, shared, "run-3", "def5678abc");
    expect(await promote.engine.run()).toMatchObject({ result: "promoted", weight: 0, finalized: true });
    expect(first.workloads.stable.images).toEqual({ app: "backend:v2" });
  });

  it("with scale-down-canary false the canary keeps its replicas and the next rollout leaves it", async () => {
    const keep = { finalize: { ...defaultEngineSettings().finalize, scaleDownCanary: false } };
    const first = setup(keep);
    expect(await first.engine.run()).toMatchObject({ result: "promoted", weight: 0, finalized: true });
    expect(first.workloads.canary.replicas).toBe(3);
    const next = setup(keep, { traffic: first.traffic, workloads: first.workloads }, "run-2", "def5678abc");
    await next.engine.run();
    expect(first.workloads.calls.filter((c) => c.startsWith("scaleCanary"))).toEqual([]);
  });
});

describe("finalization inputs", () => {
  const base = {
    "virtual-service": "backend",
    "stable-subset": "v1",
    "canary-subset": "v2",
    "prometheus-url": "http://prometheus:9090",
  };
  it("defaults to auto, scale-down, and the Deployment's own deadline", () => {
    expect(parseConfig(base).finalize).toEqual({ policy: "auto", scaleDownCanary: true });
  });
  it("names each bad input with its value", () => {
    const bad = () =>
      parseConfig({
        ...base,
        finalize: "swap",
        "finalize-timeout": "soon",
        "scale-down-canary": "maybe",
        "canary-replicas": "0",
        "stable-deployment": "Backend_V1",
      });
    expect(bad).toThrow(InputError);
    const problems = (() => {
      try {
        bad();
      } catch (error) {
        return (error as InputError).problems.map((p) => p.input);
      }
    })();
    expect(problems).toEqual([
      "finalize",
      "finalize-timeout",
      "scale-down-canary",
      "canary-replicas",
      "stable-deployment",
    ]);
    expect(bad).toThrow(/Input 'finalize': "swap" is not allowed; use auto .*, copy .* or none/);
  });
  it("parses the optional names, replicas and timeout", () => {
    const config = parseConfig({
      ...base,
      finalize: "none",
      "finalize-timeout": "2m",
      "canary-replicas": "2",
      "stable-deployment": "backend-v1",
      "canary-deployment": "backend-v2",
    });
    expect(config.finalize).toMatchObject({
      policy: "none",
      timeoutMs: 120_000,
      canaryReplicas: 2,
      stableDeployment: "backend-v1",
      canaryDeployment: "backend-v2",
    });
  });
});
