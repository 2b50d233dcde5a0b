import { describe, expect, it } from "vitest";
import { type Config, InputError, parseConfig, parseDuration, parseFraction } from "../src/inputs.ts";
import { kubeconfigYaml } from "./support/kubeconfig.ts";

const base = {
  "virtual-service": "backend",
  "stable-subset": "v1",
  "canary-subset": "v2",
  "prometheus-url": "http://prometheus.istio-system:9090/",
};

function problemsOf(raw: Record<string, string>): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    if (e instanceof InputError) return e.problems.map((p) => p.input);
    throw e;
  }
  return [];
}

describe("parseConfig", () => {
  it("applies the contract's defaults", () => {
    const c: Config = parseConfig(base);
    expect(c.command).toBe("rollout");
    expect(c.namespace).toBe("default");
    expect(c.stages).toEqual([1, 10, 50, 100]);
    expect(c.maxErrorRate).toBeCloseTo(0.01);
    expect(c.minStageDurationMs).toBe(60_000);
    expect(c.maxStageDurationMs).toBe(600_000);
    expect(c.intervalMs).toBe(15_000);
    expect(c.split).toEqual({ mode: "subset", stableSubset: "v1", canarySubset: "v2" });
    expect(c.prometheus?.url).toBe("http://prometheus.istio-system:9090");
    expect(c.pauseAfter).toBeUndefined();
    expect(c.reporter).toBe("destination");
    expect(c.onInconclusive).toBe("promote");
    expect(c.maxRatioToStable).toBe(2);
  });

  it("returns a deeply frozen Config", () => {
    const c = parseConfig({ ...base, "prometheus-headers": "X-Scope-OrgID: team-a" });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.stages)).toBe(true);
    expect(Object.isFrozen(c.prometheus?.headers)).toBe(true);
    expect(c.prometheus?.headers).toEqual({ "X-Scope-OrgID": "team-a" });
  });

  it("reads host splitting, durations, rates and pause-after", () => {
    const c = parseConfig({
      "virtual-service": "reviews",
      "stable-host": "reviews-v1.prod.svc.cluster.local",
      "canary-host": "reviews-v2",
      stages: "5, 25,100",
      "pause-after": "25",
      "max-error-rate": "0.02",
      "min-stage-duration": "1h30m",
      "max-stage-duration": "2h",
      interval: "90s",
      "skip-analysis": "true",
      "latency-threshold": "0.5s",
    });
    expect(c.split).toEqual({
      mode: "host",
      stableHost: "reviews-v1.prod.svc.cluster.local",
      canaryHost: "reviews-v2",
    });
    expect(c.stages).toEqual([5, 25, 100]);
    expect(c.pauseAfter).toBe(25);
    expect(c.maxErrorRate).toBe(0.02);
    expect(c.minStageDurationMs).toBe(90 * 60_000);
    expect(c.intervalMs).toBe(90_000);
    expect(c.prometheus).toBeUndefined();
    expect(c.latencyThresholdMs).toBe(500);
  });

  it("accepts a kubeconfig with the named context", () => {
    const kubeconfig = kubeconfigYaml({
      server: "https://127.0.0.1:6443",
      token: "t",
      context: "prod",
      currentContext: null,
    });
    expect(parseConfig({ ...base, kubeconfig, context: "prod" }).context).toBe("prod");
    expect(problemsOf({ ...base, kubeconfig })).toEqual(["kubeconfig"]);
  });

  it("reports every bad input at once", () => {
    expect(problemsOf({ ...base, stages: "10,1", interval: "soon", namespace: "Prod" })).toEqual([
      "namespace",
      "stages",
      "interval",
    ]);
  });

  it("never puts a secret in its message", () => {
    try {
      parseConfig({
        ...base,
        kubeconfig: "token: s3cr3t-value: [",
        "prometheus-headers": "Bearer s3cr3t-header",
      });
      expect.unreachable();
    } catch (e) {
      expect(String(e)).not.toContain("s3cr3t");
      expect(String(e)).toContain("Input 'kubeconfig'");
      expect(String(e)).toContain("Input 'prometheus-headers'");
    }
  });
});

describe("parsers", () => {
  it.each([
    ["90s", 90_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1h", 3_600_000],
    ["0s", undefined],
    ["5", undefined],
    ["1m1h", undefined],
    ["", undefined],
  ])("duration %s", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each([
    ["1%", 0.01],
    ["0.5%", 0.005],
    ["0.01", 0.01],
    ["abc", undefined],
    ["1e-2", undefined],
  ])("fraction %s", (text, value) => expect(parseFraction(text)).toBe(value));
});
