/** The real engine in virtual time: hours of rollout in milliseconds, deterministic. */
import { describe, expect, it } from "vitest";
import { CommandError, type EngineSettings, RolloutEngine } from "../../src/rollout/engine.ts";
import { LeaseHeldError } from "../../src/rollout/model/state.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const defaults: EngineSettings = defaultEngineSettings();

function setup(
  settings: Partial<EngineSettings> = {},
  behaviour = { requestsPerSecond: 100, stableErrorRate: 0.0005, canaryErrorRate: 0.0005 },
  holder = "run-1",
  traffic = new InMemoryTraffic(),
) {
  const clock = new VirtualClock();
  const metrics = new SimulatedMetrics(clock, traffic, { ...behaviour, seed: 3 });
  const log = new EventLog();
  const controller = new AbortController();
  const engine = new RolloutEngine(
    { ...defaults, ...settings },
    { holder, commit: "abc1234def", newRolloutId: "abc1234-1" },
    { traffic, metrics, clock, events: log, signal: controller.signal },
    "VirtualService shop/backend",
  );
  return { clock, traffic, metrics, log, engine, controller };
}

describe("rollout engine in virtual time", () => {
  it("promotes a healthy canary through the default stages with the contract's defaults", async () => {
    const { engine, traffic, clock, log } = setup();
    const started = clock.now().getTime();
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "promoted", weight: 100, failed: false });
    expect(traffic.writes.map((w) => w.weight)).toEqual([1, 10, 50, 100, 100]);
    expect(traffic.state).toMatchObject({ status: "promoted", stageIndex: 3 });
    expect(traffic.state?.lease).toBeUndefined();
    const minutes = (clock.now().getTime() - started) / 60_000;
    // Four stages of min-stage-duration (1m) each: counting starts at the weight change.
    expect(minutes).toBeGreaterThanOrEqual(4);
    expect(minutes).toBeLessThan(5);
    expect(
      log.events.filter((e) => e.type === "stage-end").map((e) => (e as { decision: string }).decision),
    ).toEqual(["pass", "pass", "pass", "pass"]);
  });

  it("rolls back a bad canary in the first stage and fails the step", async () => {
    const { engine, traffic, metrics } = setup(
      {},
      { requestsPerSecond: 100, stableErrorRate: 0.0005, canaryErrorRate: 0.2 },
    );
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "rolled-back", weight: 0, failed: true });
    expect(outcome.reason).toMatch(/^Failed at 1 %/);
    expect(traffic.writes.map((w) => [w.weight, w.status])).toEqual([
      [1, "progressing"],
      [0, "rolled-back"],
    ]);
    expect(metrics.totals.canary.errors).toBeLessThan(30);
  });

  it("pauses at pause-after, then promote continues from the next stage", async () => {
    const { engine, traffic } = setup({ pauseAfter: 10 });
    expect(await engine.run()).toMatchObject({ result: "paused", weight: 10, failed: false });
    expect(traffic.state).toMatchObject({ status: "paused", stageIndex: 1 });
    const promote = setup({ command: "promote" }, undefined, "run-2", traffic);
    expect(await promote.engine.run()).toMatchObject({ result: "promoted", weight: 100 });
    expect(traffic.writes.map((w) => w.weight)).toEqual([1, 10, 10, 50, 100, 100]);
    expect(traffic.state?.stageResults?.map((r) => [r.weight, r.decision])).toEqual([
      [1, "pass"],
      [10, "pass"],
      [50, "pass"],
      [100, "pass"],
    ]);
  });

  it("promote with skip-analysis jumps to 100; promote with nothing paused is refused", async () => {
    const first = setup({ pauseAfter: 1 });
    await first.engine.run();
    const skip = setup({ command: "promote", skipAnalysis: true }, undefined, "run-2", first.traffic);
    expect(await skip.engine.run()).toMatchObject({ result: "promoted", weight: 100 });
    const again = setup({ command: "promote" }, undefined, "run-3", first.traffic);
    await expect(again.engine.run()).rejects.toThrow(CommandError);
  });

  it("rolls back when cancelled mid-stage", async () => {
    const { engine, traffic, controller, log } = setup();
    const original = log.emit.bind(log);
    log.emit = (e) => {
      original(e);
      if (e.type === "analysis" && e.stage === 1) controller.abort(new Error("cancelled by SIGINT"));
    };
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "rolled-back", failed: true });
    expect(outcome.reason).toBe("The job was cancelled during stage 2 (10 %)");
    expect(traffic.weight).toBe(0);
  });

  it("holds when Prometheus stays unreachable and on-unreachable is hold", async () => {
    const { engine, traffic, metrics, log } = setup({ onUnreachable: "hold" });
    const original = log.emit.bind(log);
    log.emit = (e) => {
      original(e);
      if (e.type === "weight" && e.stage === 1) metrics.down = true;
    };
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "paused", weight: 10, failed: true });
    expect(outcome.reason).toMatch(
      /^Held at 10 % \(on-unreachable: hold\): Prometheus could not be read \(unreachable\)/,
    );
    expect(traffic.state?.status).toBe("paused");
  });

  it("refuses to start while another run holds the lease, and a rollback overrides it", async () => {
    const first = setup({ pauseAfter: 10 });
    const traffic = first.traffic;
    traffic.state = {
      ...(await first.engine.run()).state!,
      status: "progressing",
      lease: { holder: "run-1", expiresAt: "2099-01-01T00:00:00Z" },
    };
    const second = setup({}, undefined, "run-2", traffic);
    await expect(second.engine.run()).rejects.toThrow(LeaseHeldError);
    const rollback = setup({ command: "rollback" }, undefined, "run-3", traffic);
    expect(await rollback.engine.run()).toMatchObject({ result: "rolled-back", weight: 0, failed: false });
  });

  it("refuses a new rollout while the canary already has traffic from a finished one", async () => {
    const first = setup();
    await first.engine.run();
    const next = setup({}, undefined, "run-2", first.traffic);
    await expect(next.engine.run()).rejects.toThrow(/already gets 100 % of traffic/);
  });

  it("rolls back when the Kubernetes API fails a stage's write", async () => {
    const traffic = new InMemoryTraffic();
    const { engine } = setup({}, undefined, "run-1", traffic);
    const original = traffic.write.bind(traffic);
    let calls = 0;
    traffic.write = async (weight, next) => {
      calls += 1;
      if (calls === 2) throw new Error("Kubernetes API answered 500 InternalError");
      return original(weight, next);
    };
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "rolled-back", failed: true });
    expect(outcome.reason).toMatch(/^Could not set stage 2 \(10 %\): Kubernetes API answered 500/);
    expect(traffic.weight).toBe(0);
  });

  it("stops where a person left the weights mid-stage, and never writes a weight again", async () => {
    for (const [stable, canary, result] of [
      [100, 0, "rolled-back"],
      [70, 30, "paused"],
    ] as const) {
      const { engine, traffic, log } = setup();
      const original = log.emit.bind(log);
      log.emit = (e) => {
        original(e);
        // Someone edits the routes by hand during stage 2 (10 %).
        if (e.type === "weight" && e.stage === 1) traffic.weight = canary;
      };
      const outcome = await engine.run();
      expect(stable + canary).toBe(100);
      expect(outcome).toMatchObject({ result, weight: canary, failed: true });
      expect(outcome.reason).toMatch(/someone else changed the canary's weight from 10 % to/);
      expect(traffic.weight).toBe(canary);
      expect(traffic.writes.map((w) => w.weight)).toEqual([1, 10, canary]);
      expect(traffic.state?.history.at(-1)?.event).toBe("halted");
    }
  });

  it("with rollback-on-cancel false, a cancelled main writes nothing", async () => {
    const { engine, traffic, controller, log } = setup({ rollbackOnCancel: false });
    const original = log.emit.bind(log);
    log.emit = (e) => {
      original(e);
      if (e.type === "analysis" && e.stage === 1) controller.abort(new Error("cancelled by SIGINT"));
    };
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "paused", weight: 10, failed: true });
    expect(traffic.writes.map((w) => w.weight)).toEqual([1, 10]);
  });

  it("tells the post step about a weight before writing it", async () => {
    const { engine, log } = setup();
    await engine.run();
    const kinds = log.events.filter((e) => e.type === "moving" || e.type === "weight").map((e) => e.type);
    expect(kinds.slice(0, 4)).toEqual(["moving", "weight", "moving", "weight"]);
  });

  it("carries the canary's evidence across a pause into the promote", async () => {
    const { engine, traffic } = setup({ pauseAfter: 50 });
    await engine.run();
    const carried = traffic.state?.evidence?.errors.n ?? 0;
    expect(carried).toBeGreaterThan(3000);
    const promote = setup({ command: "promote" }, undefined, "run-2", traffic);
    expect(await promote.engine.run()).toMatchObject({ result: "promoted" });
    expect(traffic.state?.evidence?.errors.n ?? 0).toBeGreaterThan(carried);
  });
});
