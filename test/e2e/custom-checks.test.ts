/**
 * Custom checks (issue 23) end to end: `node dist/index.js` on the local mesh with a real Prometheus
 * scraping the traffic simulator's `business_orders_total{app, version, pod, status}` beside Istio's
 * metrics. A canary healthy on Istio's errors but failing the orders check is rolled back; a
 * report-only check never fails a rollout; a broken query is refused before any write.
 */
import { describe, expect, it } from "vitest";
import { canaryWeight, errorLines, fastInputs, runOnMesh, useMesh } from "../support/e2e.ts";

const meshWith = useMesh();

/** The business check: failed orders against all orders, per version, at most 2 %. */
function ordersCheck(mode: "fail" | "report", extra = ""): string {
  return [
    "- name: orders",
    `  mode: ${mode}`,
    '  bad: sum(business_orders_total{status="failed", version="{{ version }}"})',
    '  total: business_orders_total{version="{{ version }}"}',
    "  max-rate: 2%",
    extra,
  ]
    .filter(Boolean)
    .join("\n");
}

interface CheckOutput {
  name: string;
  mode: string;
  status: string;
  canary?: { bad: number; total: number };
  stable?: { bad: number; total: number };
}

const patches = (m: Awaited<ReturnType<typeof meshWith>>) =>
  m.kube.audit.filter((e) => e.verb === "patch" && e.code === 200).length;

