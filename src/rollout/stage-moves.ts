/**
 * Writes in the run of stages that are not a stage's own weight change: a step back from 100 %
 * and back up again (the last stage's analysis asks for them), and the record that takes an
 * adopted split over, without moving it, while it is judged at its current weights.
 */
import type { RolloutState } from "../mesh/state.ts";
import type { EngineContext } from "./context.ts";
import { guarded } from "./transitions.ts";

/**
 * Moves the routes from `from` to `to` within stage `index`, recorded with why: the same guarded
 * write as a stage's (a person's edit throws PersonEditError and is never overwritten).
 */
export async function stepWrite(
  c: EngineContext,
  state: RolloutState,
  index: number,
  move: { from: number; to: number; why: string },
  saved: Partial<RolloutState>,
): Promise<RolloutState> {
  const { clock, signal } = c.ports;
  const { from, to, why } = move;
  const back = to < from;
  const message = back
    ? `Stepped back from ${from} % to ${to} %: ${why}`
    : `Back to ${to} % after the step back`;
  await c.emit({ type: "warning", at: c.now(), message });
  // The post step learns of the write before it is sent, as for a stage's.
  await c.emit({ type: "moving", at: c.now(), rolloutId: state.rolloutId, stage: index, weight: to });
  const written = await c.ports.traffic.write(
    to,
    guarded(
      {
        holder: c.holder,
        now: () => clock.now(),
        rolloutId: state.rolloutId,
        expectWeight: from,
        targetWeight: to,
      },
      (previous) =>
        c.after(
          previous && previous.rolloutId === state.rolloutId ? previous : state,
          {
            weight: to,
            stageIndex: index,
            status: "progressing",
            lease: { holder: c.holder, expiresAt: c.leaseUntil() },
            ...saved,
          },
          back ? "stepped-back" : "stepped-up",
          message,
        ),
    ),
    signal,
  );
  await c.emit({ type: "weight", at: c.now(), stage: index, weight: to });
  return written;
}

/**
 * Takes an adopted split over (this run's rollout and lease on the VirtualService) and moves no
 * route: it is judged at the weights found before anything raises it.
 */
export async function recordAdopted(
  c: EngineContext,
  state: RolloutState,
  weight: number,
  found: readonly number[],
): Promise<RolloutState> {
  const { clock, signal } = c.ports;
  const reason = `Judging the adopted split at its current weights (${found.join(", ")} %) beside stable before raising it`;
  return c.ports.traffic.record(
    guarded(
      {
        holder: c.holder,
        now: () => clock.now(),
        rolloutId: state.rolloutId,
        expectWeight: weight,
        alsoFound: found,
      },
      (previous, view) =>
        c.after(
          previous && previous.rolloutId === state.rolloutId
            ? previous
            : { ...state, original: state.original.length > 0 ? state.original : view.original },
          { status: "progressing", lease: { holder: c.holder, expiresAt: c.leaseUntil() } },
          "judging",
          reason,
        ),
    ),
    signal,
  );
}
