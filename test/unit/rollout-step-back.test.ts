/**
 * Telling a long incident from a canary gone bad at 100 % (issue 21): when the canary crosses the
 * limit with no stable traffic to compare, the rollout steps back to the stage before, so that
 * stable serves beside it, and goes back up when stable shows the failure was everyone's. The real
 * engine in virtual time on in-memory ports; the service's error rates change with time or weight.
 */
import { describe, expect, it } from "vitest";
import type { Observation } from "../../src/analysis/judge.ts";
import type { MetricsStart } from "../../src/metrics/istio-observer.ts";
import type {
  CustomCheckResult,
  CustomChecksPort,
  CustomChecksRead,
} from "../../src/rollout/custom-checks.ts";
import { RolloutEngine } from "../../src/rollout/engine.ts";
import type { RolloutEvent } from "../../src/rollout/events.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const START = Date.UTC(2026, 10, 26, 12, 0, 0);
const HEALTHY = 0.005;

/** Error rates set before each read, for the interval that read ends: a function of time and weight. */
type Rates = (minute: number, weight: number) => { stable: number; canary: number };

class ScriptedMetrics extends SimulatedMetrics {
  private readonly rates: Rates;
  private readonly weightOf: () => number;
  constructor(
    clock: VirtualClock,
    traffic: InMemoryTraffic,
    rates: Rates,
    seed: number,
    requestsPerSecond = 100,
  ) {
    super(clock, traffic, {
      requestsPerSecond,
      stableErrorRate: HEALTHY,
      canaryErrorRate: HEALTHY,
      seed,
    });
    this.rates = rates;
    this.weightOf = () => traffic.weight;
  }
  private apply(now: Date): void {
    const r = this.rates((now.getTime() - START) / 60_000, this.weightOf());
    this.behaviour.stableErrorRate = r.stable;
    this.behaviour.canaryErrorRate = r.canary;
  }
  override async start(at: Date): Promise<MetricsStart> {
    this.apply(at);
    return super.start(at);
  }
  override async observeSince(start: MetricsStart, now: Date): Promise<Observation> {
    this.apply(now);
    return super.observeSince(start, now);
  }
}

async function rollout(rates: Rates, seed = 7, requestsPerSecond = 100, checks?: CustomChecksPort) {
  const clock = new VirtualClock(START);
  const traffic = new InMemoryTraffic();
  const metrics = new ScriptedMetrics(clock, traffic, rates, seed, requestsPerSecond);
  const log = new EventLog();
  const engine = new RolloutEngine(
    defaultEngineSettings(),
    { holder: "run-1", commit: "abc1234def", newRolloutId: "abc1234-1" },
    { traffic, metrics, clock, events: log, ...(checks ? { checks } : {}) },
    "VirtualService shop/backend",
  );
  const outcome = await engine.run();
  const weights = traffic.writes.map((w) => w.weight);
  const warnings = log.events.flatMap((e: RolloutEvent) => (e.type === "warning" ? [e.message] : []));
  return { outcome, weights, warnings, traffic, metrics, clock, log };
}

/** A custom checks port that records each read it is asked to judge, and finds nothing wrong. */
class RecordingChecks implements CustomChecksPort {
  readonly reads: CustomChecksRead[] = [];
  async judge(read: CustomChecksRead): Promise<CustomCheckResult[]> {
    this.reads.push(read);
    return [{ name: "orders", kind: "counter", mode: "fail", status: "ok", summary: "fine" }];
  }
}

/** The stages are 1, 10, 50, 100: a minute each, the 50 % stage before 100 % a minute and a half (LAST_BESIDE_STABLE_HOLD): 100 % from minute 3.5. */
const AT_100 = 3.5;

