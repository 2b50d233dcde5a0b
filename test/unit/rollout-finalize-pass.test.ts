/**
 * Issue 20, part B, on the real engine in virtual time: the stable is checked before traffic moves
 * to it, a pass is never undone by a failed record or the post step, and a dead run's lease is
 * taken over once GitHub says the run is over.
 */
import { describe, expect, it } from "vitest";
import type { EngineSettings } from "../../src/rollout/engine.ts";
import { RolloutEngine } from "../../src/rollout/engine.ts";
import type { RolloutEvent, RunStatus, RunStatusPort } from "../../src/rollout/ports.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { FakeWorkloads } from "../support/fake-workloads.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const healthy = { requestsPerSecond: 100, stableErrorRate: 0.0005, canaryErrorRate: 0.0005 };

interface Setup {
  traffic?: InMemoryTraffic;
  workloads?: FakeWorkloads;
  runs?: RunStatusPort;
  onEvent?: (e: RolloutEvent, traffic: InMemoryTraffic) => void;
}

function setup(
  settings: Partial<EngineSettings> = {},
  shared: Setup = {},
  holder = "acme/shop run 1 attempt 1",
) {
  const traffic = shared.traffic ?? new InMemoryTraffic();
  const workloads = shared.workloads ?? new FakeWorkloads();
  const clock = new VirtualClock();
  const metrics = new SimulatedMetrics(clock, traffic, { ...healthy, seed: 5 });
  const log = new EventLog();
  const events = {
    emit: (e: RolloutEvent) => {
      log.emit(e);
      shared.onEvent?.(e, traffic);
    },
  };
  const engine = new RolloutEngine(
    { ...defaultEngineSettings(), ...settings },
    { holder, commit: "abc1234def", newRolloutId: `abc1234-${holder}` },
    { traffic, metrics, workloads, runs: shared.runs, clock, events },
    "VirtualService shop/backend",
  );
  return { traffic, workloads, engine, log };
}

/** Fails the write that records `finalizing` (the first write after the pass) `count` times with `error`. */
const failRecordAfterPass = (count: number, error: Error) => (e: RolloutEvent, traffic: InMemoryTraffic) => {
  if (e.type === "passed") traffic.failNext = { count, error };
};

class Runs implements RunStatusPort {
  readonly asked: string[] = [];
  answer: RunStatus | undefined;
  async status(holder: string) {
    this.asked.push(holder);
    return this.answer;
  }
}

describe("the stable is checked before all traffic moves to it", () => {
  it("a stable scaled to zero after the copy keeps the traffic on the canary, naming who; promote finishes later", async () => {
    const workloads = new FakeWorkloads();
    workloads.onCall = (call) => {
      // Right after the wait said "rolled out": kubectl calls a Deployment scaled to 0 complete too.
      if (call === "servesPromoted") {
        workloads.stable.replicas = 0;
        workloads.stableChangedBy = '"kubectl-scale" (Update of /scale at 2026-12-06T08:10:03Z)';
      }
    };
    const first = setup({}, { workloads });
    const outcome = await first.engine.run();
    expect(outcome).toMatchObject({ result: "promoted", weight: 100, failed: true, finalized: false });
    expect(outcome.reason).toMatch(/not finalized: .*kubectl-scale.*Traffic stays on the canary/);
    expect(first.traffic.weight).toBe(100);
    expect(first.traffic.state).toMatchObject({ status: "finalizing" });
    expect(first.traffic.state?.lease).toBeUndefined();

    workloads.onCall = undefined;
    workloads.stable.replicas = 3;
    const promote = setup(
      { command: "promote" },
      { traffic: first.traffic, workloads },
      "acme/shop run 2 attempt 1",
    );
    expect(await promote.engine.run()).toMatchObject({ result: "promoted", weight: 0, finalized: true });
  });

  it("a rollback while finalizing refuses a stable scaled to zero (rolled out to kubectl, serving nothing)", async () => {
    const workloads = new FakeWorkloads();
    workloads.stableBroken = true;
    const first = setup({}, { workloads });
    await first.engine.run();
    expect(first.traffic.state?.status).toBe("finalizing");
    workloads.stableBroken = false;
    workloads.stable.replicas = 0;
    const rollback = setup(
      { command: "rollback" },
      { traffic: first.traffic, workloads },
      "acme/shop run 2 attempt 1",
    );
    const refused = await rollback.engine.run();
    expect(refused).toMatchObject({ result: "unchanged", weight: 100, failed: true });
    expect(first.traffic.weight).toBe(100);
  });
});

