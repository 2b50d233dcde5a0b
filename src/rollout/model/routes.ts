/**
 * The managed routes as the core sees them: which VirtualService and routes a rollout moves, what
 * each route looked like before the rollout (so a rollback restores it exactly), and the JSON Patch
 * operations a write is made of. The mesh adapter (src/mesh/routes.ts) plans and applies them.
 */

/** One VirtualService the action moves, with the `routes` entries that apply to it. */
export interface VirtualServiceRef {
  readonly namespace: string;
  readonly name: string;
  /** As the user wrote it in `virtual-service` (`name` or `namespace/name`): how `routes` qualifies it. */
  readonly entry: string;
  /** Route names or `#N` positions; empty means the default rule. */
  readonly routes: readonly string[];
}

/** `#3` -> 3: an entry of the `routes` input that selects a route by its position in spec.http. */
export function routePosition(selector: string): number | undefined {
  const position = /^#(0|[1-9][0-9]*)$/.exec(selector);
  return position ? Number(position[1]) : undefined;
}

/** What a route looked like before the rollout, so a rollback can restore it exactly. */
export interface OriginalRoute {
  index: number;
  name?: string;
  canaryAdded: boolean;
  /** The stable destination's weight field before the rollout (absent: undefined). */
  stableWeight?: number;
  canaryWeight?: number;
}

export type PatchOperation =
  | { op: "test" | "add" | "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };
