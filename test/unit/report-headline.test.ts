/**
 * The line a person reads first (issue 25): each outcome's comment leads with the outcome, the
 * canary's and stable's counts and rates, and the limit, in plain words; the statistic behind the
 * decision (e-value, α, β) is left to "Why each stage was decided". The rollouts are the engine's
 * own, on simulated traffic in virtual time; the expected figures are summed from its events.
 */
import { describe, expect, it } from "vitest";
import { percent } from "../../src/report/headline.ts";
import { renderMarkdown } from "../../src/report/markdown.ts";
import { buildReport } from "../../src/report/model.ts";
import { type EngineSettings, RolloutEngine } from "../../src/rollout/engine.ts";
import type { RolloutEvent } from "../../src/rollout/events.ts";
import {
  defaultEngineSettings,
  EventLog,
  InMemoryTraffic,
  type ServiceBehaviour,
  SimulatedMetrics,
} from "../support/fake-ports.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

type StageEnd = Extract<RolloutEvent, { type: "stage-end" }>;

interface Run {
  events: RolloutEvent[];
  markdown: string;
  /** The comment's first line of prose: the one after its heading. */
  first: string;
}

async function rollout(
  behaviour: Omit<ServiceBehaviour, "requestsPerSecond"> & { requestsPerSecond?: number },
  extra: Partial<EngineSettings> = {},
  /** Called at every event, to change the world mid-rollout (Prometheus going away, a person's edit). */
  onEvent?: (e: RolloutEvent, world: { metrics: SimulatedMetrics; traffic: InMemoryTraffic }) => void,
): Promise<Run> {
  const settings = defaultEngineSettings(extra);
  const clock = new VirtualClock();
  const traffic = new InMemoryTraffic();
  const metrics = new SimulatedMetrics(clock, traffic, { requestsPerSecond: 200, seed: 11, ...behaviour });
  const log = new EventLog();
  const events = {
    emit(e: RolloutEvent) {
      log.emit(e);
      onEvent?.(e, { metrics, traffic });
    },
  };
  await new RolloutEngine(
    settings,
    { holder: "acme/shop run 7 attempt 1", commit: "abc1234def", newRolloutId: "abc1234-7" },
    { traffic, metrics, clock, events },
    "VirtualService shop/backend",
  ).run();
  const model = buildReport(log.events, {
    namespace: "shop",
    virtualService: "backend",
    maxErrorRate: settings.analysis.maxErrorRate,
    maxRatio: settings.analysis.maxRatioToStable,
  });
  const markdown = renderMarkdown(model);
  const lines = markdown.split("\n");
  const heading = lines.findIndex((l) => l.startsWith("### "));
  const first = lines.slice(heading + 1).find((l) => l.trim()) ?? "";
  if (process.env.SHOW_HEADLINES) console.log(first);
  return { events: log.events, markdown, first };
}

/** The errors and requests of each version, summed over the stages the engine analysed. */
function summed(events: readonly RolloutEvent[]) {
  const ends = events.filter((e): e is StageEnd => e.type === "stage-end" && e.verdict?.canary !== undefined);
  const add = (version: "canary" | "stable") =>
    ends.reduce(
      (t, e) => ({
        errors: t.errors + (e.verdict?.[version]?.errors ?? 0),
        requests: t.requests + (e.verdict?.[version]?.requests ?? 0),
      }),
      { errors: 0, requests: 0 },
    );
  return { stages: ends.length, canary: add("canary"), stable: add("stable") };
}

const n = (x: number) => x.toLocaleString("en-US");

/** The figures the first line must state, from the events (not from the report under test). */
function expectFigures(run: Run, outcome: RegExp): void {
  const { stages, canary, stable } = summed(run.events);
  expect(canary.requests).toBeGreaterThan(0);
  expect(run.first).toMatch(outcome);
  const over = stages > 1 ? ` over ${stages} stages` : "";
  expect(run.first).toContain(
    `${n(canary.errors)} of ${n(canary.requests)} canary requests failed (${percent(canary.errors / canary.requests)})${over}; ` +
      `stable ${n(stable.errors)} of ${n(stable.requests)} (${percent(stable.errors / stable.requests)}); limit 1 %.`,
  );
  // The statistic's internals are not what a person reads first.
  expect(run.first).not.toMatch(/α|β|e-value|evidence/);
}

