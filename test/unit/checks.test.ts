/**
 * Custom checks (issue 23), in process: the `checks` input's parsing and placeholders, the budget's
 * split, the counter and threshold judges, and the engine acting on a failing check in virtual time.
 */
import { readFileSync } from "node:fs";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
import { harmAlpha } from "../../src/analysis/judge.ts";
import { splitBudget } from "../../src/checks/budget.ts";
import {
  addCounterWindow,
  addThresholdRead,
  type CounterCheck,
  emptyCounterState,
  judgeCounter,
  judgeThreshold,
  type ThresholdCheck,
} from "../../src/checks/judge.ts";
import { counterSelector, fillPlaceholders, parseChecks } from "../../src/inputs/checks.ts";
import { InputError, parseConfig } from "../../src/inputs/config.ts";
import type {
  CustomCheckResult,
  CustomChecksPort,
  CustomChecksRead,
} from "../../src/rollout/custom-checks.ts";
import { RolloutEngine } from "../../src/rollout/engine.ts";
import { engineSettings } from "../../src/settings.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { seededRandom } from "../support/random.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

function parsed(text: string) {
  const problems: string[] = [];
  const checks = parseChecks(text, (message) => {
    problems.push(message);
    return undefined;
  });
  return { checks, problems };
}

describe("the checks input", () => {
  it("parses counter and threshold checks with their defaults", () => {
    const { checks, problems } = parsed(`
- name: orders
  bad: sum(business_orders_total{status="failed", version="{{ version }}"})
  total: business_orders_total{version="{{ version }}"}
  max-rate: 2%
  max-ratio-to-stable: 3
- name: saturation
  mode: report
  query: max(container_cpu_usage{version="{{ version }}"})
  below: 0.9
`);
    expect(problems).toEqual([]);
    expect(checks).toEqual([
      {
        name: "orders",
        kind: "counter",
        mode: "fail",
        bad: 'business_orders_total{status="failed", version="{{ version }}"}',
        total: 'business_orders_total{version="{{ version }}"}',
        maxRate: 0.02,
        maxRatioToStable: 3,
      },
      {
        name: "saturation",
        kind: "threshold",
        mode: "report",
        query: 'max(container_cpu_usage{version="{{ version }}"})',
        below: 0.9,
        breaches: 3,
      },
    ]);
  });

  it.each([
    ["checks: 1", /must be a YAML list/],
    ["- name: a\n  bad: x_total\n  total: y_total", /check "a": max-rate is missing/],
    [
      "- name: a\n  bad: rate(x_total[1m])\n  total: y_total\n  max-rate: 1%",
      /check "a": bad .* is not a counter's series selector/,
    ],
    ["- name: a\n  query: up\n  below: 1\n  above: 0", /check "a": give one of below .* or above/],
    ["- name: a\n  query: up\n  below: 1\n  mode: maybe", /check "a": mode must be fail or report/],
    ["- name: a\n  query: up\n  below: 1\n  colour: red", /check "a": .*only name, mode, query/],
    ["- name: a\n  query: up{v={{ version }}}\n  below: 1", /check "a": .*outside a quoted label value/],
    [
      '- name: a\n  query: up{v="{{ target }}"}\n  below: 1',
      /check "a": .*the placeholders are \{\{ version \}\} and \{\{ selector \}\}/,
    ],
    ["- name: a\n  query: up\n  below: 1\n- name: a\n  query: up\n  below: 2", /check "a" is named twice/],
    ["- query: up\n  below: 1", /check #1: name must be/],
  ])("refuses %j naming the check", (text, message) => {
    expect(parsed(text).problems.join("; ")).toMatch(message);
  });

  it("names the input in the action's error, with every other input", () => {
    const run = () =>
      parseConfig({
        "virtual-service": "backend",
        "stable-subset": "v1",
        "canary-subset": "v2",
        "prometheus-url": "http://prometheus:9090",
        checks: "- name: orders\n  bad: x_total\n  total: y_total\n  max-rate: 150%",
      });
    expect(run).toThrow(InputError);
    expect(run).toThrow(/Input 'checks': check "orders": max-rate must be a rate below 100%/);
  });
});

describe("the README's worked examples", () => {
  it("parse as the action parses the input, and fill in for a version", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Custom checks"));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    const steps = load(yaml) as Array<{ with: { checks: string } }>;
    const { checks, problems } = parsed(steps[0]?.with.checks ?? "");
    expect(problems).toEqual([]);
    expect(checks.map((c) => c.name)).toEqual([
      "grpc-server-errors",
      "client-errors",
      "payments-errors",
      "checkout",
      "queue-depth",
    ]);
    const version = { version: "v2", selector: 'reporter="destination",destination_version="v2"' };
    for (const check of checks)
      for (const query of check.kind === "counter" ? [check.bad, check.total] : [check.query])
        expect(fillPlaceholders(query, version)).not.toContain("{{");
  });
});

