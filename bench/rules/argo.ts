/**
 * `argo`: Argo Rollouts' documented canary analysis on Istio (docs/features/analysis.md;
 * pkg/apis/rollouts/v1alpha1/analysis_types.go): steps setWeight 1/10/50/100, each followed by an
 * inline analysis of `count: 5` measurements `interval: 1m` apart, the first when the step starts,
 * with the documented Istio query (`sum(irate(...non-5xx[5m])) / sum(irate(...[5m]))`) and
 * `successCondition: result >= 0.99`. A measurement with an empty result is an Error, which does
 * not count towards `count`; NaN (0/0: no request in the window) fails `result >= 0.99`, so it is
 * Failed, as any value that misses the condition; the run fails as soon as failed measurements exceed
 * `failureLimit` (3), and errors when consecutive errors exceed `consecutiveErrorLimit` (4); a
 * failed or errored run aborts the rollout (all traffic back to stable). The step completes when
 * `count` measurements are in with failures within the limit; after the last step the rollout is
 * promoted. With a latency threshold, a second metric checks the p99 the same way.
 */
import { ending, GIVE_UP_MS, ROLLOUT_START, type RunOutcome } from "../outcome.ts";
import type { Scenario } from "../scenario.ts";
import { ServiceWorld } from "../world.ts";
import { canaryP99WithinThreshold, successRatio } from "./istio-queries.ts";

export const ARGO = {
  setWeights: [1, 10, 50, 100],
  count: 5,
  intervalMs: 60_000,
  queryRangeMs: 5 * 60_000,
  minSuccessRatio: 0.99,
  failureLimit: 3,
  consecutiveErrorLimit: 4,
} as const;

type Measurement = "successful" | "failed" | "error";

/** One metric's measurements within one analysis run. */
class MetricResult {
  count = 0;
  failed = 0;
  consecutiveErrors = 0;
  record(m: Measurement): void {
    // A metric that has completed takes no more measurements.
    if (this.phase !== "running") return;
    if (m === "error") {
      this.consecutiveErrors += 1;
      return;
    }
    this.consecutiveErrors = 0;
    this.count += 1;
    if (m === "failed") this.failed += 1;
  }
  get phase(): "running" | "successful" | "failed" | "error" {
    if (this.failed > ARGO.failureLimit) return "failed";
    if (this.consecutiveErrors > ARGO.consecutiveErrorLimit) return "error";
    return this.count >= ARGO.count ? "successful" : "running";
  }
}

/**
 * `serviceWide`: the query as Argo Rollouts documents it for Istio, which selects the whole
 * service (`destination_service=~"{{args.service-name}}"`: both versions) rather than the canary.
 */
export function runArgo(scenario: Scenario, seed: number, serviceWide = false): RunOutcome {
  const world = new ServiceWorld(scenario, seed, ROLLOUT_START);
  // With `customCounter` the second metric is the orders' success ratio, `sum(irate(orders{ok}[5m]))
  // / sum(irate(orders[5m])) >= 0.99`: the same arithmetic as the p99's share within the bucket.
  const withLatency = (scenario.inputs["latency-threshold"] ?? "").trim() !== "" || scenario.customCounter;
  const end = ending(world);

  let at = ROLLOUT_START;
  for (const weight of ARGO.setWeights) {
    world.advanceTo(at);
    world.setWeight(weight);
    const metrics = withLatency ? [new MetricResult(), new MetricResult()] : [new MetricResult()];
    for (;;) {
      world.advanceTo(at);
      const ratio = successRatio(
        world,
        at,
        "irate",
        ARGO.queryRangeMs,
        serviceWide ? ["canary", "stable"] : ["canary"],
      );
      metrics[0]?.record(
        ratio === undefined ? "error" : ratio >= ARGO.minSuccessRatio ? "successful" : "failed",
      );
      if (withLatency) {
        const within = canaryP99WithinThreshold(world, at, "irate", ARGO.queryRangeMs);
        metrics[1]?.record(within === undefined ? "error" : within ? "successful" : "failed");
      }
      const phases = metrics.map((m) => m.phase);
      if (phases.includes("failed")) return end("rolled-back", at, "fail");
      if (phases.includes("error")) return end("rolled-back", at, "other");
      if (phases.every((p) => p === "successful")) break;
      at += ARGO.intervalMs;
      if (at - ROLLOUT_START > GIVE_UP_MS) return end("unfinished", at);
    }
  }
  return end("promoted", at);
}
