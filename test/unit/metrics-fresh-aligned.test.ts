/**
 * Issue 21's time alignment and issue 20's fresh data, on sample times as Prometheus returns them:
 * pods scraped at their own offsets, counters that stop, a stuck exporter.
 */
import { describe, expect, it } from "vitest";
import {
  commonInstant,
  countsSince,
  firstCommonSample,
  type SeriesSamples,
  samplesAfter,
  seriesSamples,
  startValues,
} from "../../src/metrics/counts.ts";
import { freshnessProblems } from "../../src/metrics/freshness.ts";
import { IstioPrometheusObserver } from "../../src/metrics/istio-observer.ts";
import { PrometheusClient } from "../../src/metrics/prometheus-client.ts";

const S = 1000;

/** A counter series with samples every 15 s from `phase`: its value is requests served until then. */
function scraped(
  labels: Record<string, string>,
  phaseMs: number,
  from: number,
  to: number,
  valueAt: (t: number) => number,
) {
  const times: number[] = [];
  for (let t = from + phaseMs; t <= to; t += 15 * S) times.push(t);
  return { metric: labels, times, values: times.map(valueAt) };
}

/** The reader over a Prometheus whose range queries `answer` gives the matrix result of. */
function observerAnswering(answer: (form: URLSearchParams) => unknown[], url: string) {
  const fetch = (async (_url: unknown, init?: { body?: unknown }) => {
    const result = answer(new URLSearchParams(String(init?.body ?? "")));
    const text = JSON.stringify({ status: "success", data: { resultType: "matrix", result } });
    return { ok: true, status: 200, statusText: "OK", headers: { get: () => null }, text: async () => text };
  }) as unknown as typeof globalThis.fetch;
  return new IstioPrometheusObserver(new PrometheusClient({ url, fetch }), {
    canary: 'destination_version="v2"',
    stable: 'destination_version="v1"',
  });
}

describe("counting both versions up to one instant", () => {
  // Both versions serve 10 req/s of which, during a shared incident from 100 s to 130 s, half fail.
  const served = (t: number) => Math.floor(t / 100);
  const failed = (t: number) => Math.floor(Math.max(0, Math.min(t, 130 * S) - 100 * S) / 200);
  const version = (name: string, phaseMs: number, to: number): SeriesSamples =>
    seriesSamples([
      scraped({ v: name, response_code: "200" }, phaseMs, 0, to, (t) => served(t) - failed(t)),
      scraped({ v: name, response_code: "503" }, phaseMs, 0, to, failed),
    ]);
  const none = startValues(seriesSamples([]));

  it("lines up versions scraped 10 s apart, so a shared incident is in the same read for both", () => {
    // Read at 118 s: the canary was last scraped at 106 s, stable at 116 s.
    const canary = version("canary", 1 * S, 118 * S);
    const stable = version("stable", 11 * S, 118 * S);
    const instant = commonInstant(15 * S, [canary, stable]) as number;
    expect(instant).toBe(106 * S);
    const at = { instant, spacingMs: 15 * S, startAt: 0 };
    const c = countsSince(none, canary, at);
    const s = countsSince(none, stable, at);
    // Without alignment stable would count 10 s more of the incident than the canary.
    const unaligned = countsSince(none, stable);
    expect(unaligned?.errors).toBe(failed(116 * S));
    expect(c?.errors).toBe(failed(106 * S));
    // Stable's count at 106 s, interpolated between its samples at 101 s and 116 s.
    expect(Math.abs((s?.errors ?? 0) - failed(106 * S))).toBeLessThanOrEqual(10);
    expect(Math.abs((s?.requests ?? 0) - served(106 * S))).toBeLessThanOrEqual(1);
    expect(s?.errors).toBeLessThan(unaligned?.errors ?? 0);
  });

  it("counts each cumulative total in whole requests, so windows add up to the last read exactly", () => {
    const canary = version("canary", 4 * S, 300 * S);
    const stable = version("stable", 12 * S, 300 * S);
    const instant = commonInstant(15 * S, [canary, stable]) as number;
    const c = countsSince(none, canary, { instant, spacingMs: 15 * S, startAt: 0 });
    expect(Number.isInteger(c?.requests)).toBe(true);
    expect(c?.requests).toBe(served(instant));
  });

  it("leaves a pod that stopped being scraped out of the instant (it counts to its end)", () => {
    const live = scraped({ pod: "a" }, 5 * S, 0, 200 * S, served);
    const gone = scraped({ pod: "b" }, 9 * S, 0, 60 * S, served);
    const read = seriesSamples([live, gone]);
    expect(commonInstant(15 * S, [read])).toBe(200 * S);
  });
});

