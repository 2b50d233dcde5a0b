import { describe, expect, it } from "vitest";
import { InputError, parseConfig } from "../../src/inputs/config.ts";
import { parseDuration, parseFraction } from "../../src/inputs/parsers.ts";
import type { Config } from "../../src/inputs/types.ts";
import { kubeconfigYaml } from "../support/kubeconfig.ts";

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
    expect(c.reporter).toBe("auto");
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

  it("accepts routes by name and by position #N, and refuses a malformed position", () => {
    expect(parseConfig({ ...base, routes: "primary, #0\n#12" }).virtualServices[0]?.routes).toEqual([
      "primary",
      "#0",
      "#12",
    ]);
    for (const routes of ["#", "#x", "#01", "#-1"])
      expect(problemsOf({ ...base, routes })).toEqual(["routes"]);
    expect(() => parseConfig({ ...base, routes: "#first" })).toThrow(
      /"#first" is not a route position: write # and the route's index in spec.http, as in "#0"/,
    );
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

describe("bounds and header rules", () => {
  const messageOf = (raw: Record<string, string>): string => {
    try {
      parseConfig({ ...base, ...raw });
    } catch (e) {
      return String(e);
    }
    return "";
  };

  it("refuses durations past 6 h, naming the input, the value and the range", () => {
    expect(messageOf({ "max-stage-duration": "600h" })).toMatch(
      /Input 'max-stage-duration': "600h" is longer than 6h.*from 1s to 6h/,
    );
    expect(messageOf({ "settle-time": "9".repeat(400) })).toContain("Input 'settle-time'");
    expect(messageOf({ interval: `${"9".repeat(400)}s` })).toMatch(
      /Input 'interval': "9{10,}\.\.\." is longer than 6h/,
    );
    const longest = parseConfig({
      ...base,
      "min-stage-duration": "6h",
      "max-stage-duration": "6h",
      "settle-time": "6h",
    });
    // The lease (max-stage-duration + settle-time + 5 min) stays below 24 h, every timer below 2^31-1 ms.
    expect(longest.maxStageDurationMs + longest.settleMs + 5 * 60_000).toBeLessThan(24 * 3_600_000);
  });

  it("accepts Latin-1 header values and refuses control characters, naming the character, not the value", () => {
    expect(parseConfig({ ...base, "prometheus-headers": "X-Team: équipe\tA" }).prometheus?.headers).toEqual({
      "X-Team": "équipe\tA",
    });
    for (const value of ["a\rb", "a\u0000b", "a\u007fb", "€uro", "a\u0085b"]) {
      const message = messageOf({ "prometheus-headers": `Authorization: secret-${value}` });
      expect(message, value).toMatch(
        /Input 'prometheus-headers': line 1 \(Authorization\) has the character U\+[0-9A-F]{4}/,
      );
      expect(message).not.toContain("secret-");
    }
  });

  it("refuses overriding headers the action sets, in any case, and a header given twice", () => {
    expect(messageOf({ "prometheus-headers": "content-type: text/plain" })).toMatch(
      /sets content-type, which the action sets itself/,
    );
    expect(messageOf({ "prometheus-headers": "HOST: x" })).toContain("Input 'prometheus-headers'");
    expect(messageOf({ "prometheus-headers": "X-A: 1\nx-a: 2" })).toMatch(/line 2 sets x-a a second time/);
  });

  it("shows a prometheus-url only redacted, and gives the client a redacted display URL", () => {
    const message = messageOf({
      "prometheus-url": "https://u:userinfo-secret@prom.example/x?key=query-secret",
    });
    expect(message).toContain('"https://prom.example/x"');
    expect(message).not.toMatch(/secret/);
    const c = parseConfig({
      ...base,
      "prometheus-url": "https://prom.example:9443/tenant/a1b2c3d4e5f6a7b8c9d0e1f2/?key=abc123",
    });
    expect(c.prometheus?.url).toBe("https://prom.example:9443/tenant/a1b2c3d4e5f6a7b8c9d0e1f2/?key=abc123");
    expect(c.prometheus?.displayUrl).toBe("https://prom.example:9443/tenant/***");
  });

  it("names the context input for an unknown context and checks the cluster's server", () => {
    const kubeconfig = kubeconfigYaml({ server: "https://127.0.0.1:6443", token: "t", context: "prod" });
    expect(problemsOf({ ...base, kubeconfig, context: "staging" })).toEqual(["context"]);
    const notUrl = kubeconfigYaml({ server: "127.0.0.1:6443", token: "t" });
    expect(messageOf({ kubeconfig: notUrl })).toMatch(
      /Input 'kubeconfig': cluster "emulator"'s server is .*not an https URL/,
    );
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
