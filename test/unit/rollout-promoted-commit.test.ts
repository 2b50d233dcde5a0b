/**
 * The record carries the last promoted release's commit from rollout to rollout (a rollback keeps
 * it), and each rollout's `started` event names it: what the report compares this commit with.
 */
import { expect, it } from "vitest";
import { RolloutEngine } from "../../src/rollout/engine.ts";
import type { RolloutEvent } from "../../src/rollout/events.ts";
import { parseState } from "../../src/rollout/model/state.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const sha = (c: string) => c.repeat(40);

/** One release of `commit` on the shared VirtualService; what its `started` event said of the promoted commit. */
async function release(traffic: InMemoryTraffic, commit: string, canaryErrorRate: number) {
  const clock = new VirtualClock();
  const metrics = new SimulatedMetrics(clock, traffic, {
    requestsPerSecond: 100,
    stableErrorRate: 0.0005,
    canaryErrorRate,
    seed: 3,
  });
  const log = new EventLog();
  const engine = new RolloutEngine(
    defaultEngineSettings(),
    { holder: `run-${commit}`, commit: sha(commit), newRolloutId: `${commit}-1` },
    { traffic, metrics, clock, events: log },
    "VirtualService shop/backend",
  );
  const outcome = await engine.run();
  // As a finalization or a swap of the subsets leaves it: the promoted version is stable, at 100 %.
  traffic.weight = 0;
  const started = log.events.find((e) => e.type === "started") as Extract<RolloutEvent, { type: "started" }>;
  return { result: outcome.result, promotedCommit: started.promotedCommit };
}

it("names the last promoted commit in every later rollout, across a rollback, and none before the first promotion", async () => {
  const traffic = new InMemoryTraffic();
  expect(await release(traffic, "a", 0.0005)).toEqual({ result: "promoted", promotedCommit: undefined });
  expect(await release(traffic, "b", 0.2)).toEqual({ result: "rolled-back", promotedCommit: sha("a") });
  expect(traffic.state).toMatchObject({ status: "rolled-back", commit: sha("b"), promotedCommit: sha("a") });
  expect(await release(traffic, "c", 0.0005)).toEqual({ result: "promoted", promotedCommit: sha("a") });
  expect(await release(traffic, "d", 0.0005)).toEqual({ result: "promoted", promotedCommit: sha("c") });
});

it("a promoted commit that is not a string is dropped, not a reason to refuse the record", () => {
  const record = (promotedCommit: unknown) =>
    JSON.stringify({
      schemaVersion: 1,
      rolloutId: "a-1",
      commit: sha("a"),
      stages: [10, 100],
      stageIndex: 1,
      weight: 0,
      status: "rolled-back",
      startedAt: "2026-12-01T00:00:00Z",
      updatedAt: "2026-12-01T00:00:00Z",
      original: [],
      history: [],
      promotedCommit,
    });
  expect(parseState(record({ $ne: 1 }), "shop/backend")?.promotedCommit).toBeUndefined();
  expect(parseState(record(sha("b")), "shop/backend")?.promotedCommit).toBe(sha("b"));
  // A string is kept as it is: the reporter checks it is a 40-hex sha before using it.
  expect(parseState(record("main"), "shop/backend")?.promotedCommit).toBe("main");
});