describe("the first line of each outcome's comment", () => {
  it("promoted: the outcome, both versions' counts and rates over the stages, and the limit", async () => {
    const run = await rollout({ stableErrorRate: 0.001, canaryErrorRate: 0.001 });
    expect(run.markdown).toContain("### ✅ Promoted");
    expectFigures(run, /^Promoted: \d/);
    expect(run.first).toMatch(/All 4 stages passed/);
  });

  it("rolled back against stable: the figures, then the comparison in plain words; the evidence stays below", async () => {
    const run = await rollout({ stableErrorRate: 0.002, canaryErrorRate: 0.3 });
    const end = run.events.find((e): e is StageEnd => e.type === "stage-end" && e.decision === "fail");
    expect(end?.verdict?.rule).toBe("harm-stable");
    expectFigures(run, new RegExp(`^Rolled back at ${end?.weight} %: \\d`));
    expect(run.first).toMatch(/At the same moments the canary's error rate was more than 2× stable's \(/);
    // The judge's full reason, with its evidence and α, is in "Why each stage was decided".
    expect(run.markdown).toMatch(/<summary>Why each stage was decided<\/summary>[\s\S]*1\/α/);
  });

  it("rolled back by the limit: says the canary is above it", async () => {
    // Both versions fail often (within the 2× ratio), both above the 1 % limit.
    const run = await rollout({ stableErrorRate: 0.05, canaryErrorRate: 0.07 });
    const end = run.events.find((e): e is StageEnd => e.type === "stage-end" && e.decision === "fail");
    expect(end?.verdict?.rule).toBe("harm-limit");
    expectFigures(run, new RegExp(`^Rolled back at ${end?.weight} %: \\d`));
    expect(run.first).toMatch(/The canary's error rate is above the limit\.$/);
  });

  it("rolled back for a change in its latest windows: does not call the rollout's rate, within the limit, above it", async () => {
    // 1,000 req/s, healthy (0.5 %) until well into the 50 % stage, then 2 %: convicted while the
    // canary's rate over the stages is still about 1 %.
    let reads = 0;
    const run = await rollout(
      { stableErrorRate: 0.005, canaryErrorRate: 0.005, requestsPerSecond: 1_000 },
      {},
      (e, { metrics }) => {
        if (e.type === "analysis" && e.weight === 50 && ++reads === 4)
          metrics.behaviour.canaryErrorRate = 0.02;
      },
    );
    const end = run.events.find((e): e is StageEnd => e.type === "stage-end" && e.decision === "fail");
    expect(end?.weight).toBe(50);
    const signal = end?.verdict?.signals[0];
    expect(signal).toBeDefined();
    expect(end?.verdict?.late).toBe(true);
    if (end?.verdict?.rule === "harm-limit") {
      expect(signal?.canaryRate).toBeLessThanOrEqual(0.01);
      expect(run.first).toMatch(/The canary's error rate went above the limit in its latest windows\.$/);
    } else {
      expect(end?.verdict?.rule).toBe("harm-stable");
      expect(signal?.pairedCanaryRate).toBeLessThanOrEqual(2 * (signal?.stableRate ?? 0));
      expect(run.first).toMatch(/In its latest windows the canary's error rate became more than 2× stable's/);
    }
    expect(run.first).not.toMatch(/is above the limit|was more than/);
  });

  it("paused: where it waits, the figures so far, and how to go on", async () => {
    const run = await rollout({ stableErrorRate: 0.001, canaryErrorRate: 0.001 }, { pauseAfter: 10 });
    expect(run.markdown).toContain("### ⏸️ Paused");
    expectFigures(run, /^Paused at 10 %: \d/);
    expect(run.first).toMatch(/command: promote/);
  });

  it("inconclusive: the figures, then why no decision was reached", async () => {
    const run = await rollout(
      { requestsPerSecond: 3, stableErrorRate: 0.001, canaryErrorRate: 0.001 },
      {
        stages: [50, 100],
        onInconclusive: "rollback",
        analysis: { ...defaultEngineSettings().analysis, maxStageDurationMs: 60_000 },
      },
    );
    expect(run.events.some((e) => e.type === "stage-end" && e.decision === "inconclusive")).toBe(true);
    expectFigures(run, /^Rolled back at \d+ %: \d/);
    expect(run.first).toMatch(/Inconclusive at \d+ %/);
  });

  it("metrics unreachable: the figures seen before Prometheus went away, then what happened", async () => {
    const run = await rollout({ stableErrorRate: 0.001, canaryErrorRate: 0.001 }, {}, (e, { metrics }) => {
      if (e.type === "stage-end" && e.stage === 1) metrics.down = true;
    });
    expect(run.events.some((e) => e.type === "stage-end" && e.decision === "unreachable")).toBe(true);
    expectFigures(run, /^Rolled back at 50 %: \d/);
    expect(run.first).toMatch(/metrics could not be read/);
  });

  it("stopped by a person's edit: the figures so far, then who changed what", async () => {
    const run = await rollout({ stableErrorRate: 0.001, canaryErrorRate: 0.001 }, {}, (e, { traffic }) => {
      // Someone sets the canary to 30 % by hand during stage 3 (50 %).
      if (e.type === "weight" && e.stage === 2) traffic.weight = 30;
    });
    expect(run.events.some((e) => e.type === "stage-end" && e.decision === "halted")).toBe(true);
    expectFigures(run, /^Stopped: \d/);
    expect(run.first).toMatch(/\. Someone else changed the canary's weight from 50 % to 30 %/);
  });
});
