/**
 * The state annotation as a person or another tool may leave it: anything this action did not
 * write is refused with a message that names the field and what was expected there, and a
 * rollback gets the problem as text instead of an exception.
 */
import { describe, expect, it } from "vitest";
import { registerSecret } from "../../src/redact.ts";
import { parseState, type RolloutState, readState, serializeState } from "../../src/rollout/model/state.ts";

const WHERE = "VirtualService shop/backend";

const written: RolloutState = {
  schemaVersion: 1,
  rolloutId: "0123456-7",
  commit: "0123456789abcdef",
  stages: [10, 50, 100],
  stageIndex: 0,
  weight: 10,
  status: "paused",
  startedAt: "2026-11-20T10:00:00.000Z",
  updatedAt: "2026-11-20T10:05:00.000Z",
  lease: { holder: "acme/shop run 7 attempt 1", expiresAt: "2026-11-20T10:15:00.000Z" },
  original: [{ index: 0, name: "primary", canaryAdded: true }],
  history: [{ at: "2026-11-20T10:00:00.000Z", weight: 10, event: "weight" }],
  stageResults: [
    {
      stage: 0,
      weight: 10,
      decision: "pass",
      reason: "no errors in 600 requests",
      at: "2026-11-20T10:05:00.000Z",
      durationMs: 300_000,
      canary: { requests: 600, errors: 0 },
    },
  ],
};

/** The annotation text with `edit` applied to what the action wrote. */
const edited = (edit: (state: Record<string, unknown>) => void): string => {
  const state = structuredClone(written) as unknown as Record<string, unknown>;
  edit(state);
  return JSON.stringify(state);
};

describe("the state annotation", () => {
  it("reads back what the action wrote", () => {
    expect(parseState(serializeState(written), WHERE)).toEqual(written);
  });

  it.each([
    ["a weight written as text", (s: Record<string, unknown>) => (s.weight = "10"), /\(weight: .*number/],
    [
      "a weight above 100 in the history",
      (s: Record<string, unknown>) => ((s.history as Array<{ weight: number }>)[0]!.weight = 120),
      /\(history\.0\.weight: .*<=100.*120/,
    ],
    [
      "an unknown status",
      (s: Record<string, unknown>) => (s.status = "done"),
      /\(status: .*"paused".*"done"/,
    ],
    [
      "a newer schema",
      (s: Record<string, unknown>) => (s.schemaVersion = 2),
      /\(schemaVersion: .*Expected 1 .*2\)/,
    ],
    ["a missing rollout id", (s: Record<string, unknown>) => delete s.rolloutId, /\(rolloutId: /],
    [
      "a lease without its expiry",
      (s: Record<string, unknown>) => delete (s.lease as Record<string, unknown>).expiresAt,
      /\(lease\.expiresAt: /,
    ],
    ["no stages", (s: Record<string, unknown>) => (s.stages = []), /\(stages: .*>=1/],
  ])("refuses %s, naming the field and what was expected", (_, edit, message) => {
    const text = edited(edit);
    expect(() => parseState(text, WHERE)).toThrow(message);
    expect(() => parseState(text, WHERE)).toThrow(
      /^the rollout state annotation on VirtualService shop\/backend is not one this action wrote \(.*\); remove it or run command: rollback$/,
    );
  });

  it("refuses a value that is not an object, at its root", () => {
    expect(() => parseState('"paused"', WHERE)).toThrow(/\(root: .*object.*"paused"\)/i);
  });

  it("gives a rollback the problem as text: not JSON, or not this action's", () => {
    expect(readState("{not json", WHERE)).toEqual({
      problem: `the rollout state annotation on ${WHERE} is not JSON; remove it or run command: rollback`,
    });
    expect(
      readState(
        edited((s) => (s.weight = -5)),
        WHERE,
      ).problem,
    ).toMatch(/\(weight: /);
    expect(readState(undefined, WHERE)).toEqual({ state: undefined });
  });
});

describe("no secret in the annotation", () => {
  it("takes every registered secret out of the reasons, and leaves the identifiers as they are", () => {
    const token = "glc_token0123456789abcdef";
    registerSecret(token, () => {});
    // A secret that happens to occur inside the commit's hex must not change the commit.
    registerSecret("89ab", () => {});
    const echoed = `Prometheus answered 401: token ${token} is invalid`;
    const text = serializeState({
      ...written,
      reason: echoed,
      finalizeProblem: echoed,
      history: [{ at: written.startedAt, weight: 10, event: "rolled-back", reason: echoed }],
      stageResults: [
        { ...(written.stageResults?.[0] as NonNullable<RolloutState["stageResults"]>[0]), reason: echoed },
      ],
    });
    expect(text).not.toContain(token);
    expect(text.match(/\*\*\*/g)).toHaveLength(4);
    expect(parseState(text, WHERE)?.commit).toBe(written.commit);
  });
});
