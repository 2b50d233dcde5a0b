/**
 * The custom checks port over Prometheus' HTTP API (src/checks/prometheus-checks.ts), against a
 * scripted API in process: counts from the weight change (a start read at that instant; again after
 * a move inside the stage), windows between reads, and a Prometheus outage that reports the check
 * without failing it.
 */
import { describe, expect, it } from "vitest";
import { PrometheusChecks } from "../../src/checks/prometheus-checks.ts";
import type { CustomCheckDefinition } from "../../src/inputs/types.ts";
import { PrometheusClient } from "../../src/metrics/prometheus-client.ts";

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

/** Orders per second by version and status; counters scraped every second since T0 - 10 min. */
const RATES: Record<string, { ok: number; failed: number }> = {
  v1: { ok: 99, failed: 1 },
  v2: { ok: 7, failed: 3 },
};

/** `stableOffsetMs`: stable's target is scraped this long before the canary's in every second. */
function scriptedFetch(state: { down: boolean; queries: string[]; stableOffsetMs?: number }): typeof fetch {
  return (async (_url: unknown, init?: { body?: unknown }) => {
    const form = new URLSearchParams(String(init?.body ?? ""));
    const query = form.get("query") ?? "";
    state.queries.push(query);
    if (state.down)
      return new Response(
        JSON.stringify({ status: "error", errorType: "bad_data", error: "down for the test" }),
        {
          status: 400,
        },
      );
    const at = Math.round(Number(form.get("time")) * 1000);
    const range = Number(/\[(\d+)ms\]$/.exec(query)?.[1]);
    const version = /version="(v\d)"/.exec(query)?.[1] as string;
    const statuses = query.includes('status="failed"') ? ["failed"] : ["ok", "failed"];
    const result = statuses.map((status) => {
      const values: Array<[number, string]> = [];
      const offset = version === "v1" ? (state.stableOffsetMs ?? 0) / 1000 : 0;
      for (let t = Math.floor((at - range) / 1000) + 1; t * 1000 <= at + offset * 1000; t++) {
        const sampled = t - offset;
        if (sampled * 1000 <= at - range) continue;
        const since = Math.max(0, sampled - (T0 / 1000 - 600));
        const rate = RATES[version]?.[status as "ok" | "failed"] ?? 0;
        values.push([sampled, String(since * rate)]);
      }
      return { metric: { __name__: "business_orders_total", version, status }, values };
    });
    return new Response(JSON.stringify({ status: "success", data: { resultType: "matrix", result } }));
  }) as typeof fetch;
}

const orders: CustomCheckDefinition = {
  name: "orders",
  kind: "counter",
  mode: "fail",
  bad: 'business_orders_total{status="failed", version="{{ version }}"}',
  total: 'business_orders_total{version="{{ version }}"}',
  maxRate: 0.02,
};

function port(state: { down: boolean; queries: string[]; stableOffsetMs?: number }) {
  const client = new PrometheusClient({
    url: "http://prometheus:9090",
    fetch: scriptedFetch(state),
    retries: 0,
  });
  const versions = { canary: { version: "v2", selector: "" }, stable: { version: "v1", selector: "" } };
  return new PrometheusChecks(client, [orders], versions, 0.0125);
}

describe("custom checks over Prometheus", () => {
  it("counts each version's events exactly from the weight change, and fails a bad canary", async () => {
    const state = { down: false, queries: [] as string[] };
    const checks = port(state);
    const read = (seconds: number) =>
      checks.judge({ stage: 0, weight: 10, changedAt: T0, now: new Date(T0 + seconds * 1000) });
    const first = await read(5);
    // The start is read at the weight change (T0), each version's placeholder filled in.
    expect(state.queries).toContain('business_orders_total{status="failed", version="v2"}[300000ms]');
    expect(first[0]?.canary).toEqual({ bad: 15, total: 50 });
    expect(first[0]?.stable).toEqual({ bad: 5, total: 500 });
    const later = await read(20);
    expect(later[0]?.canary).toEqual({ bad: 60, total: 200 });
    expect(later[0]?.status).toBe("failing");
    expect(later[0]?.limitLogE).toBeGreaterThan(Math.log(80));
  });

  it("after a move inside the stage counts from the move, and the check's counts and evidence carry on", async () => {
    const state = { down: false, queries: [] as string[] };
    const checks = port(state);
    const read = (changedAt: number, seconds: number) =>
      checks.judge({ stage: 3, weight: 100, changedAt, now: new Date(T0 + seconds * 1000) });
    await read(T0, 5);
    const before = await read(T0, 20);
    state.queries.length = 0;
    // A step back written at 20 s: the next read counts from it, over the 10 s since, not 30 s.
    const after = await read(T0 + 20_000, 30);
    expect(state.queries).toContain('business_orders_total{version="v2"}[10000ms]');
    expect(state.queries).not.toContain('business_orders_total{version="v2"}[30000ms]');
    // The 10 s since the move added to the 20 s before it: nothing lost, nothing counted twice.
    expect(before[0]?.canary).toEqual({ bad: 60, total: 200 });
    expect(after[0]?.canary).toEqual({ bad: 90, total: 300 });
    expect(after[0]?.stable).toEqual({ bad: 30, total: 3000 });
    expect(after[0]?.limitLogE).toBeGreaterThan(before[0]?.limitLogE ?? Number.POSITIVE_INFINITY);
  });

  it("counts both versions up to one instant while stable serves: the same moments of each", async () => {
    const state = { down: false, queries: [] as string[], stableOffsetMs: 500 };
    const checks = port(state);
    const [result] = await checks.judge({ stage: 0, weight: 10, changedAt: T0, now: new Date(T0 + 5000) });
    // Stable's latest sample is at 4.5 s: the canary is counted to it too (linear within its scrape).
    expect(result?.stable).toEqual({ bad: 5, total: 500 });
    expect(result?.canary).toEqual({ bad: 14, total: 45 });
  });

  it("a read Prometheus does not answer adds nothing and fails nothing", async () => {
    const state = { down: true, queries: [] as string[] };
    const [result] = await port(state).judge({
      stage: 0,
      weight: 10,
      changedAt: T0,
      now: new Date(T0 + 5000),
    });
    expect(result?.status).toBe("no-data");
    expect(result?.summary).toContain("not read: 400 bad_data: down for the test");
  });
});
