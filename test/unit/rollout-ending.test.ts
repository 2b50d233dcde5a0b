/** The ending policy: what each stage outcome does under the user's policies. */
import { describe, expect, it } from "vitest";
import { ending, leftBehind, rolledBackByHand } from "../../src/rollout/ending.ts";
import type { RolloutState } from "../../src/rollout/model/state.ts";
import type { TrafficView } from "../../src/rollout/ports.ts";

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

  it("never promotes a canary whose counts point above the limit, however few (on-inconclusive: pause pauses)", () => {
    expect(ending("inconclusive", "above-limit", 100, "why", defaults)?.action).toBe("rollback");
    expect(
      ending("inconclusive", "above-limit", 100, "why", { ...defaults, onInconclusive: "pause" })?.action,
    ).toBe("pause");
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

describe("several VirtualServices: what the post step finishes and a person's rollback of one", () => {
  const part = (
    name: string,
    weights: number[],
    state?: { rolloutId: string; status: string; weight: number },
    managedFields?: Array<{ manager: string; time: string }>,
  ): TrafficView => ({
    weight: weights[0] ?? 0,
    weights,
    original: [],
    unmanaged: [],
    object: {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { namespace: "shop", name, ...(managedFields ? { managedFields } : {}) },
      spec: {},
    } as TrafficView["object"],
    ...(state ? { state: state as unknown as RolloutState } : {}),
  });
  const lockstep = (...parts: TrafficView[]): TrafficView => ({
    ...(parts[0] as TrafficView),
    weights: parts.flatMap((p) => p.weights),
    parts,
  });

  it("names each VirtualService the rollout still holds on the canary, and only those", () => {
    const view = lockstep(
      part("backend", [0], { rolloutId: "r1", status: "rolled-back", weight: 0 }),
      part("gateway", [10], { rolloutId: "r1", status: "progressing", weight: 10 }),
    );
    expect(leftBehind(view, "r1", [10])).toBe("VirtualService shop/gateway (10 % canary)");
    // Another rollout's, or a finished one: nothing of this job's to finish.
    expect(leftBehind(view, "r2", [10])).toBeUndefined();
    const done = lockstep(
      part("backend", [50], { rolloutId: "r1", status: "paused", weight: 50 }),
      part("gateway", [50], { rolloutId: "r1", status: "paused", weight: 50 }),
    );
    expect(leftBehind(done, "r1", [50])).toBeUndefined();
  });

  it("leaves everything when someone else's weights are on any route", () => {
    const view = lockstep(
      part("backend", [0], { rolloutId: "r1", status: "rolled-back", weight: 0 }),
      part("gateway", [30], { rolloutId: "r1", status: "progressing", weight: 10 }),
    );
    expect(leftBehind(view, "r1", [10])).toBeUndefined();
  });

  it("a single VirtualService a person set to 100/0 is theirs, not left behind", () => {
    const one = part("backend", [0], { rolloutId: "r1", status: "progressing", weight: 10 });
    expect(leftBehind(one, "r1", [10])).toBeUndefined();
    expect(
      leftBehind(part("backend", [10], { rolloutId: "r1", status: "progressing", weight: 10 }), "r1", [10]),
    ).toBe("VirtualService shop/backend (10 % canary)");
  });

  it("a person's rollback of some but not all of them is named, with who wrote it", () => {
    const edited = [{ manager: "kubectl-edit", time: "2026-01-01T00:00:00Z" }];
    expect(rolledBackByHand(lockstep(part("backend", [50]), part("gateway", [0], undefined, edited)))).toBe(
      'VirtualService shop/gateway (last written by field manager "kubectl-edit") was',
    );
    expect(rolledBackByHand(lockstep(part("backend", [0]), part("gateway", [0])))).toBeUndefined();
    expect(rolledBackByHand(lockstep(part("backend", [50]), part("gateway", [50])))).toBeUndefined();
    expect(rolledBackByHand(part("backend", [0]))).toBeUndefined();
  });
});
