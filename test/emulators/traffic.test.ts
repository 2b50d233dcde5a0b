/**
 * The traffic simulator with real Prometheus scraping it: the canary's share of
 * istio_requests_total follows the VirtualService's weight, and Prometheus's totals equal the
 * simulator's exact totals as of the last scrape.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NAMESPACE } from "../mesh/fixtures.ts";
import { type Mesh, startMesh } from "../mesh/index.ts";

let mesh: Mesh;

async function query(
  promql: string,
): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const res = await fetch(`${mesh.prometheus?.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as {
    status: string;
    data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  expect(body.status).toBe("success");
  return body.data.result;
}

async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  mesh = await startMesh({ requestsPerSecond: 800, seed: 11 });
});
afterAll(async () => {
  await mesh?.stop();
});

describe("traffic simulator and real Prometheus", () => {
  it("sends 10 % of requests to the canary at weight 10, as Prometheus sees it", async () => {
    mesh.kube.editOutOfBand("virtualservices", NAMESPACE, "backend", (o) => {
      (o.spec as { http: Array<{ route: unknown[] }> }).http[0]!.route = [
        { destination: { host: "backend", subset: "v1" }, weight: 90 },
        { destination: { host: "backend", subset: "v2" }, weight: 10 },
      ];
    });
    const start = { v1: mesh.traffic.totals("v1").requests, v2: mesh.traffic.totals("v2").requests };
    expect(start.v2).toBe(0);
    // Enough requests that the canary's share is within 2 points of 10 % (3.5 standard deviations).
    const sent = () =>
      mesh.traffic.totals("v1").requests + mesh.traffic.totals("v2").requests - start.v1 - start.v2;
    await until(
      async () => sent(),
      (n) => n >= 2_800,
      30_000,
    );
    mesh.traffic.pause();
    // Wait for a scrape after the pause, then for Prometheus to hold it.
    const scrapes = mesh.traffic.scrapes;
    await until(
      async () => mesh.traffic.scrapes,
      (n) => n >= scrapes + 2,
    );
    const expected = { v1: mesh.traffic.totalsAtLastScrape("v1"), v2: mesh.traffic.totalsAtLastScrape("v2") };
    const byVersion = await until(
      async () =>
        Object.fromEntries(
          (
            await query(
              'sum by (destination_version) (istio_requests_total{reporter="destination",destination_service_name="backend"})',
            )
          ).map((r) => [r.metric.destination_version, Number(r.value[1])]),
        ),
      (v) => v.v1 === expected.v1.requests && v.v2 === expected.v2.requests,
    );
    expect(byVersion).toEqual({ v1: expected.v1.requests, v2: expected.v2.requests });
    const canaryRequests = (byVersion.v2 ?? 0) - start.v2;
    const share = canaryRequests / (canaryRequests + (byVersion.v1 ?? 0) - start.v1);
    console.log(
      `canary share at weight 10: ${(share * 100).toFixed(2)} % of ${canaryRequests + (byVersion.v1 ?? 0) - start.v1} requests; Prometheus totals equal the simulator's as of the last scrape`,
    );
    expect(Math.abs(share - 0.1)).toBeLessThanOrEqual(0.02);

    const errors = Object.fromEntries(
      (
        await query(
          'sum by (destination_version) (istio_requests_total{reporter="destination",response_code=~"5..|0"})',
        )
      ).map((r) => [r.metric.destination_version, Number(r.value[1])]),
    );
    expect(errors.v1 ?? 0).toBe(expected.v1.errors);
    expect(errors.v2 ?? 0).toBe(expected.v2.errors);
    const slow = await query(
      'sum by (destination_version) (istio_request_duration_milliseconds_count) - sum by (destination_version) (istio_request_duration_milliseconds_bucket{le="50"})',
    );
    expect(Object.fromEntries(slow.map((r) => [r.metric.destination_version, Number(r.value[1])]))).toEqual({
      v1: expected.v1.slowerThan["50"],
      v2: expected.v2.slowerThan["50"],
    });
    mesh.traffic.resume();
  });

  it("labels series as Istio's destination reporter does", async () => {
    const [series] = await query('istio_requests_total{destination_version="v2"}');
    expect(Object.keys(series?.metric ?? {})).toEqual(
      expect.arrayContaining([
        "reporter",
        "destination_service",
        "destination_service_name",
        "destination_service_namespace",
        "destination_workload",
        "destination_workload_namespace",
        "destination_version",
        "destination_canonical_service",
        "destination_canonical_revision",
        "destination_app",
        "source_workload",
        "response_code",
        "response_flags",
        "request_protocol",
        "connection_security_policy",
      ]),
    );
    expect(series?.metric).toMatchObject({
      reporter: "destination",
      destination_workload: "backend-v2",
      destination_service: "backend.shop.svc.cluster.local",
    });
    const buckets = await query(
      'count by (le) (istio_request_duration_milliseconds_bucket{destination_version="v1"})',
    );
    expect(buckets.map((b) => b.metric.le).sort((a, b) => Number(a) - Number(b))).toContain("+Inf");
    expect(buckets).toHaveLength(20);
  });
});
