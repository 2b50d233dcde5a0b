/**
 * `flagger`: Flagger's documented canary analysis on Istio, as its scheduler runs it
 * (pkg/controller/scheduler.go, scheduler_metrics.go; docs/gitbook/usage/metrics.md):
 * stepWeights 1/10/50/100, one tick every `interval` (1m). At each tick: when the failed checks
 * have reached `threshold` (5), roll back; else run the checks (request-success-rate over the last
 * 1m >= 99 %, and request-duration p99 <= latency-threshold when the scenario sets one); a failed
 * check, or one with no values, adds a failed check (cumulative) and halts advancement; a passing
 * tick moves to the next step weight, and at the last weight promotes.
 */
import { ending, GIVE_UP_MS, ROLLOUT_START, type RunOutcome } from "../outcome.ts";
import type { Scenario } from "../scenario.ts";
import { ServiceWorld } from "../world.ts";
import { canaryP99WithinThreshold, canarySuccessRatio } from "./istio-queries.ts";

export const FLAGGER = {
  stepWeights: [1, 10, 50, 100],
  intervalMs: 60_000,
  /** The metrics' window: `interval: 1m` on request-success-rate and request-duration. */
  metricWindowMs: 60_000,
  threshold: 5,
  minSuccessRatePercent: 99,
} as const;

export function runFlagger(scenario: Scenario, seed: number): RunOutcome {
  const world = new ServiceWorld(scenario, seed, ROLLOUT_START);
  const withLatency = (scenario.inputs["latency-threshold"] ?? "").trim() !== "";
  const end = ending(world);

  let step = 0;
  let failedChecks = 0;
  world.advanceTo(ROLLOUT_START);
  world.setWeight(FLAGGER.stepWeights[0]);
  for (
    let at = ROLLOUT_START + FLAGGER.intervalMs;
    at - ROLLOUT_START <= GIVE_UP_MS;
    at += FLAGGER.intervalMs
  ) {
    world.advanceTo(at);
    if (failedChecks >= FLAGGER.threshold) return end("rolled-back", at, "fail");
    const successRatio = canarySuccessRatio(world, at, "rate", FLAGGER.metricWindowMs);
    // No values (an empty result) or NaN halts advancement and counts as a failed check.
    let passed =
      successRatio !== undefined &&
      !Number.isNaN(successRatio) &&
      successRatio * 100 >= FLAGGER.minSuccessRatePercent;
    if (passed && withLatency)
      passed = canaryP99WithinThreshold(world, at, "rate", FLAGGER.metricWindowMs) === true;
    if (!passed) {
      failedChecks += 1;
      continue;
    }
    if (step === FLAGGER.stepWeights.length - 1) return end("promoted", at);
    step += 1;
    world.setWeight(FLAGGER.stepWeights[step] as number);
  }
  return end("unfinished", ROLLOUT_START + GIVE_UP_MS);
}