describe("placeholders", () => {
  it("escapes the version as a PromQL string, and as a regex after =~", () => {
    const version = { version: 'v2"} or vector(1) #\\', selector: 'reporter="destination"' };
    expect(fillPlaceholders('m{version="{{ version }}"}', version)).toBe(
      'm{version="v2\\"} or vector(1) #\\\\"}',
    );
    expect(fillPlaceholders('m{version=~"{{version}}"}', { version: "1.2+x", selector: "" })).toBe(
      'm{version=~"1\\\\.2\\\\+x"}',
    );
    expect(fillPlaceholders('m{ {{ selector }}, code="4" }', version)).toBe(
      'm{ reporter="destination", code="4" }',
    );
  });

  it("refuses {{ version }} where the version's value is unknown", () => {
    expect(() => fillPlaceholders('m{version="{{ version }}"}', { selector: 'a="b"' })).toThrow(
      /use \{\{ selector \}\}/,
    );
  });

  it("takes sum() off a counter selector and refuses functions", () => {
    expect(counterSelector(' sum( x_total{a="b"} ) ')).toBe('x_total{a="b"}');
    expect(counterSelector("increase(x_total[1m])")).toBeUndefined();
    expect(counterSelector("x_total / y_total")).toBeUndefined();
  });
});

describe("the shared false-rollback budget", () => {
  it("splits the budget evenly over every test that can roll back, the built-in ones included", () => {
    const { checks } = parsed(`
- name: a
  bad: a_total{s="bad"}
  total: a_total
  max-rate: 1%
  max-ratio-to-stable: 2
- name: b
  bad: b_total{s="bad"}
  total: b_total
  max-rate: 1%
- name: c
  mode: report
  bad: c_total{s="bad"}
  total: c_total
  max-rate: 1%
- name: d
  query: up
  below: 1
`);
    // 2 built-in (errors), 2 for a, 1 for b; c reports only and d carries no guarantee.
    expect(splitBudget(0.05, false, checks)).toEqual({ perTest: 0.01, builtIn: 0.02 });
    expect(splitBudget(0.05, true, [])).toEqual({ perTest: 0.0125, builtIn: 0.05 });
  });

  it("hands the built-in judge its share, so its harm tests reject at the shared per-test level", () => {
    const config = parseConfig({
      "virtual-service": "backend",
      "stable-subset": "v1",
      "canary-subset": "v2",
      "prometheus-url": "http://prometheus:9090",
      checks:
        '- name: orders\n  bad: o_total{s="failed"}\n  total: o_total\n  max-rate: 2%\n  max-ratio-to-stable: 2',
    });
    const analysis = engineSettings(config).analysis;
    // 5 % over 4 tests (the error rate's two, the check's two): 1.25 % each, 2.5 % for the built-in pair.
    expect(analysis.falseRollbackBudget).toBeCloseTo(0.025, 12);
    expect(harmAlpha({ ...analysis, maxSlowFraction: 0.01, beta: 0.05 })).toBeCloseTo(0.0125, 12);
  });
});

const orders: CounterCheck = {
  name: "orders",
  kind: "counter",
  mode: "fail",
  bad: "b",
  total: "t",
  maxRate: 0.02,
  maxRatioToStable: 2,
};

/** Windows of `n` events per version with Binomial bad counts, until the check fails or `windows` pass. */
function runCounter(canaryRate: number, stableRate: number, windows: number, seed: number, alpha = 0.0125) {
  const random = seededRandom(seed);
  const bad = (n: number, p: number) => Array.from({ length: n }, () => random()).filter((u) => u < p).length;
  let state = emptyCounterState();
  for (let i = 0; i < windows; i++) {
    state = addCounterWindow(
      orders,
      state,
      {
        canary: { bad: bad(20, canaryRate), total: 20 },
        stable: { bad: bad(180, stableRate), total: 180 },
        ms: 1000,
      },
      alpha,
    );
    const result = judgeCounter(orders, state, alpha);
    if (result.status === "failing") return { result, windows: i + 1 };
  }
  return { result: judgeCounter(orders, state, alpha), windows };
}