describe("custom checks end to end", () => {
  it("rolls back a canary healthy on Istio's errors whose failed orders break the check", async () => {
    const m = await meshWith({
      stable: { errorRate: 0.002, orderFailureRate: 0.005 },
      canary: { errorRate: 0.002, orderFailureRate: 0.2 },
    });
    const run = await runOnMesh(m, {
      inputs: fastInputs(m, { checks: ordersCheck("fail", "  max-ratio-to-stable: 3") }),
    });
    expect(run.outputs.result, run.stdout).toBe("rolled-back");
    expect(run.exitCode).toBe(1);
    expect(canaryWeight(m)).toEqual([100]);
    const checks = JSON.parse(run.outputs.checks as string) as CheckOutput[];
    expect(checks).toHaveLength(1);
    expect(checks[0]?.status).toBe("failing");
    // Istio's own error rate stayed within its limit: the check alone decided.
    const report = JSON.parse(run.outputs.report as string);
    expect(report.reason).toMatch(
      /Check orders: [\d,]+ of [\d,]+ canary events bad \([\d.]+ %\); stable [\d,]+ of [\d,]+ \([\d.]+ %\)/,
    );
    expect(errorLines(run)[0]).toContain("Check orders");
    expect(run.summary).toContain("Custom checks");
    const served = m.traffic.totals("v2");
    console.log(
      `orders check: canary counted ${checks[0]?.canary?.bad} failed of ${checks[0]?.canary?.total} orders (stable ${checks[0]?.stable?.bad} of ${checks[0]?.stable?.total}); the canary served ${served.requests} requests in all`,
    );
    expect(checks[0]?.canary?.total).toBeGreaterThan(0);
    // The check failed on its limit (2 %) or its ratio (3× stable): the canary was above both.
    expect((checks[0]?.canary?.bad ?? 0) / (checks[0]?.canary?.total ?? 1)).toBeGreaterThan(0.02);
  });

  it("a report-only check never fails the rollout, and reports what it saw", async () => {
    const m = await meshWith({
      stable: { errorRate: 0.002, orderFailureRate: 0.005 },
      canary: { errorRate: 0.002, orderFailureRate: 0.2 },
    });
    const run = await runOnMesh(m, { inputs: fastInputs(m, { checks: ordersCheck("report") }) });
    expect(run.outputs.result, run.stdout).toBe("promoted");
    expect(run.exitCode).toBe(0);
    const checks = JSON.parse(run.outputs.checks as string) as CheckOutput[];
    expect(checks[0]).toMatchObject({ name: "orders", mode: "report", status: "failing" });
    expect(run.summary).toContain("report only");
  });

  it("a healthy canary passes its checks (a counter and a threshold) and is promoted", async () => {
    const m = await meshWith({
      stable: { errorRate: 0.002, orderFailureRate: 0.005 },
      canary: { errorRate: 0.002, orderFailureRate: 0.005 },
    });
    const threshold = [
      "- name: 4xx-free",
      '  query: sum(istio_requests_total{ {{ selector }}, response_code=~"4.." }) or vector(0)',
      "  below: 1",
    ].join("\n");
    const run = await runOnMesh(m, {
      inputs: fastInputs(m, { checks: `${ordersCheck("fail")}\n${threshold}` }),
    });
    expect(run.outputs.result, run.stdout).toBe("promoted");
    const checks = JSON.parse(run.outputs.checks as string) as CheckOutput[];
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ["orders", "ok"],
      ["4xx-free", "ok"],
    ]);
  });

  it("rolls back on a threshold check in breach for `breaches` consecutive reads", async () => {
    const m = await meshWith({
      stable: { errorRate: 0.002, orderFailureRate: 0.005 },
      canary: { errorRate: 0.002, orderFailureRate: 0.2 },
    });
    const ratio = [
      "- name: failed-share",
      '  query: sum(business_orders_total{status="failed", version="{{ version }}"}) / sum(business_orders_total{version="{{ version }}"})',
      "  below: 0.05",
      "  breaches: 2",
    ].join("\n");
    const run = await runOnMesh(m, { inputs: fastInputs(m, { checks: ratio }) });
    expect(run.outputs.result, run.stdout).toBe("rolled-back");
    const checks = JSON.parse(run.outputs.checks as string) as Array<CheckOutput & { breaches: number }>;
    expect(checks[0]).toMatchObject({ name: "failed-share", status: "failing", breaches: 2 });
    expect(JSON.parse(run.outputs.report as string).reason).toMatch(
      /Check failed-share: .* is not below 0.05 for 2 consecutive reads/,
    );
  });

  it("refuses a broken query before any write, naming the check", async () => {
    const m = await meshWith({ stable: { errorRate: 0.002, orderFailureRate: 0.005 } });
    const broken = [
      "- name: broken",
      '  bad: business_orders_total{status=~"(", version="{{ version }}"}',
      '  total: business_orders_total{version="{{ version }}"}',
      "  max-rate: 2%",
      "- name: missing",
      '  bad: no_such_metric_total{version="{{ version }}"}',
      '  total: no_such_metric_total{version="{{ version }}"}',
      "  max-rate: 2%",
      "- name: gauge",
      '  bad: business_orders_in_flight{version="{{ version }}"}',
      '  total: business_orders_total{version="{{ version }}"}',
      "  max-rate: 2%",
      "- name: unknown",
      '  bad: up{job="istio-mesh"}',
      '  total: business_orders_total{version="{{ version }}"}',
      "  max-rate: 2%",
    ].join("\n");
    const run = await runOnMesh(m, { inputs: fastInputs(m, { checks: broken }) });
    expect(run.exitCode).toBe(1);
    expect(patches(m)).toBe(0);
    const error = errorLines(run).join("\n");
    expect(error).toMatch(/check "broken": bad .* does not parse \(Prometheus: 400 bad_data/);
    expect(error).toContain('check "missing": total');
    expect(error).toContain("has no series for the stable version");
    // Prometheus' metadata says it is a gauge; a metric without metadata is judged by its name.
    expect(error).toContain(
      'check "gauge": bad: business_orders_in_flight is a gauge in Prometheus\' metadata, not a counter',
    );
    expect(error).toContain('check "unknown": bad: Prometheus has no metadata for up');
    expect(error).not.toMatch(/check "(gauge|unknown)": total/);
  });
});
