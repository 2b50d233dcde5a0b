/**
 * The state annotation is a record, not an order (issue 20): a live record that disagrees with the
 * inputs or the routes is refused, a claimed pass or evidence is believed only from this run, a
 * recorded commit is reported on only when something besides the record names it, and no write
 * moves the canary more than one configured stage.
 */
import { describe, expect, it } from "vitest";
import type { RolloutState } from "../../src/rollout/model/state.ts";
import {
  checkRecord,
  moreThanOneStage,
  nextStageAbove,
  type RunFacts,
} from "../../src/rollout/record-check.ts";

const HOLDER = "acme/shop run 7 attempt 1";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

const record = (overrides: Partial<RolloutState> = {}): RolloutState => ({
  schemaVersion: 1,
  rolloutId: "0123456-7",
  commit: COMMIT,
  stages: [10, 50, 100],
  stageIndex: 0,
  weight: 10,
  status: "paused",
  startedAt: "2026-11-20T10:00:00.000Z",
  updatedAt: "2026-11-20T10:05:00.000Z",
  original: [{ index: 0, name: "primary", canaryAdded: true }],
  history: [{ at: "2026-11-20T10:00:00.000Z", weight: 10, event: "paused", holder: HOLDER }],
  ...overrides,
});

const facts = (overrides: Partial<RunFacts> = {}): RunFacts => ({
  command: "promote",
  stages: [10, 50, 100],
  holder: "acme/shop run 9 attempt 1",
  commit: "fedcba9876543210fedcba9876543210fedcba98",
  weights: [10],
  ...overrides,
});

describe("checkRecord", () => {
  it("accepts a record that agrees with the inputs and the routes", () => {
    expect(checkRecord(record(), facts()).refusal).toBeUndefined();
  });

  it("refuses stages the inputs do not give", () => {
    const check = checkRecord(record({ stages: [100], stageIndex: -1, weight: 0 }), facts({ weights: [0] }));
    expect(check.refusal).toMatch(/says stages 100, but this run's stages input is 10,50,100/);
  });

  it("refuses a progressing record whose weight the routes contradict (0 % on the routes, 100 % recorded)", () => {
    const check = checkRecord(
      record({ status: "progressing", stageIndex: 2, weight: 100 }),
      facts({ command: "rollout", weights: [0] }),
    );
    expect(check.refusal).toMatch(/canary is at 100 % \(stage 3\), but the routes carry 0 %/);
  });

  it("accepts a progressing record whose next write reached only some routes", () => {
    const state = record({ status: "progressing", stageIndex: 1, weight: 50 });
    expect(checkRecord(state, facts({ command: "rollout", weights: [10, 50] })).refusal).toBeUndefined();
  });

  it("refuses a progressing record whose weight is not its stage's", () => {
    const check = checkRecord(
      record({ status: "progressing", stageIndex: 0, weight: 100 }),
      facts({ command: "rollout", weights: [100] }),
    );
    expect(check.refusal).toMatch(/says 100 % at stage 1, whose weight is 10 %/);
  });

  it("refuses stage results at weights the stages do not have", () => {
    const result = { stage: 0, weight: 100, decision: "pass" as const, reason: "", at: "", durationMs: 0 };
    expect(checkRecord(record({ stageResults: [result] }), facts()).refusal).toMatch(/stage 1 at 100 %/);
  });

  it("refuses to resume a finalization another run recorded, on a rollout; a person's promote may", () => {
    const finalizing = record({ status: "finalizing", stageIndex: 2, weight: 100 });
    const other = checkRecord(finalizing, facts({ command: "rollout", commit: COMMIT, weights: [100] }));
    expect(other.refusal).toMatch(/not by this run: a record is not proof that the canary passed/);
    expect(checkRecord(finalizing, facts({ weights: [100] })).refusal).toBeUndefined();
    // A re-run (a later attempt of the run that wrote it) resumes it.
    const rerun = checkRecord(
      finalizing,
      facts({ command: "rollout", holder: "acme/shop run 7 attempt 2", weights: [100] }),
    );
    expect(rerun.refusal).toBeUndefined();
    expect(rerun.ownRun).toBe(true);
  });

  it("refuses a finalizing record while the routes do not give the canary all traffic", () => {
    const check = checkRecord(
      record({ status: "finalizing", stageIndex: 2, weight: 100 }),
      facts({ weights: [0] }),
    );
    expect(check.refusal).toMatch(/routes carry 0 %/);
  });

  it("leaves finished records and the commands that move nothing forward alone", () => {
    expect(checkRecord(record({ status: "promoted", stages: [100] }), facts()).refusal).toBeUndefined();
    expect(checkRecord(record({ stages: [100] }), facts({ command: "rollback" })).refusal).toBeUndefined();
    expect(checkRecord(record({ stages: [100] }), facts({ command: "status" })).refusal).toBeUndefined();
  });

  it("attests the recorded commit only when it is the run's or a person named the rollout", () => {
    expect(checkRecord(record(), facts()).commitAttested).toBe(false);
    expect(checkRecord(record(), facts({ commit: COMMIT })).commitAttested).toBe(true);
    expect(checkRecord(record(), facts({ rolloutId: "0123456-7" })).commitAttested).toBe(true);
    // A forged id that does not begin with the forged commit attests nothing.
    const forged = record({ commit: "abcdefabcdefabcdefabcdefabcdefabcdefabcd" });
    expect(checkRecord(forged, facts({ rolloutId: "0123456-7" })).commitAttested).toBe(false);
  });

  it("knows this run's own records (and an earlier attempt's) from another run's", () => {
    expect(checkRecord(record(), facts({ holder: HOLDER })).ownRun).toBe(true);
    expect(checkRecord(record(), facts()).ownRun).toBe(false);
  });
});

describe("one stage per write", () => {
  const stages = [1, 10, 50, 100];
  it("allows the next stage above each route and refuses more", () => {
    expect(nextStageAbove(stages, 0)).toBe(1);
    expect(nextStageAbove(stages, 30)).toBe(50);
    expect(nextStageAbove(stages, 60)).toBe(100);
    expect(moreThanOneStage(stages, [0], 1)).toBeUndefined();
    expect(moreThanOneStage(stages, [0], 100)).toBe("0 % → 100 %");
    expect(moreThanOneStage(stages, [10, 1], 50)).toBe("1 % → 50 %");
    expect(moreThanOneStage(stages, [30], 50)).toBeUndefined();
    // Lowering is always allowed.
    expect(moreThanOneStage(stages, [100], 0)).toBeUndefined();
  });
});
