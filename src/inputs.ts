/**
 * The only module that reads the action's inputs (as actions/checkout's input-helper.ts).
 *
 * `getConfig()` reads every input through `core.getInput`, masks the secrets before anything can
 * log them, and hands the raw strings to `parseConfig()`, a pure function that validates all of them
 * and returns a frozen, typed `Config` or throws one `InputError` that lists every bad input with its
 * value and what is allowed. Nothing else in the action touches `core.getInput`.
 */
import * as core from "@actions/core";
import { COMMANDS, INCONCLUSIVE_POLICIES, REPORTERS, UNREACHABLE_POLICIES } from "./constants.ts";
import { type FinalizeConfig, parseFinalize } from "./input-finalize.ts";
import {
  DNS1123_LABEL,
  kubeconfigProblem,
  oneOf,
  parseBoolean,
  parseBoundedDuration,
  parseLatency,
  parsePrometheus,
  parseRate,
  parseSplit,
  parseStages,
  show,
} from "./input-parsers.ts";
import { inputSecrets, kubeconfigSecrets } from "./input-secrets.ts";
import { parseVirtualServices, type VirtualServiceRef } from "./input-virtual-services.ts";
import type { Split } from "./mesh/split.ts";
import { registerSecret } from "./redact.ts";
import type { Command } from "./rollout/command.ts";

export type { FinalizeConfig } from "./input-finalize.ts";

// One PromQL label matcher list: name op "value" [, ...]. Values are double-quoted strings.
const LABEL_MATCHERS =
  /^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"(\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*")*\s*$/;

export type { Command, Split };
export type Reporter = (typeof REPORTERS)[number];
export type InconclusivePolicy = (typeof INCONCLUSIVE_POLICIES)[number];
export type UnreachablePolicy = (typeof UNREACHABLE_POLICIES)[number];
/** What a rollout does with routes already split between stable and canary (no live rollout recorded). */
export const SPLIT_POLICIES = ["continue", "restart"] as const;
export type SplitPolicy = (typeof SPLIT_POLICIES)[number];

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
}

/** The raw input strings by input name, as `core.getInput` returns them (trimmed, "" when unset). */
export type RawInputs = Readonly<Record<string, string>>;

/** Every input the action reads; action.yml declares exactly these (a test checks). */
export const INPUT_NAMES = [
  "command",
  "virtual-service",
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
] as const;

export type InputName = (typeof INPUT_NAMES)[number];

/** Defaults used when an input is empty (action.yml repeats them for users; a test keeps both equal). */
export const INPUT_DEFAULTS: Partial<Record<InputName, string>> = {
  command: "rollout",
  namespace: "default",
  stages: "1,10,50,100",
  "skip-analysis": "false",
  "max-error-rate": "1%",
  "min-requests": "100",
  "false-rollback-budget": "5%",
  "max-ratio-to-stable": "2",
  "min-stage-duration": "1m",
  "max-stage-duration": "10m",
  interval: "15s",
  "settle-time": "20s",
  "on-inconclusive": "promote",
  "on-unreachable": "rollback",
  "on-split": "continue",
  "rollback-on-cancel": "true",
  reporter: "destination",
  "dry-run": "false",
  "istio-root-namespace": "istio-system",
  finalize: "auto",
  "scale-down-canary": "true",
};

export interface InputProblem {
  readonly input: InputName;
  readonly message: string;
}

/** Bad input: names every offending input. `message` is one line, as `core.setFailed` shows it. */
export class InputError extends Error {
  readonly problems: readonly InputProblem[];
  constructor(problems: readonly InputProblem[]) {
    super(problems.map((p) => `Input '${p.input}': ${p.message}`).join("; "));
    this.name = "InputError";
    this.problems = problems;
  }
}

/**
 * Validates every raw input and returns the typed configuration. Pure: no I/O, no logging.
 * Collects every problem before throwing, so a user fixes their workflow in one round.
 */
