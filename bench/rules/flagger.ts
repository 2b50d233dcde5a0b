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
import { canaryP99WithinThreshold, successRatio } from "./istio-queries.ts";

export const FLAGGER = {
  stepWeights: [1, 10, 50, 100],
  intervalMs: 60_000,
  /** The metrics' window: `interval: 1m` on request-success-rate and request-duration. */
  metricWindowMs: 60_000,
  threshold: 5,
  minSuccessRatePercent: 99,
} as const;

/**
 * Flagger's tutorial (docs/gitbook/tutorials/istio-progressive-delivery.md): `stepWeight: 10`,
 * `maxWeight: 50` (promotion after a passing check at 50 %), and the flagger-loadtester webhook
 * running `hey -z 1m -q 10 -c 2` against the canary's own service: 20 req/s to the canary's pods
 * during the analysis, whatever the weight.
 */
export const FLAGGER_TUTORIAL = { stepWeights: [10, 20, 30, 40, 50], loadTesterRps: 20 } as const;

export function runFlagger(scenario: Scenario, seed: number, tutorial = false): RunOutcome {
  const world = new ServiceWorld(scenario, seed, ROLLOUT_START);
  const withLatency = (scenario.inputs["latency-threshold"] ?? "").trim() !== "";
  const finish = ending(world);
  const stepWeights: readonly number[] = tutorial ? FLAGGER_TUTORIAL.stepWeights : FLAGGER.stepWeights;
  if (tutorial) world.loadTesterRps = FLAGGER_TUTORIAL.loadTesterRps;
  const end = (...args: Parameters<typeof finish>) => {
    // The load tester runs during the analysis only.
    world.advanceTo(args[1]);
    world.loadTesterRps = 0;
    return finish(...args);
  };

  let step = 0;
  let failedChecks = 0;
  world.advanceTo(ROLLOUT_START);
  world.setWeight(stepWeights[0] as number);
  for (
    let at = ROLLOUT_START + FLAGGER.intervalMs;
    at - ROLLOUT_START <= GIVE_UP_MS;
    at += FLAGGER.intervalMs
  ) {
    world.advanceTo(at);
    if (failedChecks >= FLAGGER.threshold) return end("rolled-back", at, "fail");
    const ratio = successRatio(world, at, "rate", FLAGGER.metricWindowMs);
    // An empty result, and NaN (0/0: no request in the window), are "no values" to Flagger's
    // Prometheus provider (ErrNoValuesFound, since 2022): advancement halts and the check counts
    // as failed.
    let passed = ratio !== undefined && !Number.isNaN(ratio) && ratio * 100 >= FLAGGER.minSuccessRatePercent;
    if (passed && withLatency)
      passed = canaryP99WithinThreshold(world, at, "rate", FLAGGER.metricWindowMs) === true;
    if (!passed) {
      failedChecks += 1;
      continue;
    }
    if (step === stepWeights.length - 1) return end("promoted", at);
    step += 1;
    world.setWeight(stepWeights[step] as number);
  }
  return end("unfinished", ROLLOUT_START + GIVE_UP_MS);
}
