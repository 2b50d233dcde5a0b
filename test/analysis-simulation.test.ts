/**
 * Seeded rollout simulations (pure, fast): the false-rollback rate stays within its budget, and a
 * bad canary is caught within 1.3× Wald's SPRT average sample number.
 */
import { describe, expect, it } from "vitest";
import { REFERENCE as base, simulateMany, waldAsn } from "./support/analysis-sim.ts";

describe("rollout simulations at 100 req/s, stages 1/10/50/100", () => {
  it("rolls back at most 5 % of 2,000 healthy rollouts (both versions at 0.5 % errors)", () => {
    const s = simulateMany({ ...base, canaryErrorRate: 0.005 }, 2000, 20261126);
    console.log(
      `healthy: ${s.failed}/${s.runs} false rollbacks (${((100 * s.failed) / s.runs).toFixed(2)} %), ${s.inconclusive} inconclusive, ${s.meanMinutes.toFixed(1)} min a rollout`,
    );
    expect(s.failed / s.runs).toBeLessThanOrEqual(0.05);
    expect(s.promoted + s.failed + s.inconclusive).toBe(2000);
    expect(s.promoted / s.runs).toBeGreaterThan(0.9);
  });

  it("catches a canary at 5 % errors within 1.3× the SPRT average sample number", () => {
    const asn = waldAsn(0.05, 0.005, 0.05, 0.05, 0.05, 20_000, 7);
    expect(asn).toBeGreaterThan(45);
    expect(asn).toBeLessThan(53);
    const s = simulateMany({ ...base, canaryErrorRate: 0.05 }, 2000, 20261127);
    console.log(
      `bad canary: caught in ${s.failed}/${s.runs}; mean ${s.meanCanaryRequestsBeforeFail.toFixed(1)} canary requests (${s.meanCanaryErrorsBeforeFail.toFixed(2)} errors) before fail; Wald ASN ${asn.toFixed(1)}`,
    );
    expect(s.failed).toBe(2000);
    expect(s.meanCanaryRequestsBeforeFail).toBeLessThanOrEqual(1.3 * asn);
  });
});
