/**
 * The engine's ports over the simulated service: a VirtualService held in memory whose weight
 * drives the traffic model, and the action's own metrics reader (src/metrics/: its PromQL, its
 * client, its counting, alignment and freshness rules) answered by an in-process Prometheus API
 * over the simulated pods' scrapes (bench/promql.ts).
 */
import { splitBudget } from "../src/checks/budget.ts";
import { PrometheusChecks } from "../src/checks/prometheus-checks.ts";
import type { Config } from "../src/inputs/types.ts";
import { IstioPrometheusObserver } from "../src/metrics/istio-observer.ts";
import { matcher, serviceMatchers } from "../src/metrics/istio-queries.ts";
import { PrometheusClient } from "../src/metrics/prometheus-client.ts";
import type { Clock } from "../src/rollout/clock.ts";
import type { RolloutEvent } from "../src/rollout/events.ts";
import type { RolloutState } from "../src/rollout/model/state.ts";
import type { EventSink, NextState, TrafficPort, TrafficView } from "../src/rollout/ports.ts";
import { benchFetch, type SeriesIdentity } from "./promql.ts";
import type { ServiceWorld } from "./world.ts";

export class InMemoryTraffic implements TrafficPort {
  private readonly world: ServiceWorld;
  private readonly clock: Clock;
  state?: RolloutState;
  readonly writes: Array<{ at: number; weight: number; status: string }> = [];

  constructor(world: ServiceWorld, clock: Clock) {
    this.world = world;
    this.clock = clock;
  }

  private view(): TrafficView {
    const weight = this.world.canaryWeight;
    return {
      weight,
      weights: [weight],
      state: this.state,
      original: [{ index: 0, name: "primary", canaryAdded: true, stableWeight: 100 }],
      unmanaged: [],
      object: {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "backend", namespace: "bench" },
      },
    };
  }

  async read(): Promise<TrafficView> {
    this.world.advanceTo(this.clock.now().getTime());
    return this.view();
  }

  async write(weight: number, next: NextState): Promise<RolloutState> {
    const now = this.clock.now().getTime();
    this.world.advanceTo(now);
    // As the real router does: the state is computed from the state found, then saved with the weight.
    const state = next(this.state, this.view());
    this.state = structuredClone(state);
    this.world.setWeight(weight);
    this.writes.push({ at: now, weight, status: state.status });
    return state;
  }

  async record(next: NextState): Promise<RolloutState> {
    const now = this.clock.now().getTime();
    this.world.advanceTo(now);
    const state = next(this.state, this.view());
    this.state = structuredClone(state);
    this.writes.push({ at: now, weight: this.world.canaryWeight, status: state.status });
    return state;
  }

  async plan(): Promise<never[]> {
    return [];
  }
}

/** The service and version labels the simulated pods carry (the runbook's subsets v1 and v2). */
export const BENCH_SERVICE = { reporter: "destination", service: "backend", namespace: "bench" } as const;

/**
 * The action's metrics reader as src/action.ts builds it for subsets labelled `version: v1/v2`,
 * with its client's HTTP answered from the world.
 */
export function benchMetrics(
  world: ServiceWorld,
  settings: { intervalMs: number; latencyThresholdMs?: number; align?: boolean },
): IstioPrometheusObserver {
  const id: SeriesIdentity = {
    ...BENCH_SERVICE,
    versionLabel: { canary: "v2", stable: "v1" },
    ...(settings.latencyThresholdMs !== undefined ? { latencyBucketMs: settings.latencyThresholdMs } : {}),
  };
  const service = serviceMatchers(BENCH_SERVICE.reporter, BENCH_SERVICE.service, BENCH_SERVICE.namespace);
  const client = new PrometheusClient({
    url: "http://prometheus.bench:9090",
    intervalMs: settings.intervalMs,
    fetch: benchFetch(world, id),
  });
  return new IstioPrometheusObserver(
    client,
    {
      canary: `${service},${matcher("destination_version", "v2")}`,
      stable: `${service},${matcher("destination_version", "v1")}`,
    },
    settings.latencyThresholdMs,
    { align: settings.align ?? true },
  );
}

/**
 * The custom checks port (issue 23) as src/action-ports.ts builds it for `version: v1/v2` subsets,
 * over the same in-process Prometheus; undefined without checks.
 */
export function benchChecks(world: ServiceWorld, config: Config): PrometheusChecks | undefined {
  if (config.checks.length === 0) return undefined;
  const id: SeriesIdentity = { ...BENCH_SERVICE, versionLabel: { canary: "v2", stable: "v1" } };
  const client = new PrometheusClient({
    url: "http://prometheus.bench:9090",
    intervalMs: config.intervalMs,
    fetch: benchFetch(world, id),
  });
  const service = serviceMatchers(BENCH_SERVICE.reporter, BENCH_SERVICE.service, BENCH_SERVICE.namespace);
  const version = (v: string) => ({
    version: v,
    selector: `${service},${matcher("destination_version", v)}`,
  });
  const { perTest } = splitBudget(
    config.falseRollbackBudget,
    config.latencyThresholdMs !== undefined,
    config.checks,
  );
  return new PrometheusChecks(
    client,
    config.checks,
    { canary: version("v2"), stable: version("v1") },
    perTest,
  );
}

/** Keeps only what the bench needs from the engine's events: the decision of the last stage. */
export class LastDecision implements EventSink {
  decision?: string;
  emit(event: RolloutEvent): void {
    if (event.type === "stage-end") this.decision = event.decision;
  }
}