describe("counter checks are judged by the anytime-valid tests", () => {
  it("fails a canary at 10 % against a 2 % limit within a few hundred events", () => {
    const { result, windows } = runCounter(0.1, 0.005, 100, 7);
    expect(result.status).toBe("failing");
    expect(result.limitLogE).toBeGreaterThanOrEqual(Math.log(80));
    expect(windows * 20).toBeLessThan(500);
  });

  it("rarely fails a canary exactly at the limit and the ratio, however long it is read (under the per-test α)", () => {
    let failed = 0;
    const runs = 200;
    for (let seed = 1; seed <= runs; seed++)
      if (runCounter(0.02, 0.01, 200, seed).result.status === "failing") failed += 1;
    console.log(
      `counter check with the canary at its limit (2 %) and at twice stable (1 %), 4,000 canary events: ${failed} of ${runs} runs failed`,
    );
    // α per test 1.25 %, two tests: at most 2.5 % of runs in expectation; allow chance.
    expect(failed / runs).toBeLessThan(0.05);
  });

  it("says no-data before any canary event", () => {
    expect(judgeCounter(orders, emptyCounterState(), 0.01).status).toBe("no-data");
  });
});

describe("threshold checks fail after N consecutive reads in breach", () => {
  const latency: ThresholdCheck = {
    name: "p95",
    kind: "threshold",
    mode: "fail",
    query: "q",
    below: 0.3,
    breaches: 3,
  };

  it("a breach streak broken by a good read starts again; a read without a value keeps it", () => {
    let state = { breaches: 0 };
    const statuses: string[] = [];
    for (const value of [0.4, 0.5, 0.2, 0.4, undefined, 0.4, 0.4]) {
      state = addThresholdRead(latency, state, value === undefined ? {} : { value });
      statuses.push(judgeThreshold(latency, state).status);
    }
    expect(statuses).toEqual(["ok", "ok", "ok", "ok", "no-data", "ok", "failing"]);
  });
});

/** A port that fails its one check from the `failFrom`th read on. */
class ScriptedChecks implements CustomChecksPort {
  reads: CustomChecksRead[] = [];
  private readonly mode: "fail" | "report";
  private readonly failFrom: number;
  constructor(mode: "fail" | "report", failFrom: number) {
    this.mode = mode;
    this.failFrom = failFrom;
  }
  async judge(read: CustomChecksRead): Promise<CustomCheckResult[]> {
    this.reads.push(read);
    const failing = this.reads.length >= this.failFrom;
    return [
      {
        name: "orders",
        kind: "counter",
        mode: this.mode,
        status: failing ? "failing" : "ok",
        summary: failing ? "bad" : "fine",
      },
    ];
  }
}

function engineWith(checks: CustomChecksPort) {
  const clock = new VirtualClock();
  const traffic = new InMemoryTraffic();
  const metrics = new SimulatedMetrics(clock, traffic, {
    requestsPerSecond: 100,
    stableErrorRate: 0.0005,
    canaryErrorRate: 0.0005,
    seed: 3,
  });
  const log = new EventLog();
  const engine = new RolloutEngine(
    defaultEngineSettings(),
    { holder: "run-1", commit: "abc1234def", newRolloutId: "abc1234-1" },
    { traffic, metrics, checks, clock, events: log },
    "VirtualService shop/backend",
  );
  return { engine, traffic, log };
}

describe("the engine and the checks", () => {
  it("rolls back when a fail-mode check fails, at the read it fails", async () => {
    const checks = new ScriptedChecks("fail", 10);
    const { engine, traffic, log } = engineWith(checks);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "rolled-back", failed: true });
    expect(outcome.reason).toContain("Check orders: bad");
    expect(traffic.writes.at(-1)?.weight).toBe(0);
    expect(checks.reads).toHaveLength(10);
    expect(log.events.filter((e) => e.type === "checks")).toHaveLength(10);
  });

  it("never fails on a report-only check", async () => {
    const checks = new ScriptedChecks("report", 1);
    const { engine } = engineWith(checks);
    const outcome = await engine.run();
    expect(outcome).toMatchObject({ result: "promoted", failed: false });
    expect(checks.reads.length).toBeGreaterThan(10);
  });
});
