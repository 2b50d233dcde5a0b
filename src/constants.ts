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

/**
 * Retrying (src/retry.ts). A rollback gets the longest budget: it is the one write that must
 * succeed. Each wait is capped at 2 s so traffic is safe within seconds of an outage's end.
 */
export const ROLLBACK_RETRY_BUDGET_MS = 5 * 60_000;
export const TRAFFIC_RETRY_BUDGET_MS = 2 * 60_000;
export const RETRY_BASE_WAIT_MS = 200;
export const RETRY_MAX_WAIT_MS = 2_000;
/**
 * One Kubernetes API request: a hung API server must not hang the step, and a rollback stuck on a
 * hung request must be retried within seconds (a VirtualService read or patch takes milliseconds).
 */
export const KUBE_REQUEST_TIMEOUT_MS = 4_000;
/** One Prometheus query at most; shorter when the analysis interval is short. */
export const PROMETHEUS_MAX_REQUEST_TIMEOUT_MS = 10_000;
