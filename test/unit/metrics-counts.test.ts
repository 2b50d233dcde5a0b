/** Exact counts from raw counter samples: errors by Istio's labels, resets, series that come and go. */
import { describe, expect, it } from "vitest";
import { countsSince, isErrorSeries, seriesSamples, startValues } from "../../src/metrics/counts.ts";
import type { RangeSeries } from "../../src/metrics/prometheus-client.ts";

const series = (labels: Record<string, string>, values: number[]) => ({
  metric: { destination_version: "v2", ...labels },
  values,
});

describe("isErrorSeries", () => {
  it.each([
    [{ response_code: "503" }, true],
    [{ response_code: "500" }, true],
    [{ response_code: "0", response_flags: "DC" }, true],
    [{ response_code: "200", grpc_response_status: "14" }, true],
    [{ response_code: "200", grpc_response_status: "0" }, false],
    [{ response_code: "200", grpc_response_status: "" }, false],
    [{ response_code: "404" }, false],
    [{ response_code: "429" }, false],
  ])("%j is an error: %s", (labels, error) => expect(isErrorSeries(labels)).toBe(error));
});

describe("countsSince", () => {
  it("adds increments sample to sample, counting resets in full and new series from zero", () => {
    const start = startValues(
      seriesSamples([
        series({ response_code: "200", pod: "a" }, [100]),
        series({ response_code: "503", pod: "a" }, [4]),
      ]),
    );
    const since = seriesSamples([
      // 100 -> 130, reset (pod restart) -> 5 -> 25: 30 + 5 + 20 = 55
      series({ response_code: "200", pod: "a" }, [110, 130, 5, 25]),
      // unchanged errors on the old pod
      series({ response_code: "503", pod: "a" }, [4, 4]),
      // a new pod's series appears mid-stage with its first request: all of it counts
      series({ response_code: "503", pod: "b" }, [1, 3]),
    ]);
    expect(countsSince(start, since)).toEqual({ requests: 55 + 0 + 3, errors: 3 });
  });

  it("says 'no series' when the range holds no sample, even if the start had some: no data is not zero requests", () => {
    const none = seriesSamples([]);
    expect(countsSince(startValues(none), none)).toBeUndefined();
    const before = startValues(seriesSamples([series({ response_code: "200" }, [7])]));
    expect(countsSince(before, none)).toBeUndefined();
    const idle = seriesSamples([series({ response_code: "200" }, [7, 7])]);
    expect(countsSince(before, idle)).toEqual({ requests: 0, errors: 0 });
  });

  it("counts slow requests as the histogram's count minus the threshold bucket", () => {
    const latency = (le: string | undefined, values: number[]) => ({
      metric: { destination_version: "v2", response_code: "200", ...(le ? { le } : {}) },
      values,
    });
    const at = seriesSamples(
      [series({ response_code: "200" }, [10])],
      [latency(undefined, [10]), latency("500", [9])],
    );
    const later = seriesSamples(
      [series({ response_code: "200" }, [30])],
      [latency(undefined, [30]), latency("500", [24])],
    );
    expect(countsSince(startValues(at), later)).toEqual({ requests: 20, errors: 0, slow: 5 });
  });

  it("marks NaN samples as a problem instead of counting them", () => {
    const bad = seriesSamples([series({ response_code: "200" }, [Number.NaN])]);
    expect(bad.problems).toEqual(["a request counter sample value was NaN"]);
  });
});

describe("real Prometheus setups", () => {
  it("an HA pair's slightly different samples are not counter resets", () => {
    // Replica A answered the start (1000); replica B answers later, a little behind at first.
    const start = startValues(seriesSamples([series({ response_code: "200" }, [1000])]));
    const since = seriesSamples([series({ response_code: "200" }, [998, 1003, 1010])]);
    expect(countsSince(start, since)?.requests).toBe(10);
  });

  it("within one range (one replica) any drop is a pod restart, however small", () => {
    const start = startValues(seriesSamples([series({ response_code: "200" }, [100])]));
    // 100 -> 200, restart, 150 served before the next scrape, then 160.
    const since = seriesSamples([series({ response_code: "200" }, [200, 150, 160])]);
    expect(countsSince(start, since)?.requests).toBe(100 + 150 + 10);
  });

  it("a count without its threshold bucket is partial data, never all slow", () => {
    const requests = [series({ response_code: "200" }, [200])];
    const latency: RangeSeries[] = [
      { metric: { destination_version: "v2", pod: "a" }, values: [200] },
      { metric: { destination_version: "v2", pod: "b" }, values: [50] },
      { metric: { destination_version: "v2", pod: "b", le: "500" }, values: [49] },
    ];
    const s = seriesSamples(requests, latency);
    expect(s.latencyProblems.join(" ")).toMatch(/1 latency series had no sample-for-sample match/);
    expect(s.problems).toEqual([]);
    expect([...(s.slow?.values() ?? [])]).toEqual([[1]]);
  });
});
