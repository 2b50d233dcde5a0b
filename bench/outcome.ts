import type { ServiceWorld } from "./world.ts";

/** What one simulated rollout ended with, whichever rule ran it. */
export interface RunOutcome {
  result: "promoted" | "rolled-back" | "paused" | "unfinished";
  /** Why a rollback happened: the analysis failed the canary, could not decide, or anything else. */
  cause?: "fail" | "inconclusive" | "other";
  /** Minutes from the first weight change to the promotion or rollback write (or the pause). */
  minutes: number;
  /** Canary requests and errors users were served from the first weight change to the end. */
  canaryRequests: number;
  canaryErrors: number;
  /**
   * The new version's errors users were served in the first 30 minutes after the rollout started,
   * whatever the ending: after a promotion it serves everything, after a rollback nothing.
   */
  newVersionErrorsFirst30Minutes: number;
}

/** Where every simulated rollout starts, in virtual time. */
export const ROLLOUT_START = Date.UTC(2026, 10, 26, 12, 0, 0);

/** A rule that has not ended after this long is reported as unfinished. */
export const GIVE_UP_MS = 24 * 60 * 60_000;

/**
 * How a baseline rule ends its run at `at`: the world is moved there and set to its final weight
 * (all stable after a rollback, else all canary), and what users were served is read off.
 */
export function ending(world: ServiceWorld) {
  return (result: RunOutcome["result"], at: number, cause?: RunOutcome["cause"]): RunOutcome => {
    world.advanceTo(at);
    world.setWeight(result === "rolled-back" ? 0 : 100);
    return {
      result,
      ...(cause ? { cause } : {}),
      minutes: (at - ROLLOUT_START) / 60_000,
      canaryRequests: world.served.canary.requests,
      canaryErrors: badServed(world),
      newVersionErrorsFirst30Minutes: firstMinutesErrors(world),
    };
  };
}

/** The canary's bad events users were served: its errors, or with `customCounter` its failed orders. */
export function badServed(world: ServiceWorld): number {
  return world.scenario.customCounter ? world.served.canary.slow : world.served.canary.errors;
}

/** The canary's errors served by the 30-minute mark, the world running on at its final weight (read last). */
export function firstMinutesErrors(world: ServiceWorld): number {
  return world.canaryErrorsByFirstMinutesEnd();
}
