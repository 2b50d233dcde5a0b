/**
 * How the rollout's recorded state changes with each write, and the guards every write runs with
 * the state and routes it finds (they run again on every retry, inside the traffic port): another
 * live run's lease, a rollout ended by someone else, and weights someone else wrote.
 */
import { LeaseHeldError, leaseBlocks, type RolloutState } from "./model/state.ts";
import { describeObject } from "./model/virtual-service.ts";
import type { NextState, TrafficView } from "./ports.ts";
import { moreThanOneStage } from "./record-check.ts";

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
  /**
   * The routes as found before this run's first write to a split it adopts or restarts: each
   * managed route of each VirtualService must still carry the weight found on it, or
   * `targetWeight` (this write, already applied). Any other value there is someone's edit.
   */
  found?: TrafficView;
  /** A rollback requested by a person overrides leases. */
  override?: boolean;
  /**
   * The configured stages: a write that would raise any route's canary weight past the next stage
   * above it is refused, whatever a record said (it never moves the canary more than one stage).
   */
  stages?: readonly number[];
}

/** Someone else's edit: a managed route at a weight this run did not write (or none left). */
export function weightsOtherThan(view: TrafficView, allowed: readonly number[]): boolean {
  return view.weights.length === 0 || view.weights.some((w) => !allowed.includes(w));
}

/** ` (last written by field manager "kubectl-edit")`, from the object's managedFields; "" when unknown. */
export function lastWriter(vs: TrafficView["object"]): string {
  const fields = vs.metadata.managedFields as Array<{ manager?: string; time?: string }> | undefined;
  const last = [...(fields ?? [])].sort((a, b) => (a.time ?? "").localeCompare(b.time ?? "")).at(-1);
  return last?.manager ? ` (last written by field manager "${last.manager}")` : "";
}

export function describeEdit(view: TrafficView, weight: number | readonly number[]): string {
  const now = view.weights.length ? `${view.weights.join(", ")} %` : "no managed route to the canary";
  const from = typeof weight === "number" ? weight : weight.join(", ");
  return `someone else changed the canary's weight from ${from} % to ${now}${lastWriter(view.object)}; the action stopped where they left it and wrote no weights after it`;
}

/** `found`'s own view of the VirtualService `view` shows (found itself for a single one). */
function foundFor(found: TrafficView, view: TrafficView): TrafficView | undefined {
  const { namespace, name } = view.object.metadata;
  return (found.parts ?? [found]).find(
    (p) => p.object.metadata.namespace === namespace && p.object.metadata.name === name,
  );
}

/** Whether any managed route of `view` carries neither the weight found on it nor `target`. */
function movedSince(found: TrafficView, view: TrafficView, target: number | undefined): number[] | undefined {
  const before = foundFor(found, view)?.weights ?? [];
  const same =
    view.weights.length === before.length && view.weights.every((w, i) => w === before[i] || w === target);
  return same ? undefined : before;
}

export function guarded(guard: Guard, change: NextState): NextState {
  return (previous: RolloutState | undefined, view: TrafficView): RolloutState => {
    if (!guard.override) {
      const lease = leaseBlocks(previous, guard.holder, guard.now());
      if (lease) throw new LeaseHeldError(describeObject(view.object), lease);
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
    if (guard.found) {
      const before = movedSince(guard.found, view, guard.targetWeight);
      if (before) throw new PersonEditError(describeEdit(view, before), view);
    } else if (guard.expectWeight !== undefined) {
      const allowed = [guard.expectWeight, guard.targetWeight ?? guard.expectWeight];
      if (weightsOtherThan(view, allowed))
        throw new PersonEditError(describeEdit(view, guard.expectWeight), view);
    }
    if (guard.stages && guard.targetWeight !== undefined) {
      const jump = moreThanOneStage(guard.stages, view.weights, guard.targetWeight);
      if (jump)
        throw new CommandError(
          `refused to move the canary ${jump} in one write: a write never moves it more than one of the stages ${guard.stages.join(", ")}; nothing was changed`,
        );
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