describe("counting afresh after a step back", () => {
  // The canary served everything until the step back at 100 s, and an incident made half its
  // requests fail from 90 s to 100 s; from 100 s both versions serve 5 req/s, none failing.
  const canaryServed = (t: number) =>
    t <= 100 * S ? Math.floor(t / 100) : 1000 + Math.floor((t - 100 * S) / 200);
  const canaryFailed = (t: number) => Math.floor(Math.max(0, Math.min(t, 100 * S) - 90 * S) / 200);
  const stableServed = (t: number) => (t <= 100 * S ? 0 : Math.floor((t - 100 * S) / 200));
  const canary = seriesSamples([
    scraped(
      { v: "canary", response_code: "200" },
      2 * S,
      0,
      160 * S,
      (t) => canaryServed(t) - canaryFailed(t),
    ),
    scraped({ v: "canary", response_code: "503" }, 2 * S, 0, 160 * S, canaryFailed),
  ]);
  const stable = seriesSamples([
    scraped({ v: "stable", response_code: "200" }, 12 * S, 0, 160 * S, stableServed),
  ]);
  const sinceMove = (read: SeriesSamples) => samplesAfter(read, 100 * S);

  it("counts from the latest of the first samples after the move, so no error served before it counts", () => {
    const t0 = firstCommonSample(15 * S, 100 * S, [sinceMove(canary), sinceMove(stable)]) as number;
    // The canary's first sample after the move is at 107 s, stable's at 102 s.
    expect(t0).toBe(107 * S);
    const instant = commonInstant(15 * S, [canary, stable]) as number;
    const at = { instant, spacingMs: 15 * S, startAt: t0 };
    const c = countsSince(startValues(sinceMove(canary), t0), samplesAfter(canary, t0), at);
    const s = countsSince(startValues(sinceMove(stable), t0), samplesAfter(stable, t0), at);
    expect(c?.errors).toBe(0);
    expect(Math.abs((c?.requests ?? 0) - (s?.requests ?? 0))).toBeLessThanOrEqual(2);
    // Counting on from an instant before the move interpolates across it: the increment from the
    // canary's sample at 92 s to 107 s holds incident errors, and a share of them lands after 100 s.
    const before = startValues(canary, 95 * S);
    const leaked = countsSince(before, samplesAfter(canary, 95 * S), { ...at, startAt: 95 * S });
    expect(leaked?.errors).toBeGreaterThan(0);
  });
});