describe("a pass is never undone", () => {
  it("a record refused once (an admission webhook's 422) is retried and the promotion finalized", async () => {
    const refused = Object.assign(new Error("admission webhook denied the request"), { status: 422 });
    const { engine, traffic } = setup({}, { onEvent: failRecordAfterPass(1, refused) });
    expect(await engine.run()).toMatchObject({ result: "promoted", weight: 0, finalized: true });
    expect(traffic.state).toMatchObject({ status: "promoted", finalized: true });
  });

  it("a record that keeps failing leaves the traffic on the canary; the post step records the pass, never rolls back", async () => {
    const down = Object.assign(new Error("503 the server is currently unable to handle the request"), {
      status: 503,
    });
    const main = setup({}, { onEvent: failRecordAfterPass(10_000, down) });
    const outcome = await main.engine.run();
    expect(outcome).toMatchObject({ result: "promoted", weight: 100, failed: true, finalized: false });
    expect(outcome.reason).toMatch(/nothing rolls it back/);
    expect(main.traffic.weight).toBe(100);
    expect(main.traffic.state?.status).toBe("progressing");
    main.traffic.failNext = undefined;

    const post = setup({ command: "rollback" }, { traffic: main.traffic, workloads: main.workloads });
    const rolloutId = main.traffic.state?.rolloutId as string;
    const recorded = await post.engine.recordPass(rolloutId, "All 4 stages passed", true);
    expect(recorded).toMatchObject({ result: "promoted", weight: 100, failed: false });
    expect(main.traffic.weight).toBe(100);
    expect(main.traffic.state).toMatchObject({ status: "finalizing", reason: "All 4 stages passed" });
    expect(main.traffic.state?.lease).toBeUndefined();

    const promote = setup(
      { command: "promote" },
      { traffic: main.traffic, workloads: main.workloads },
      "acme/shop run 2 attempt 1",
    );
    expect(await promote.engine.run()).toMatchObject({ result: "promoted", weight: 0, finalized: true });
  });
});

describe("a dead run's lease", () => {
  /** A finalization whose run was killed after recording `finalizing` with its lease. */
  async function killedWhileFinalizing() {
    const workloads = new FakeWorkloads();
    workloads.stableBroken = true;
    const first = setup({}, { workloads });
    await first.engine.run();
    // As a kill leaves it: `finalizing` with the run's lease (a stopped finalization releases it).
    const state = first.traffic.state;
    if (!state) throw new Error("no state");
    first.traffic.state = {
      ...state,
      lease: { holder: "acme/shop run 1 attempt 1", expiresAt: "2099-01-01T00:00:00.000Z" },
    };
    workloads.stableBroken = false;
    return { traffic: first.traffic, workloads };
  }

  it("is taken over at once when GitHub says the run completed", async () => {
    const shared = await killedWhileFinalizing();
    const runs = new Runs();
    runs.answer = { ended: true, status: "completed", conclusion: "cancelled" };
    const promote = setup({ command: "promote" }, { ...shared, runs }, "acme/shop run 2 attempt 1");
    expect(await promote.engine.run()).toMatchObject({ result: "promoted", weight: 0, finalized: true });
    expect(runs.asked).toEqual(["acme/shop run 1 attempt 1"]);
    expect(shared.traffic.state?.history.map((h) => h.event)).toContain("lease-taken-over");
    expect(promote.log.events).toContainEqual(
      expect.objectContaining({
        type: "warning",
        message: expect.stringMatching(/as completed \(cancelled\)/),
      }),
    );
  });

  it("holds while GitHub says the run is in progress, or cannot say", async () => {
    for (const answer of [{ ended: false, status: "in_progress" }, undefined]) {
      const shared = await killedWhileFinalizing();
      const runs = new Runs();
      runs.answer = answer;
      const promote = setup({ command: "promote" }, { ...shared, runs }, "acme/shop run 2 attempt 1");
      await expect(promote.engine.run()).rejects.toThrow(/being rolled out by acme\/shop run 1 attempt 1/);
      expect(shared.traffic.state?.lease?.holder).toBe("acme/shop run 1 attempt 1");
    }
  });
});
