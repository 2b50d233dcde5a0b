/** Every fixed name and number of the action in one place (as actions/cache keeps its constants). */

/** The annotation on the VirtualService that holds the rollout state. */
export const STATE_ANNOTATION = "canary.istio-action.dev/state";

/** Istio's default request-duration histogram buckets, in milliseconds (proxy defaults since 1.x). */
export const ISTIO_LATENCY_BUCKETS_MS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
]);

export const COMMANDS = ["rollout", "promote", "rollback", "status", "preview"] as const;
/** `auto`: `waypoint` when preflight finds the canary in ambient mode, else `destination` (src/metrics/istio-queries.ts). */
export const REPORTERS = ["auto", "destination", "source", "waypoint"] as const;
export const INCONCLUSIVE_POLICIES = ["promote", "pause", "rollback"] as const;
export const UNREACHABLE_POLICIES = ["rollback", "hold"] as const;
/** What a rollout does with routes already split between stable and canary (no live rollout recorded). */
export const SPLIT_POLICIES = ["continue", "restart"] as const;
/** After a promotion: copy the canary's pod template onto the stable Deployment, or leave the stable to someone else. */
/**
 * After a promotion: `copy` the canary's pod template onto the stable Deployment (refused before
 * any write when each version is not one Deployment), leave the stable to someone else (`none`),
 * or `auto`, the default: copy where each version is one Deployment, else warn and act as `none`.
 * The default must be a value of its own: GitHub's runner passes every action.yml default as an
 * INPUT_ variable, so a default `copy` could not be told from one the workflow wrote.
 */
export const FINALIZE_POLICIES = ["auto", "copy", "none"] as const;

export const RESULTS = ["promoted", "rolled-back", "paused", "unchanged"] as const;

/** Keys under which the main step leaves state for the post step (core.saveState). */
export const StateKey = {
  isPost: "isPost",
  rolloutInFlight: "rolloutInFlight",
  /** The last weight main moved to, never cleared: the post step then checks the routes even after a clean end. */
  rolloutMoved: "rolloutMoved",
  /** `command: preview` added a preview route: its post step removes it if no rollout began. */
  previewAdded: "previewAdded",
} as const;

export const Output = {
  result: "result",
  canaryWeight: "canary-weight",
  finalized: "finalized",
  report: "report",
  previewHeader: "preview-header",
  previewValue: "preview-value",
  checks: "checks",
} as const;

/**
 * Retrying (src/retry.ts). A rollback gets the longest budget: it is the one write that must
 * succeed. Each wait is capped at 2 s so traffic is safe within seconds of an outage's end.
 */
export const ROLLBACK_RETRY_BUDGET_MS = 5 * 60_000;
export const TRAFFIC_RETRY_BUDGET_MS = 2 * 60_000;
/** How long preflight keeps asking Prometheus when its answers are slow or lost (three tries at most). */
export const PREFLIGHT_METRICS_BUDGET_MS = 15_000;
export const RETRY_BASE_WAIT_MS = 200;
export const RETRY_MAX_WAIT_MS = 2_000;
/**
 * One Kubernetes API request: a hung API server must not hang the step, and a rollback stuck on a
 * hung request must be retried within seconds (a VirtualService read or patch takes milliseconds).
 */
export const KUBE_REQUEST_TIMEOUT_MS = 4_000;
/** One Prometheus query at most; shorter when the analysis interval is short. */
export const PROMETHEUS_MAX_REQUEST_TIMEOUT_MS = 10_000;

/**
 * The longest duration any input may ask for (stage durations, interval, settle-time): a
 * GitHub-hosted job ends after 6 hours. It keeps every timer far below Node's 2^31-1 ms limit.
 */
export const MAX_RUN_DURATION_MS = 6 * 3_600_000;
export const MAX_RUN_DURATION_TEXT = "6h";

/**
 * Request headers the action (or fetch) sets itself on Prometheus requests; prometheus-headers may
 * not override them (lower case, as compared).
 */
export const ACTION_SET_HEADERS: readonly string[] = Object.freeze([
  "accept",
  "accept-encoding",
  "connection",
  "content-length",
  "content-type",
  "expect",
  "host",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Each GitHub API request gives up after this long, so a hung GitHub holds nothing. */
export const GITHUB_REQUEST_TIMEOUT_MS = 10_000;
/**
 * Spacing of GitHub writes, one at a time. Octokit's throttling plugin spaces them 1 s apart by
 * default, GitHub's advice for clients that make many writes; a rollout makes a handful (one
 * comment, a few updates, two statuses), far below the 80 content writes a minute GitHub allows,
 * and a full second per write only delays the final report. A secondary rate limit GitHub does
 * report is still waited out.
 */
export const GITHUB_WRITE_SPACING_MS = 250;
/** How long the end of a step waits for the final report to reach GitHub. */
export const REPORT_FLUSH_TIMEOUT_MS = 15_000;
/**
 * The final report waits out a Retry-After up to this long (GitHub's secondary rate limits ask for
 * 60 s as a rule): every traffic decision is written by then, so waiting costs job time only, and
 * a PR comment left at "In progress" misleads whoever reads it. A longer wait is given up with a
 * warning (the job summary and the outputs have the report).
 */
export const REPORT_FLUSH_MAX_RETRY_AFTER_MS = 120_000;
/** A secondary rate limit's Retry-After up to this long is waited out by Octokit; longer ones wait for a later update. */
export const GITHUB_MAX_INLINE_RETRY_AFTER_S = 5;
/** After a cancel the runner kills the step 7.5 s after SIGINT: the final report gets what is left. */
export const REPORT_FLUSH_ON_CANCEL_MS = 4_000;
/**
 * After the rollout has ended, how long the report waits for GitHub's list of the commits since the
 * last promoted release (asked at the start, so it is usually there long before): after a cancel,
 * not at all.
 */
export const REPORT_COMMITS_WAIT_MS = 5_000;
/** How far back a start of counting looks for each series' latest sample: Prometheus' default lookback. */
export const START_LOOKBACK_MS = 5 * 60_000;
/** The field manager named on every write to the cluster, so `kubectl get --show-managed-fields` says who. */
export const FIELD_MANAGER = "istio-canary-action";
/** kube-controller-manager's default progressDeadlineSeconds for a Deployment that sets none. */
export const DEPLOYMENT_PROGRESS_DEADLINE_DEFAULT_S = 600;