export function parseConfig(raw: RawInputs): Config {
  const problems: InputProblem[] = [];
  const fail = (input: InputName, message: string): undefined => {
    problems.push({ input, message });
    return undefined;
  };
  const get = (name: InputName): string => (raw[name] ?? "").trim() || INPUT_DEFAULTS[name] || "";

  const command =
    oneOf(COMMANDS, get("command")) ??
    fail("command", `${show(get("command"))} is not allowed; use one of ${COMMANDS.join(", ")}`);

  const namespace = get("namespace");
  if (!DNS1123_LABEL.test(namespace) || namespace.length > 63) {
    fail(
      "namespace",
      `${show(namespace)} is not a namespace name (lowercase letters, digits and '-', at most 63 characters, starting and ending alphanumeric)`,
    );
  }

  const virtualServices = parseVirtualServices(get("virtual-service"), get("routes"), namespace, fail);

  const istioRootNamespace = get("istio-root-namespace");
  if (!DNS1123_LABEL.test(istioRootNamespace) || istioRootNamespace.length > 63) {
    fail(
      "istio-root-namespace",
      `${show(istioRootNamespace)} is not a namespace name (lowercase letters, digits and '-', at most 63 characters, starting and ending alphanumeric)`,
    );
  }

  const split = parseSplit(get, fail);

  const stages = parseStages(get("stages"), fail);

  let pauseAfter: number | undefined;
  const pauseText = get("pause-after");
  if (pauseText) {
    const n = /^\d+%?$/.test(pauseText) ? Number.parseInt(pauseText, 10) : Number.NaN;
    if (!Number.isInteger(n))
      fail("pause-after", `${show(pauseText)} is not a whole number; use one of the stages below 100`);
    else if (stages && (!stages.includes(n) || n === 100)) {
      fail(
        "pause-after",
        `${show(pauseText)} is not one of the stages below 100 (${stages.filter((s) => s < 100).join(", ") || "none"})`,
      );
    } else pauseAfter = n;
  }

  const skipAnalysis =
    parseBoolean(get("skip-analysis")) ??
    fail("skip-analysis", `${show(get("skip-analysis"))} is not a boolean; use true or false`);
  const dryRun =
    parseBoolean(get("dry-run")) ??
    fail("dry-run", `${show(get("dry-run"))} is not a boolean; use true or false`);
  const rollbackOnCancel =
    parseBoolean(get("rollback-on-cancel")) ??
    fail("rollback-on-cancel", `${show(get("rollback-on-cancel"))} is not a boolean; use true or false`);

  const prometheus = parsePrometheus(
    get,
    fail,
    skipAnalysis === true || command === "rollback" || command === "status",
  );

  const maxErrorRate = parseRate(get, fail, "max-error-rate");
  const falseRollbackBudget = parseRate(get, fail, "false-rollback-budget");

  let latencyThresholdMs: number | undefined;
  const latencyText = get("latency-threshold");
  if (latencyText) latencyThresholdMs = parseLatency(latencyText, fail);

  const ratioText = get("max-ratio-to-stable");
  const maxRatioToStable =
    /^\d+(\.\d+)?$/.test(ratioText) && Number(ratioText) >= 1 && Number(ratioText) <= 100
      ? Number(ratioText)
      : fail(
          "max-ratio-to-stable",
          `${show(ratioText)} is not a ratio from 1 to 100 (such as 2: up to twice stable's rate)`,
        );

  const minRequestsText = get("min-requests");
  const minRequests =
    /^\d+$/.test(minRequestsText) && Number(minRequestsText) >= 1 && Number(minRequestsText) <= 1_000_000_000
      ? Number(minRequestsText)
      : fail("min-requests", `${show(minRequestsText)} is not a whole number from 1 to 1000000000`);

  const durationOf = (
    name: "min-stage-duration" | "max-stage-duration" | "interval" | "settle-time",
  ): number | undefined => parseBoundedDuration(name, get(name), fail);
  const minStageDurationMs = durationOf("min-stage-duration");
  const maxStageDurationMs = durationOf("max-stage-duration");
  const intervalMs = durationOf("interval");
  const settleMs = durationOf("settle-time");
  if (minStageDurationMs && maxStageDurationMs && minStageDurationMs > maxStageDurationMs) {
    fail(
      "max-stage-duration",
      `${show(get("max-stage-duration"))} is shorter than min-stage-duration ${show(get("min-stage-duration"))}; it must be at least as long`,
    );
  }
  if (intervalMs && minStageDurationMs && intervalMs > minStageDurationMs) {
    fail(
      "interval",
      `${show(get("interval"))} is longer than min-stage-duration ${show(get("min-stage-duration"))}; it must be at most as long`,
    );
  }

  const onInconclusive =
    oneOf(INCONCLUSIVE_POLICIES, get("on-inconclusive")) ??
    fail(
      "on-inconclusive",
      `${show(get("on-inconclusive"))} is not allowed; use one of ${INCONCLUSIVE_POLICIES.join(", ")}`,
    );
  const onUnreachable =
    oneOf(UNREACHABLE_POLICIES, get("on-unreachable")) ??
    fail(
      "on-unreachable",
      `${show(get("on-unreachable"))} is not allowed; use one of ${UNREACHABLE_POLICIES.join(", ")}`,
    );
  const onSplit =
    oneOf(SPLIT_POLICIES, get("on-split")) ??
    fail("on-split", `${show(get("on-split"))} is not allowed; use one of ${SPLIT_POLICIES.join(", ")}`);
  const reporter =
    oneOf(REPORTERS, get("reporter")) ??
    fail("reporter", `${show(get("reporter"))} is not allowed; use one of ${REPORTERS.join(", ")}`);

  const selectorOf = (name: "canary-selector" | "stable-selector"): string | undefined => {
    const text = get(name);
    if (!text) return undefined;
    const inner = text.replace(/^\{(.*)\}$/s, "$1");
    return LABEL_MATCHERS.test(inner)
      ? inner.trim()
      : fail(
          name,
          `${show(text)} is not a list of PromQL label matchers; use for example destination_version="v2"`,
        );
  };
  const canarySelector = selectorOf("canary-selector");
  const stableSelector = selectorOf("stable-selector");
  if (Boolean(canarySelector) !== Boolean(stableSelector) && (canarySelector || stableSelector)) {
    fail(
      canarySelector ? "stable-selector" : "canary-selector",
      "is required when the other selector is set: give both canary-selector and stable-selector, or neither",
    );
  }

  const kubeconfig = raw.kubeconfig?.trim() ? (raw.kubeconfig as string) : undefined;
  const context = get("context") || undefined;
  if (kubeconfig) {
    const problem = kubeconfigProblem(kubeconfig, context ?? "");
    if (problem) fail(...problem);
  }

  const githubToken = get("github-token");

  let pullRequest: number | undefined;
  const prText = get("pull-request");
  if (prText) {
    pullRequest = /^[1-9]\d{0,9}$/.test(prText)
      ? Number(prText)
      : fail("pull-request", `${show(prText)} is not a pull request number (a positive whole number)`);
  }
  const environment = get("environment") || undefined;
  if (environment && environment.length > 255)
    fail("environment", "is longer than 255 characters, GitHub's limit for an environment name");

  const rolloutId = get("rollout-id") || undefined;
  if (rolloutId && !/^[A-Za-z0-9._:/-]{1,200}$/.test(rolloutId)) {
    fail(
      "rollout-id",
      `${show(rolloutId)} is not a rollout id (letters, digits and . _ : / -, as the report shows it)`,
    );
  }

  const finalize = parseFinalize(get, fail);

  if (problems.length > 0) throw new InputError(problems);

  const config: Config = {
    command: command as Command,
    virtualService: virtualServices[0]?.name as string,
    virtualServices: Object.freeze(virtualServices),
    namespace,
    split: split as Split,
    stages: Object.freeze(stages as number[]),
    pauseAfter,
    skipAnalysis: skipAnalysis as boolean,
    prometheus,
    maxErrorRate: maxErrorRate as number,
    latencyThresholdMs,
    minRequests: minRequests as number,
    falseRollbackBudget: falseRollbackBudget as number,
    minStageDurationMs: minStageDurationMs as number,
    maxStageDurationMs: maxStageDurationMs as number,
    intervalMs: intervalMs as number,
    settleMs: settleMs as number,
    onInconclusive: onInconclusive as InconclusivePolicy,
    onUnreachable: onUnreachable as UnreachablePolicy,
    onSplit: onSplit as SplitPolicy,
    rollbackOnCancel: rollbackOnCancel as boolean,
    maxRatioToStable: maxRatioToStable as number,
    reporter: reporter as Reporter,
    canarySelector,
    stableSelector,
    dryRun: dryRun as boolean,
    kubeconfig,
    context,
    istioRootNamespace,
    githubToken,
    pullRequest,
    environment,
    rolloutId,
    finalize: finalize as FinalizeConfig,
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Reads the inputs from the runner and masks every secret (see input-secrets.ts) before anything
 * else can log, then validates them all.
 */
export function getConfig(): Config {
  const raw: Record<string, string> = {};
  for (const name of INPUT_NAMES) raw[name] = core.getInput(name);
  maskSecrets(raw);
  return parseConfig(raw);
}

/** Registers each secret of the raw inputs with the runner, one by one. */
export function maskSecrets(raw: RawInputs): void {
  for (const secret of inputSecrets(raw)) registerSecret(secret, core.setSecret);
}

/**
 * Masks a kubeconfig read from elsewhere (KUBECONFIG, ~/.kube/config) the way the input is masked:
 * the whole text and each credential in it. Call it before anything can print the file.
 */
export function maskKubeconfig(text: string): void {
  for (const secret of [text, ...kubeconfigSecrets(text)])
    if (secret.trim()) registerSecret(secret, core.setSecret);
}
