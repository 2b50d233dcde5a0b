/**
 * The inputs' types, at the bottom of src/inputs/: every input's name, the raw strings, and the
 * validated Config that parseConfig (./config.ts) returns and src/action.ts turns into each layer's
 * settings.
 */
import type { REPORTERS } from "../constants.ts";
import type { Command } from "../rollout/command.ts";
import type { VirtualServiceRef } from "../rollout/model/routes.ts";
import type {
  FinalizeConfig,
  InconclusivePolicy,
  PreviewConfig,
  SplitPolicy,
  UnreachablePolicy,
} from "../rollout/model/settings.ts";
import type { Split } from "../rollout/model/split.ts";

export type Reporter = (typeof REPORTERS)[number];

export interface PrometheusConfig {
  /** The URL to call, with whatever credentials it carries (masked). Never show it: use displayUrl. */
  readonly url: string;
  /** The URL as messages and reports show it: scheme://host[:port] and the non-secret path (redact.ts). */
  readonly displayUrl: string;
  /** Extra request headers (values are secrets and were masked). */
  readonly headers: Readonly<Record<string, string>>;
}

export interface Config {
  readonly command: Command;
  /** The primary VirtualService's name: the first of `virtualServices`, which reports name. */
  readonly virtualService: string;
  /**
   * Every VirtualService moved in lockstep (primary first), each with its managed http routes by
   * name or `#N` (position in spec.http); no routes means every route without match whose only
   * destination is stable.
   */
  readonly virtualServices: readonly VirtualServiceRef[];
  /**
   * What `virtualServices` name: Istio VirtualServices (the `virtual-service` input) or Gateway API
   * HTTPRoutes (`http-route`), whose managed rules are selected the same way by `routes`.
   */
  readonly routeKind: "VirtualService" | "HTTPRoute";
  /** The namespace of the Services and pods, and of a VirtualService given without one. */
  readonly namespace: string;
  readonly split: Split;
  readonly stages: readonly number[];
  readonly pauseAfter?: number;
  readonly skipAnalysis: boolean;
  readonly prometheus?: PrometheusConfig;
  readonly maxErrorRate: number;
  readonly latencyThresholdMs?: number;
  readonly minRequests: number;
  /** How much worse than stable's rate (a ratio) the canary may be before it is rolled back. */
  readonly maxRatioToStable: number;
  readonly falseRollbackBudget: number;
  readonly minStageDurationMs: number;
  readonly maxStageDurationMs: number;
  readonly intervalMs: number;
  /** After a weight change, wait this long (proxy config propagation plus one scrape) before counting. */
  readonly settleMs: number;
  readonly onInconclusive: InconclusivePolicy;
  readonly onUnreachable: UnreachablePolicy;
  /** A split in progress: continue from the next stage above the canary's weight, or restart from stage 1. */
  readonly onSplit: SplitPolicy;
  readonly rollbackOnCancel: boolean;
  readonly reporter: Reporter;
  readonly canarySelector?: string;
  readonly stableSelector?: string;
  readonly dryRun: boolean;
  readonly kubeconfig?: string;
  readonly context?: string;
  /** meshConfig.rootNamespace: the last namespace Istio looks for a DestinationRule in. */
  readonly istioRootNamespace: string;
  readonly githubToken: string;
  readonly pullRequest?: number;
  readonly environment?: string;
  /** With promote or rollback: act only on this rollout. */
  readonly rolloutId?: string;
  readonly finalize: FinalizeConfig;
  /** `command: preview`'s header and value, and whether a rollout keeps the preview route (issue 23). */
  readonly preview: PreviewConfig;
  /** checks: custom Prometheus checks judged beside the built-in signals (issue 23). */
  readonly checks: readonly CustomCheckDefinition[];
}

/**
 * One custom check of the `checks` input (src/inputs/checks.ts). Queries keep their placeholders
 * (`{{ version }}`, `{{ selector }}`), which src/checks/ fills in per version.
 */
export type CustomCheckDefinition =
  | {
      readonly name: string;
      readonly kind: "counter";
      readonly mode: "fail" | "report";
      /** Series selectors of counters: the bad events and all events. */
      readonly bad: string;
      readonly total: string;
      /** The limit on bad / total. */
      readonly maxRate: number;
      /** Unset: no test against stable. */
      readonly maxRatioToStable?: number;
    }
  | {
      readonly name: string;
      readonly kind: "threshold";
      readonly mode: "fail" | "report";
      /** Any PromQL that returns one series per version. */
      readonly query: string;
      readonly below?: number;
      readonly above?: number;
      /** Consecutive reads in breach that fail the check. */
      readonly breaches: number;
    };

/** The raw input strings by input name, as `core.getInput` returns them (trimmed, "" when unset). */
export type RawInputs = Readonly<Record<string, string>>;

/** Every input the action reads; action.yml declares exactly these (a test checks). */
export const INPUT_NAMES = [
  "command",
  "virtual-service",
  "http-route",
  "namespace",
  "stable-subset",
  "canary-subset",
  "stable-host",
  "canary-host",
  "routes",
  "stages",
  "pause-after",
  "prometheus-url",
  "prometheus-headers",
  "skip-analysis",
  "max-error-rate",
  "latency-threshold",
  "min-requests",
  "false-rollback-budget",
  "max-ratio-to-stable",
  "min-stage-duration",
  "max-stage-duration",
  "interval",
  "settle-time",
  "on-inconclusive",
  "on-unreachable",
  "on-split",
  "rollback-on-cancel",
  "reporter",
  "canary-selector",
  "stable-selector",
  "dry-run",
  "kubeconfig",
  "context",
  "istio-root-namespace",
  "github-token",
  "pull-request",
  "environment",
  "rollout-id",
  "finalize",
  "finalize-timeout",
  "scale-down-canary",
  "canary-replicas",
  "stable-deployment",
  "canary-deployment",
  "preview-header",
  "preview-value",
  "preview",
  "checks",
] as const;

export type InputName = (typeof INPUT_NAMES)[number];

export interface InputProblem {
  readonly input: InputName;
  readonly message: string;
}
