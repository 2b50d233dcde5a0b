/**
 * `command: promote` with `skip-analysis: true`: the paused rollout goes to 100 % in one guarded
 * write (a person's edit since the pause wins), recorded as promoted without analysis.
 */
import type { EngineContext, EngineOutcome } from "./context.ts";
import type { RolloutState } from "./model/state.ts";
import { guarded } from "./transitions.ts";

export async function promoteUnanalysed(context: EngineContext, state: RolloutState): Promise<EngineOutcome> {
  const last = state.stages.length - 1;
  // The post step learns of the write before it is sent, as for a stage's.
  await context.emit({
    type: "moving",
    at: context.now(),
    rolloutId: state.rolloutId,
    stage: last,
    weight: 100,
  });
  const written = await context.ports.traffic.write(
    100,
    guarded(
      {
        holder: context.holder,
        now: () => context.ports.clock.now(),
        rolloutId: state.rolloutId,
        expectWeight: state.weight,
        targetWeight: 100,
      },
      (previous) =>
        context.after(
          previous ?? state,
          {
            weight: 100,
            stageIndex: last,
            status: "promoted",
            reason: "Promoted without analysis",
            lease: undefined,
          },
          "promoted",
          "promoted without analysis",
        ),
    ),
  );
  await context.emit({ type: "weight", at: context.now(), stage: last, weight: 100 });
  return context.finish({
    result: "promoted",
    weight: 100,
    reason: `Promoted to 100 % by ${context.holder} without analysis`,
    failed: false,
    state: written,
  });
}
