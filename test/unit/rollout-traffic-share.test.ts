/**
 * The traffic-share check (issue 13, finding 8): the canary's share of requests is compared with
 * its weight, but a route the action does not manage that still sends traffic to stable (a header
 * route for testers, say) lowers that share legitimately, even at 100 %. The real engine in
 * virtual time, on the fake ports.
 */
import { describe, expect, it } from "vitest";
import { RolloutEngine } from "../../src/rollout/engine.ts";
import { defaultEngineSettings, EventLog, InMemoryTraffic, SimulatedMetrics } from "../support/fake-ports.ts";
import { VirtualClock } from "../support/virtual-clock.ts";

const HEADER_ROUTE = {
  route: 'http route "testers" of VirtualService shop/backend',
  to: ["stable" as const],
};

async function rollout(options: {
  unmanagedToStable: number;
  listed: boolean;
  scrapeLagMs?: number;
  kind?: "VirtualService" | "HTTPRoute";
}) {
  const clock = new VirtualClock();
  const traffic = new InMemoryTraffic();
  traffic.objectKind = options.kind ?? "VirtualService";
  if (options.listed) traffic.unmanaged = [HEADER_ROUTE];
  const metrics = new SimulatedMetrics(clock, traffic, {
    requestsPerSecond: 100,
    stableErrorRate: 0.0005,
    canaryErrorRate: 0.0005,
    unmanagedToStable: options.unmanagedToStable,
    scrapeLagMs: options.scrapeLagMs,
    seed: 5,
  });
  const log = new EventLog();
  const outcome = await new RolloutEngine(
    defaultEngineSettings(),
    { holder: "run-1", commit: "abc1234def", newRolloutId: "abc1234-1" },
    { traffic, metrics, clock, events: log },
    "VirtualService shop/backend",
  ).run();
  const warnings = log.events.flatMap((e) => (e.type === "warning" ? [e.message] : []));
  return { outcome, warnings };
}

describe("traffic share against the weight", () => {
  it("does not blame the setup for stable's requests on a route the action does not manage", async () => {
    const { outcome, warnings } = await rollout({ unmanagedToStable: 0.2, listed: true });
    expect(outcome.result).toBe("promoted");
    expect(warnings.filter((w) => w.includes("far outside chance"))).toEqual([]);
  });

  it("warns, naming what it saw, when nothing explains the missing share", async () => {
    const { warnings } = await rollout({ unmanagedToStable: 0.2, listed: false });
    const share = warnings.filter((w) => w.includes("far outside chance"));
    // One per stage where the shortfall is clear; at 100 % it is below the weight, not above.
    expect(share.length).toBeGreaterThan(0);
    for (const w of share) {
      expect(w).toMatch(/of the requests both versions served at weight \d+ %/);
      expect(w).toMatch(/is the VirtualService applied to this traffic \(its hosts and gateways\)/);
    }
    expect(share.at(-1)).toMatch(/at weight 100 %, far outside chance \(z = -Infinity\)/);
  });

  it("on an HTTPRoute, says where to look in the HTTPRoute's terms (parentRefs), not a VirtualService's", async () => {
    const { warnings } = await rollout({ unmanagedToStable: 0.2, listed: false, kind: "HTTPRoute" });
    const share = warnings.filter((w) => w.includes("far outside chance"));
    expect(share.length).toBeGreaterThan(0);
    for (const w of share) {
      expect(w).toMatch(
        /is the HTTPRoute attached to this traffic \(its parentRefs Accepted, its hostnames\)/,
      );
      expect(w).not.toMatch(/VirtualService/);
    }
  });

  it("counts the share from settle-time: requests at the previous weight, scraped late, are no alarm", async () => {
    // Prometheus' 15 s scrape: the mark's counters are up to 15 s old, so a stage's first read
    // holds up to 15 s served at the previous weight (at 100 req/s, 1,500 requests).
    const { outcome, warnings } = await rollout({ unmanagedToStable: 0, listed: false, scrapeLagMs: 15_000 });
    expect(outcome.result).toBe("promoted");
    expect(warnings.filter((w) => w.includes("far outside chance"))).toEqual([]);
  });
});
