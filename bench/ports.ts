/**
 * The engine's ports over the simulated service: a VirtualService held in memory whose weight
 * drives the traffic model, and a metrics backend that answers from Prometheus' scrapes exactly
 * as the action reads them (raw counters at the last scrape, differenced from the mark).
 */
import type { Observation } from "../src/analysis/judge.ts";
import type { VersionCounts } from "../src/analysis/types.ts";
import type { Clock } from "../src/rollout/clock.ts";
import type { RolloutEvent } from "../src/rollout/events.ts";
import type { RolloutState } from "../src/rollout/model/state.ts";
import type {
  EventSink,
  MetricsMark,
  MetricsPort,
  NextState,
  TrafficPort,
  TrafficView,
} from "../src/rollout/ports.ts";
import type { Counts, ServiceWorld, Version } from "./world.ts";

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
      virtualService: {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "backend", namespace: "bench" },
        spec: {},
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

interface ScrapedMark extends MetricsMark {
  readonly counts: Record<Version, Counts | undefined>;
}

export class ScrapedMetrics implements MetricsPort {
  private readonly world: ServiceWorld;
  private readonly withLatency: boolean;

  constructor(world: ServiceWorld, withLatency: boolean) {
    this.world = world;
    this.withLatency = withLatency;
  }

  async start(at: Date): Promise<MetricsMark> {
    this.world.advanceTo(at.getTime());
    const mark: ScrapedMark = {
      at,
      counts: {
        canary: this.world.scrapedAt("canary", at.getTime()),
        stable: this.world.scrapedAt("stable", at.getTime()),
      },
    };
    return mark;
  }

  private since(version: Version, mark: ScrapedMark, now: number): VersionCounts | undefined {
    const current = this.world.scrapedAt(version, now);
    if (!current) return undefined;
    const from = mark.counts[version];
    return {
      requests: current.requests - (from?.requests ?? 0),
      errors: current.errors - (from?.errors ?? 0),
      ...(this.withLatency ? { slow: current.slow - (from?.slow ?? 0) } : {}),
    };
  }

  async observeSince(mark: MetricsMark, now: Date): Promise<Observation> {
    this.world.advanceTo(now.getTime());
    const scraped = mark as ScrapedMark;
    return {
      ok: true,
      canary: this.since("canary", scraped, now.getTime()),
      stable: this.since("stable", scraped, now.getTime()),
      partial: [],
    };
  }

  async checkReady(): Promise<void> {}

  queries() {
    return { canary: "simulated canary", stable: "simulated stable" };
  }
}

/** Keeps only what the bench needs from the engine's events: the decision of the last stage. */
export class LastDecision implements EventSink {
  decision?: string;
  emit(event: RolloutEvent): void {
    if (event.type === "stage-end") this.decision = event.decision;
  }
}
