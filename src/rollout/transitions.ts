/**
 * How the rollout's recorded state changes with each write, and the guards every write runs with
 * the state and routes it finds (they run again on every retry, inside the traffic port): another
 * live run's lease, a rollout ended by someone else, and weights someone else wrote.
 */
import { LeaseHeldError, leaseBlocks, type RolloutState } from "./model/state.ts";
import type { NextState, TrafficView } from "./ports.ts";

export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CommandError";
  }
}

/** Someone else changed the managed weights: the action stops where they left it. */
export class PersonEditError extends CommandError {
  readonly view: TrafficView;
  constructor(message: string, view: TrafficView) {
    super(message);
    this.name = "PersonEditError";
    this.view = view;
  }
}

export interface Guard {
  holder: string;
  now: () => Date;
  /** The rollout this run is in: refuse when someone else ended it. */
  rolloutId?: string;
  /** The weights this run last wrote (or found): anything else on the routes is someone's edit. */
  expectWeight?: number;
  /** The weight being written: finding it already there is our own write that went unanswered. */
  targetWeight?: number;
  /** Further weights found on the routes before this run's first write (a split it adopted). */
  alsoFound?: readonly number[];
  /** A rollback requested by a person overrides leases. */
  override?: boolean;
}

/** Someone else's edit: a managed route at a weight this run did not write (or none left). */
export function weightsOtherThan(view: TrafficView, allowed: readonly number[]): boolean {
  return view.weights.length === 0 || view.weights.some((w) => !allowed.includes(w));
}

export function describeEdit(view: TrafficView, weight: number): string {
  const fields = view.virtualService.metadata.managedFields as
    | Array<{ manager?: string; time?: string }>
    | undefined;
  const last = [...(fields ?? [])].sort((a, b) => (a.time ?? "").localeCompare(b.time ?? "")).at(-1);
  const who = last?.manager ? ` (last written by field manager "${last.manager}")` : "";
  const now = view.weights.length ? `${view.weights.join(", ")} %` : "no managed route to the canary";
  return `someone else changed the canary's weight from ${weight} % to ${now}${who}; the action stopped where they left it and wrote no weights after it`;
}

export function guarded(guard: Guard, change: NextState): NextState {
  return (previous: RolloutState | undefined, view: TrafficView): RolloutState => {
    if (!guard.override) {
      const lease = leaseBlocks(previous, guard.holder, guard.now());
      if (lease)
        throw new LeaseHeldError(
          `VirtualService ${view.virtualService.metadata.namespace}/${view.virtualService.metadata.name}`,
          lease,
        );
      if (
        guard.rolloutId &&
        previous?.rolloutId === guard.rolloutId &&
        (previous.status === "rolled-back" || previous.status === "promoted")
      ) {
        throw new CommandError(
          `rollout ${guard.rolloutId} was ${previous.status} by ${previous.history.at(-1)?.holder ?? "another run"} while this run was in it; stopping`,
        );
      }
    }
    if (guard.expectWeight !== undefined) {
      const allowed = [
        guard.expectWeight,
        guard.targetWeight ?? guard.expectWeight,
        ...(guard.alsoFound ?? []),
      ];
      if (weightsOtherThan(view, allowed))
        throw new PersonEditError(describeEdit(view, guard.expectWeight), view);
    }
    return change(previous, view);
  };
}

export interface Recorder {
  holder: string;
  now: () => string;
}

/** The state after an event, with the event in its history. */
export function stateAfter(
  r: Recorder,
  previous: RolloutState,
  patch: Partial<RolloutState>,
  event: string,
  reason?: string,
): RolloutState {
  const weight = patch.weight ?? previous.weight;
  return {
    ...previous,
    ...patch,
    updatedAt: r.now(),
    history: [
      ...previous.history,
      { at: r.now(), weight, event, ...(reason ? { reason } : {}), holder: r.holder },
    ],
  };
}
