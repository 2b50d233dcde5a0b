/**
 * `ours`: the real rollout engine and judge (src/rollout/), on the scenario's inputs parsed as the
 * action parses them, in virtual time over the simulated service.
 */

import { parseConfig } from "../../src/inputs/config.ts";
import type { RawInputs } from "../../src/inputs/types.ts";
import { RolloutEngine } from "../../src/rollout/engine.ts";
import { engineSettings } from "../../src/settings.ts";
import { VirtualClock } from "../../test/support/virtual-clock.ts";
import { badServed, firstMinutesErrors, ROLLOUT_START, type RunOutcome } from "../outcome.ts";
import { benchChecks, benchMetrics, InMemoryTraffic, LastDecision } from "../ports.ts";
import type { Scenario } from "../scenario.ts";
import { ServiceWorld } from "../world.ts";

/** The inputs every workflow must give; the scenario's inputs come on top. */
const REQUIRED: RawInputs = {
  "virtual-service": "backend",
  namespace: "bench",
  "stable-subset": "v1",
  "canary-subset": "v2",
  "prometheus-url": "http://prometheus:9090",
};

export async function runOurs(scenario: Scenario, seed: number): Promise<RunOutcome> {
  const clock = new VirtualClock(ROLLOUT_START);
  const world = new ServiceWorld(scenario, seed, ROLLOUT_START);
  const traffic = new InMemoryTraffic(world, clock);
  const config = parseConfig({ ...REQUIRED, ...scenario.inputs });
  // One reader for the whole rollout, as one run of the action has (a promote run gets its own).
  const reader = () =>
    benchMetrics(world, {
      intervalMs: config.intervalMs,
      latencyThresholdMs: config.latencyThresholdMs,
      align: process.env.BENCH_ALIGN !== "0",
    });
  const events = new LastDecision();
  const engineFor = (inputs: RawInputs, run: number) =>
    new RolloutEngine(
      engineSettings(parseConfig({ ...REQUIRED, ...inputs })),
      { holder: `bench run ${run}`, commit: "0123456789abcdef", newRolloutId: "0123456-1" },
      { traffic, metrics: reader(), checks: benchChecks(world, config), clock, events },
      "VirtualService bench/backend",
    );

  let outcome = await engineFor(scenario.inputs, 1).run();
  if (outcome.result === "paused" && scenario.promoteAfterMinutes !== undefined) {
    await clock.sleep(scenario.promoteAfterMinutes * 60_000);
    outcome = await engineFor({ ...scenario.inputs, command: "promote" }, 2).run();
  }
  world.advanceTo(clock.now().getTime());
  const first = traffic.writes[0]?.at ?? ROLLOUT_START;
  const last = traffic.writes.at(-1)?.at ?? ROLLOUT_START;
  const result = outcome.result === "unchanged" ? "unfinished" : outcome.result;
  return {
    result,
    ...(result === "rolled-back"
      ? {
          cause:
            events.decision === "fail"
              ? "fail"
              : events.decision === "inconclusive"
                ? "inconclusive"
                : "other",
        }
      : {}),
    minutes: (last - first) / 60_000,
    canaryRequests: world.served.canary.requests,
    canaryErrors: badServed(world),
    newVersionErrorsFirst30Minutes: firstMinutesErrors(world),
  };
}
