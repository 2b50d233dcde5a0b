/**
 * A dry run (input `dry-run`): the JSON Patch each stage would send, planned through the traffic
 * port exactly as the writes would be, and nothing written.
 */
import type { EngineContext, EngineOutcome } from "./context.ts";
import type { RolloutState } from "./model/state.ts";
import type { PlannedPatch } from "./ports.ts";

/** The stages from `from` (after a restart's move to 0 when `restartFirst`), planned and reported. */
export async function dryRun(
  context: EngineContext,
  state: RolloutState,
  from: number,
  restartFirst = false,
): Promise<EngineOutcome> {
  const { traffic, signal } = context.ports;
  const plan: Array<{ weight: number; patches: PlannedPatch[] }> = [];
  for (const weight of [...(restartFirst ? [0] : []), ...state.stages.slice(from)]) {
    const patches = await traffic.plan(weight, (previous, view) =>
      context.after(
        previous ?? { ...state, original: view.original },
        { weight, status: "progressing" },
        "dry-run",
      ),
    );
    plan.push({ weight, patches });
  }
  return context.finish({
    result: "unchanged",
    weight: (await traffic.read(signal)).weight,
    reason: `Dry run: ${plan.length} stages planned, nothing written`,
    failed: false,
    state,
    plan,
  });
}