describe("stepping back from 100 % (issue 21)", () => {
  it("a 90 s incident everything shares, at 100 %: steps back to 50 %, stable shows it, back up and promoted", async () => {
    const incident = (m: number) => m > AT_100 && m <= AT_100 + 1.5;
    const { outcome, weights, warnings, traffic } = await rollout((m) =>
      incident(m) ? { stable: 0.2, canary: 0.2 } : { stable: HEALTHY, canary: HEALTHY },
    );
    expect(outcome).toMatchObject({ result: "promoted", weight: 100, failed: false });
    // The stages, the step back to 50 and the step back up, then the promotion's record.
    expect(weights).toEqual([1, 10, 50, 100, 50, 100, 100]);
    expect(
      warnings.some((w) =>
        /^Stepped back from 100 % to 50 %: The canary's error rate is above the limit/.test(w),
      ),
    ).toBe(true);
    expect(traffic.state?.history.map((h) => h.event)).toContain("stepped-back");
    expect(traffic.state?.evidence?.errors.forgiven).toBe(1);
  });

  it("custom checks count from the step back's move and from the return up, as the built-in counts do", async () => {
    const incident = (m: number) => m > AT_100 && m <= AT_100 + 1.5;
    const checks = new RecordingChecks();
    const { outcome, weights, log } = await rollout(
      (m) => (incident(m) ? { stable: 0.2, canary: 0.2 } : { stable: HEALTHY, canary: HEALTHY }),
      7,
      100,
      checks,
    );
    expect(outcome).toMatchObject({ result: "promoted" });
    expect(weights).toEqual([1, 10, 50, 100, 50, 100, 100]);
    // Each read the checks judged (one "checks" event each) counts from the latest weight written
    // before it: the last stage's 100 %, then the step back's 50 %, then the return to 100 %.
    const expected: number[] = [];
    let writtenAt = Number.NaN;
    for (const e of log.events) {
      if (e.type === "weight") writtenAt = Date.parse(e.at);
      if (e.type === "checks") expected.push(writtenAt);
    }
    expect(checks.reads.map((r) => r.changedAt)).toEqual(expected);
    const last = checks.reads.filter((r) => r.stage === 3);
    const at = (weight: number) => [
      ...new Set(last.filter((r) => r.weight === weight).map((r) => r.changedAt)),
    ];
    const [stageStart, ...upAgain] = at(100);
    const [back] = at(50);
    expect(at(50)).toHaveLength(1);
    expect(upAgain).toHaveLength(1);
    // Not the stage's own change: the move down, and the move up after it.
    expect(back).toBeGreaterThan(stageStart ?? Number.POSITIVE_INFINITY);
    expect(upAgain[0]).toBeGreaterThan(back ?? Number.POSITIVE_INFINITY);
  });

  it("the same incident with persistence alone would have rolled back: it lasts longer than a minute", async () => {
    // With one stage there is no weight to step back to, and harm at 100 % must persist.
    const clock = new VirtualClock(START);
    const traffic = new InMemoryTraffic();
    const incident = (m: number) => m >= 1 && m < 2.5;
    const metrics = new ScriptedMetrics(
      clock,
      traffic,
      (m) => (incident(m) ? { stable: 0.2, canary: 0.2 } : { stable: HEALTHY, canary: HEALTHY }),
      7,
    );
    const engine = new RolloutEngine(
      defaultEngineSettings({ stages: [100] }),
      { holder: "run-1", commit: "abc1234def", newRolloutId: "abc1234-1" },
      { traffic, metrics, clock, events: new EventLog() },
      "VirtualService shop/backend",
    );
    expect(await engine.run()).toMatchObject({ result: "rolled-back" });
  });

  it("a canary gone bad at 100 %: steps back, stable within the limit beside it confirms, rolled back from 50 %", async () => {
    // Bad from its first read at 100 % on, at every weight after.
    let bad = false;
    const { outcome, weights, clock, traffic } = await rollout((_m, weight) => {
      bad ||= weight === 100;
      return { stable: HEALTHY, canary: bad ? 0.05 : HEALTHY };
    });
    expect(outcome).toMatchObject({ result: "rolled-back", weight: 0, failed: true });
    expect(weights).toEqual([1, 10, 50, 100, 50, 0]);
    expect(traffic.state?.reason).toMatch(/^Failed at 50 %: The canary's error rate is/);
    // Within a minute and a half of going bad (persistence alone takes a minute at 100 % after the
    // evidence; here most of the time is at 50 %).
    expect(clock.now().getTime() - START).toBeLessThanOrEqual((AT_100 + 1.5) * 60_000);
  });

  it("a canary that goes bad after minutes of health is convicted for its latest windows, and the reason says so", async () => {
    // 1,000 req/s; 0.5 % until minute 3 (mid 50 % stage), then 2 %: convicted while its rate over
    // the rollout is still near 0.5 %, which the reason must not call "above the limit".
    const { outcome, traffic } = await rollout(
      (minute) => ({ stable: HEALTHY, canary: minute < 3 ? HEALTHY : 0.02 }),
      7,
      1_000,
    );
    expect(outcome).toMatchObject({ result: "rolled-back", failed: true });
    const reason = traffic.state?.reason ?? "";
    expect(reason).toMatch(
      /^Failed at 50 %: The canary's error rate (went above the 1 % limit|became more than 2× stable's) in its latest windows: [\d.]+ % (against stable's [\d.]+ % )?in the latest window/,
    );
  });

  it("steps back at most twice; a canary that fails only at 100 % is then rolled back once it persists", async () => {
    const { outcome, weights, warnings } = await rollout((_m, weight) => ({
      stable: HEALTHY,
      canary: weight === 100 ? 0.05 : HEALTHY,
    }));
    expect(outcome).toMatchObject({ result: "rolled-back", failed: true });
    expect(weights).toEqual([1, 10, 50, 100, 50, 100, 50, 100, 0]);
    expect(warnings.filter((w) => w.startsWith("Stepped back"))).toHaveLength(2);
  });

  it("a stage below the last does not move on while stable itself is above the limit", async () => {
    // An incident on both versions from minute 0.5 to 2.5: the 1 % stage holds, then moves on.
    const incident = (m: number) => m >= 0.5 && m < 2.5;
    const { outcome, log } = await rollout((m) =>
      incident(m) ? { stable: 0.2, canary: 0.2 } : { stable: HEALTHY, canary: HEALTHY },
    );
    expect(outcome).toMatchObject({ result: "promoted" });
    const held = log.events.filter((e) => e.type === "analysis" && e.verdict.rule === "stable-above-limit");
    expect(held.length).toBeGreaterThan(0);
    const firstRaise = log.events.find((e) => e.type === "weight" && e.weight === 10);
    expect(Date.parse(firstRaise?.at ?? "") - START).toBeGreaterThanOrEqual(2.5 * 60_000);
  });
});