describe("judging only fresh data", () => {
  const flat = (name: string, from: number, to: number, value: number) =>
    seriesSamples([scraped({ v: name }, 3 * S, from, to, () => value)]);
  const moving = (name: string, from: number, to: number) =>
    seriesSamples([scraped({ v: name }, 7 * S, from, to, (t) => Math.floor(t / 100))]);
  const base = {
    spacingMs: 15 * S,
    hadSeries: { canary: true, stable: true },
    canaryStart: new Map<string, number>(),
  };

  it("calls a version whose samples stopped while the other's go on stale (its target is down)", () => {
    const problems = freshnessProblems({
      ...base,
      now: 600 * S,
      canary: flat("canary", 0, 300 * S, 5),
      stable: moving("stable", 0, 600 * S),
    });
    expect(problems.join(" ")).toMatch(/canary's newest sample is \d+ s older/);
  });

  it("calls series that are all old at the query time stale (a federation gap)", () => {
    const problems = freshnessProblems({
      ...base,
      now: 600 * S,
      canary: moving("canary", 0, 400 * S),
      stable: moving("stable", 0, 400 * S),
    });
    expect(problems.join(" ")).toMatch(/no series has a sample in the last/);
  });

  it("calls series present at the start and absent since vanished, not 'no traffic'", () => {
    const problems = freshnessProblems({
      ...base,
      now: 600 * S,
      canary: seriesSamples([]),
      stable: moving("stable", 300 * S, 600 * S),
    });
    expect(problems.join(" ")).toMatch(/canary's series at the start of counting have no sample since/);
  });

  it("calls a canary stuck when its counters stay flat far longer than its earlier rate allows", () => {
    const read = (history: { requests: number; ms: number }) =>
      freshnessProblems({
        ...base,
        now: 300 * S,
        canary: flat("canary", 0, 300 * S, 5000),
        stable: moving("stable", 0, 300 * S),
        canaryStart: new Map([[JSON.stringify([["v", "canary"]]), 5000]]),
        canaryHistory: history,
      });
    // 600 requests in 600 s, then none for about 285 s: (600 / 885)^600, far below e^-20.
    expect(read({ requests: 600, ms: 600 * S }).join(" ")).toMatch(/have not moved for \d+ s/);
    // 150 requests in 3000 s: 285 s without one has a chance of (3000 / 3285)^150 ≈ e^-13.6.
    expect(read({ requests: 150, ms: 3000 * S })).toEqual([]);
    // 3 requests in 10 s: (10 / 295)^3 ≈ e^-10: could be chance.
    expect(read({ requests: 3, ms: 10 * S })).toEqual([]);
  });

  it("calls every counter stuck when both versions stayed flat after serving (canary at 100 %, its exporter stuck)", () => {
    const key = (v: string) => JSON.stringify([["v", v]]);
    const read = (history: { requests: number; ms: number }) =>
      freshnessProblems({
        ...base,
        now: 90 * S,
        canary: flat("canary", 0, 90 * S, 20),
        stable: flat("stable", 0, 90 * S, 900),
        canaryStart: new Map([[key("canary"), 20]]),
        stableStart: new Map([[key("stable"), 900]]),
        // Too few canary requests to say it from the canary alone: (10 / 85)^3 ≈ e^-6.4.
        canaryHistory: { requests: 3, ms: 10 * S },
        allHistory: history,
      });
    expect(read({ requests: 900, ms: 10 * S }).join(" ")).toMatch(/no counter of either version has moved/);
    // A service that served 3 requests in 10 s may well be idle for 75 s.
    expect(read({ requests: 3, ms: 10 * S })).toEqual([]);
  });

  it("accepts fresh series, flat or moving, from both versions", () => {
    expect(
      freshnessProblems({
        ...base,
        now: 305 * S,
        canary: moving("canary", 0, 300 * S),
        stable: flat("stable", 0, 300 * S, 10),
        canaryHistory: { requests: 600, ms: 600 * S },
      }),
    ).toEqual([]);
  });
});

describe("a replica of an HA pair restarted with empty storage", () => {
  /** Answers each query from the replica whose turn it is: a's full history, or b's since its restart. */
  function pair(restartedAt: number) {
    let turn = 0;
    const samples = (from: number, to: number) => {
      const values: Array<[number, string]> = [];
      for (let t = Math.ceil((from + 1) / 15_000) * 15_000; t <= to; t += 15_000)
        values.push([t / 1000, String(t / 100)]);
      return values;
    };
    return observerAnswering((form) => {
      const query = form.get("query") ?? "";
      const at = Number(form.get("time")) * 1000;
      const range = Number(/\[(\d+)ms\]$/.exec(query)?.[1] ?? 0);
      const version = query.includes('"v2"') ? "v2" : "v1";
      // b answers every other query once restarted, and has scraped only the stable pods yet.
      const fromB = turn++ % 2 === 0 && at >= restartedAt;
      const values = fromB
        ? version === "v2"
          ? []
          : samples(Math.max(at - range, restartedAt), at)
        : samples(at - range, at);
      const result =
        values.length > 0 ? [{ metric: { destination_version: version, response_code: "200" }, values }] : [];
      return result;
    }, "http://pair");
  }

  it("makes a read without the canary's series no data, never 'no canary traffic'", async () => {
    const reader = pair(1_000_000);
    const mark = await reader.start(new Date(900_000));
    // The canary's read goes to the restarted replica, which has no canary series yet.
    const observation = await reader.observeSince(mark, new Date(1_005_000));
    expect(observation).toMatchObject({ ok: false, problem: "stale" });
    if (!observation.ok)
      expect(observation.message).toMatch(/canary's series at the start of counting have no sample since/);
  });
});

describe("stable's samples just past the common instant (incident edges)", () => {
  // Both versions serve 10 req/s; from 100 s on half of the requests fail (an incident).
  const served = (t: number) => Math.floor(t / 100);
  const failed = (t: number) => Math.floor(Math.max(0, t - 100 * S) / 200);
  const phases = { v2: 1 * S, v1: 11 * S };

  function reader() {
    return observerAnswering((form) => {
      const query = form.get("query") ?? "";
      const at = Number(form.get("time")) * 1000;
      const range = Number(/\[(\d+)ms\]$/.exec(query)?.[1] ?? 0);
      const version = query.includes('"v2"') ? "v2" : "v1";
      const result = query.startsWith("istio_requests_total")
        ? [
            { code: "200", value: (t: number) => served(t) - failed(t) },
            { code: "503", value: failed },
          ].map(({ code, value }) => {
            const s = scraped(
              { destination_version: version, response_code: code },
              phases[version],
              0,
              at,
              value,
            );
            const values = s.times
              .map((t, i) => [t, s.values[i] as number] as const)
              .filter(([t]) => t > at - range)
              .map(([t, v]) => [t / 1000, String(v)]);
            return { metric: s.metric, values };
          })
        : [];
      return result;
    }, "http://prometheus");
  }

  it("counts both versions to the common instant, and stable on through its latest samples as stableAhead", async () => {
    const metrics = reader();
    const mark = await metrics.start(new Date(60 * S));
    // Read at 118 s: the canary was last scraped at 106 s, stable at 116 s; the instant is 106 s.
    const observation = await metrics.observeSince(mark, new Date(118 * S));
    expect(observation.ok).toBe(true);
    if (!observation.ok) return;
    const { stable, stableAhead } = observation;
    expect(Math.abs((stable?.errors ?? 0) - failed(106 * S))).toBeLessThanOrEqual(10);
    // Past the instant stable's samples already show the incident: 50 of its requests failed by 116 s.
    expect(stableAhead?.errors).toBe(failed(116 * S));
    expect((stableAhead?.errors ?? 0) - (stable?.errors ?? 0)).toBeGreaterThanOrEqual(20);
    expect(stableAhead?.requests).toBeGreaterThan(stable?.requests ?? 0);
  });
});
