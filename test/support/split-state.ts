/** Shared by the adopt-split tests: a finished rollout's recorded state, and the engine's warnings. */
import type { OriginalRoute } from "../../src/rollout/model/routes.ts";
import type { RolloutState } from "../../src/rollout/model/state.ts";
import type { EventLog } from "./fake-ports.ts";

export const warnings = (log: EventLog) =>
  log.events.flatMap((e) => (e.type === "warning" ? [e.message] : []));

/** A finished rollout's state, as an earlier run (or the buggy rollback of finding 1) left it. */
export function finishedState(status: "promoted" | "rolled-back", weight: number, original: OriginalRoute[]) {
  return {
    schemaVersion: 1,
    rolloutId: "old-1",
    commit: "0ld0ld0ld",
    stages: [1, 10, 50, 100],
    stageIndex: 3,
    weight,
    status,
    startedAt: "2026-11-20T10:00:00.000Z",
    updatedAt: "2026-11-20T11:00:00.000Z",
    original,
    history: [],
  } satisfies RolloutState;
}
