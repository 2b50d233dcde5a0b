/** Every fixed name and number of the action in one place (as actions/cache keeps its constants). */

/** The annotation on the VirtualService that holds the rollout state. */
export const STATE_ANNOTATION = "canary.istio-action.dev/state";

/** Istio's default request-duration histogram buckets, in milliseconds (proxy defaults since 1.x). */
export const ISTIO_LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
]);

export const COMMANDS = ["rollout", "promote", "rollback", "status"] as const;
export const REPORTERS = ["destination", "source", "waypoint"] as const;
export const INCONCLUSIVE_POLICIES = ["promote", "pause", "rollback"] as const;
export const UNREACHABLE_POLICIES = ["rollback", "hold"] as const;

export const RESULTS = ["promoted", "rolled-back", "paused", "unchanged"] as const;

/** Keys under which the main step leaves state for the post step (core.saveState). */
export const StateKey = {
  isPost: "isPost",
  rolloutInFlight: "rolloutInFlight",
} as const;

export const Output = {
  result: "result",
  canaryWeight: "canary-weight",
  report: "report",
} as const;
