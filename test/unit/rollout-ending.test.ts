/** The ending policy: what each stage outcome does under the user's policies. */
import { describe, expect, it } from "vitest";
import { ending } from "../../src/rollout/ending.ts";

const defaults = { onInconclusive: "promote", onUnreachable: "rollback", rollbackOnCancel: true } as const;

describe("ending policy", () => {
  it("rolls back proven harm whatever the policies say", () => {
    for (const onInconclusive of ["promote", "pause", "rollback"] as const)
      expect(ending("fail", "harm-limit", 10, "why", { ...defaults, onInconclusive })?.action).toBe(
        "rollback",
      );
  });

  it("too little traffic at the last stage follows on-inconclusive; promote goes on", () => {
    expect(ending("inconclusive", "max-duration", 100, "why", defaults)).toBeUndefined();
    expect(
      ending("inconclusive", "max-duration", 100, "why", { ...defaults, onInconclusive: "pause" }),
    ).toMatchObject({ action: "pause", failed: false });
    expect(
      ending("inconclusive", "max-duration", 100, "why", { ...defaults, onInconclusive: "rollback" }),
    ).toMatchObject({ action: "rollback", failed: true });
  });

  it("never promotes a canary near the limit over plenty of requests", () => {
    expect(ending("inconclusive", "near-limit", 100, "why", defaults)?.action).toBe("rollback");
  });

  it("never promotes a canary that got no traffic while stable did", () => {
    expect(ending("inconclusive", "no-canary-traffic", 10, "why", defaults)?.action).toBe("rollback");
    expect(
      ending("inconclusive", "no-canary-traffic", 10, "why", { ...defaults, onInconclusive: "pause" })
        ?.action,
    ).toBe("pause");
  });

  it("missing, partial or unreadable metrics follow on-unreachable, not on-inconclusive", () => {
    for (const rule of ["metrics-error", "partial-data", "no-series"] as const) {
      expect(ending("inconclusive", rule, 10, "why", defaults)?.action).toBe("rollback");
      expect(ending("inconclusive", rule, 10, "why", { ...defaults, onUnreachable: "hold" })?.action).toBe(
        "pause",
      );
    }
  });

  it("a cancel rolls back, or with rollback-on-cancel false leaves traffic and writes nothing; a person's edit halts", () => {
    expect(ending("aborted", undefined, 10, "why", defaults)?.action).toBe("rollback");
    expect(ending("aborted", undefined, 10, "why", { ...defaults, rollbackOnCancel: false })?.action).toBe(
      "leave",
    );
    expect(ending("halted", undefined, 10, "why", defaults)).toMatchObject({
      action: "halted",
      failed: true,
    });
  });
});
