/**
 * In-memory ports for running the real rollout engine in virtual time: a VirtualService that holds
 * a weight and the state annotation, and a service whose versions answer at a request rate with
 * their own error rates, counted as Prometheus would count them.
 */

import type { Observation } from "../../src/analysis/judge.ts";
import type { VersionCounts } from "../../src/analysis/types.ts";
import { parseConfig } from "../../src/inputs/config.ts";
import type { MetricsStart } from "../../src/metrics/istio-observer.ts";
import type { Clock } from "../../src/rollout/clock.ts";
import type { EngineSettings } from "../../src/rollout/engine.ts";
import type { RolloutEvent } from "../../src/rollout/events.ts";
import type { RolloutState } from "../../src/rollout/model/state.ts";
import type { MetricsPort, TrafficPort, TrafficView, UnmanagedRoute } from "../../src/rollout/ports.ts";
import { engineSettings } from "../../src/settings.ts";
import { binomial, seededRandom } from "./random.ts";

export class InMemoryTraffic implements TrafficPort {
  weight = 0;
  /** Routes the action does not manage, as the view reports them. */
  unmanaged: UnmanagedRoute[] = [];
  state?: RolloutState;
  writes: Array<{ weight: number; status: string }> = [];
  /** Fail the next N writes with this error. */
  failNext: { count: number; error: Error } | undefined;
  /** The managed object's kind as the view reports it. */
  objectKind: "VirtualService" | "HTTPRoute" = "VirtualService";

  private view(): TrafficView {
    return {
      weight: this.weight,
      weights: [this.weight],
      state: this.state,
      original: [{ index: 0, name: "primary", canaryAdded: true, stableWeight: 100 }],
      unmanaged: this.unmanaged,
      object: {
        apiVersion:
          this.objectKind === "HTTPRoute" ? "gateway.networking.k8s.io/v1" : "networking.istio.io/v1",
        kind: this.objectKind,
        metadata: { name: "backend", namespace: "shop" },
      },
    };
  }
  async read(): Promise<TrafficView> {
    return this.view();
  }
  async write(
    weight: number,
    next: (previous: RolloutState | undefined, view: TrafficView) => RolloutState,
  ): Promise<RolloutState> {
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count -= 1;
      throw this.failNext.error;
    }
    const state = next(this.state, this.view());
    this.weight = weight;
    this.state = structuredClone(state);
    this.writes.push({ weight, status: state.status });
    return state;
  }
  async record(
    next: (previous: RolloutState | undefined, view: TrafficView) => RolloutState,
  ): Promise<RolloutState> {
    const state = next(this.state, this.view());
    this.state = structuredClone(state);
    this.writes.push({ weight: this.weight, status: state.status });
    return state;
  }
  async plan(): Promise<never[]> {
    return [];
  }
}

export interface ServiceBehaviour {
  requestsPerSecond: number;
  stableErrorRate: number;
  canaryErrorRate: number;
  seed?: number;
  /** Share of all requests on a route the action does not manage, which always goes to stable. */
  unmanagedToStable?: number;
  /**
   * How old, at least, the counters `start` reads are (Prometheus' last scrape before the mark;
   * this fake has totals only at the times it was read, so the sample may be older still).
   */
  scrapeLagMs?: number;
}

/** Counters that grow with the virtual clock, split by the traffic port's current weight. */
export class SimulatedMetrics implements MetricsPort {
  private readonly random: () => number;
  private last: number;
  readonly totals = { canary: { requests: 0, errors: 0 }, stable: { requests: 0, errors: 0 } };
  down = false;
  private readonly traffic: InMemoryTraffic;
  readonly behaviour: ServiceBehaviour;
  constructor(clock: Clock, traffic: InMemoryTraffic, behaviour: ServiceBehaviour) {
    this.traffic = traffic;
    this.behaviour = behaviour;
    this.random = seededRandom(behaviour.seed ?? 1);
    this.last = clock.now().getTime();
  }
  /** The totals after each advance, for a mark that reads an older scrape. */
  private readonly history: Array<{ at: number; totals: SimulatedMetrics["totals"] }> = [];
  private advance(to: number): void {
    const seconds = (to - this.last) / 1000;
    if (seconds <= 0) return;
    this.last = to;
    const total = binomial(this.random, Math.round(this.behaviour.requestsPerSecond * seconds * 4), 0.25);
    const managedShare = 1 - (this.behaviour.unmanagedToStable ?? 0);
    const canary = binomial(this.random, total, (managedShare * this.traffic.weight) / 100);
    this.totals.canary.requests += canary;
    this.totals.canary.errors += binomial(this.random, canary, this.behaviour.canaryErrorRate);
    this.totals.stable.requests += total - canary;
    this.totals.stable.errors += binomial(this.random, total - canary, this.behaviour.stableErrorRate);
    this.history.push({ at: to, totals: structuredClone(this.totals) });
  }
  private snapshot(c: VersionCounts) {
    return {
      requests: new Map([["s", c.requests]]),
      errors: new Map([["s", c.errors]]),
      problems: [],
      latencyProblems: [],
    };
  }
  async start(at: Date): Promise<MetricsStart> {
    if (this.down) throw Object.assign(new Error("connect ECONNREFUSED"), { problem: "unreachable" });
    // The sample the mark reads was scraped `scrapeLagMs` ago: what was served since then, at the
    // weight before the change, is counted in the stage.
    this.advance(at.getTime());
    const scrapedAt = at.getTime() - (this.behaviour.scrapeLagMs ?? 0);
    const scraped = this.history.findLast((h) => h.at <= scrapedAt)?.totals ?? this.totals;
    return { at, canary: this.snapshot(scraped.canary), stable: this.snapshot(scraped.stable) };
  }
  async observeSince(start: MetricsStart, now: Date): Promise<Observation> {
    if (this.down)
      return { ok: false, problem: "unreachable", message: "connect ECONNREFUSED 127.0.0.1:9090" };
    this.advance(now.getTime());
    const since = (total: VersionCounts, from: MetricsStart["canary"]) => ({
      requests: total.requests - (from.requests.get("s") ?? 0),
      errors: total.errors - (from.errors.get("s") ?? 0),
    });
    return {
      ok: true,
      canary: since(this.totals.canary, start.canary),
      stable: since(this.totals.stable, start.stable),
      partial: [],
    };
  }
  async checkReady(): Promise<void> {}
  queries() {
    return { canary: "canary", stable: "stable" };
  }
}

export class EventLog {
  readonly events: RolloutEvent[] = [];
  emit(e: RolloutEvent): void {
    this.events.push(e);
  }
}

/** The engine's settings from the contract's defaults, exactly as the action parses them. */
export function defaultEngineSettings(overrides: Partial<EngineSettings> = {}): EngineSettings {
  const config = parseConfig({
    "virtual-service": "backend",
    "stable-subset": "v1",
    "canary-subset": "v2",
    "prometheus-url": "http://prometheus:9090",
  });
  return { ...engineSettings(config), ...overrides };
}
