/**
 * The only module that reads the action's inputs (as actions/checkout's input-helper.ts).
 *
 * `getConfig()` reads every input through `core.getInput`, masks the secrets before anything can
 * log them, and hands the raw strings to `parseConfig()`, a pure function that validates all of them
 * and returns a frozen, typed `Config` or throws one `InputError` that lists every bad input with its
 * value and what is allowed. Nothing else in the action touches `core.getInput`.
 */
import * as core from "@actions/core";
import {
  COMMANDS,
  INCONCLUSIVE_POLICIES,
  REPORTERS,
  SPLIT_POLICIES,
  UNREACHABLE_POLICIES,
} from "../constants.ts";
import { registerSecret } from "../redact.ts";
import type { Command } from "../rollout/command.ts";
import type { InconclusivePolicy, SplitPolicy, UnreachablePolicy } from "../rollout/model/settings.ts";
import type { Split } from "../rollout/model/split.ts";
import { parseChecks } from "./checks.ts";
import { parseFinalize } from "./finalize.ts";
import {
  DNS1123_LABEL,
  type Fail,
  type Get,
  kubeconfigProblem,
  oneOf,
  parseBoolean,
  parseBoundedDuration,
  parseLatency,
  parseRate,
  parseSplit,
  parseStages,
  show,
} from "./parsers.ts";
import { parsePreview, refusePreviewOfHttpRoute } from "./preview.ts";
import { parsePrometheus } from "./prometheus-input.ts";
import { inputSecrets, kubeconfigSecrets } from "./secrets.ts";
import {
  type Config,
  INPUT_NAMES,
  type InputName,
  type InputProblem,
  type RawInputs,
  type Reporter,
} from "./types.ts";
import { HTTP_ROUTE, parseVirtualServices, VIRTUAL_SERVICE } from "./virtual-services.ts";

// One PromQL label matcher list: name op "value" [, ...]. Values are double-quoted strings.
const LABEL_MATCHERS =
  /^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"(\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*")*\s*$/;

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
  reporter: "auto",
  "dry-run": "false",
  "istio-root-namespace": "istio-system",
  finalize: "auto",
  "scale-down-canary": "true",
  "preview-header": "x-canary",
  preview: "remove",
};

/** Bad input: names every offending input. `message` is one line, as `core.setFailed` shows it. */
export class InputError extends Error {
  readonly problems: readonly InputProblem[];
  constructor(problems: readonly InputProblem[]) {
    super(problems.map((p) => `Input '${p.input}': ${p.message}`).join("; "));
    this.name = "InputError";
    this.problems = problems;
  }
}

/** A parsed group of inputs: a field is undefined when its input failed (a problem was recorded). */
type Parsed<T> = { [K in keyof T]: T[K] | undefined };

/**
 * Validates every raw input and returns the typed configuration. Pure: no I/O, no logging.
 * Collects every problem before throwing, so a user fixes their workflow in one round; the groups
 * below run in the order the problems are listed.
 */
export function parseConfig(raw: RawInputs): Config {
  const problems: InputProblem[] = [];
  const fail: Fail = (input, message) => {
    problems.push({ input, message });
    return undefined;
  };
  const get: Get = (name) => (raw[name] ?? "").trim() || INPUT_DEFAULTS[name] || "";

  const target = parseTarget(get, fail);
  const switches = parseSwitches(get, fail);
  const noAnalysis =
    switches.skipAnalysis === true ||
    target.command === "rollback" ||
    target.command === "status" ||
    target.command === "preview";
  const prometheus = parsePrometheus(get, fail, noAnalysis);
  const analysis = parseAnalysisInputs(get, fail);
  const policies = parsePolicies(get, fail);
  const access = parseAccess(raw, get, fail);
  const finalize = parseFinalize(get, fail);
  const preview = parsePreview(get, fail);
  const checks = parseChecks(get("checks"), (message) => fail("checks", message));

  if (problems.length > 0) throw new InputError(problems);
  // Every field passed its check here: a failed one recorded a problem and threw above.
  const config = {
    ...target,
    virtualService: target.virtualServices[0]?.name,
    ...switches,
    prometheus,
    ...analysis,
    ...policies,
    ...access,
    finalize,
    preview,
    checks,
  } as Config;
  return deepFreeze(config);
}

/** What is rolled out where: the command, the VirtualServices, the split, the stages. */
function parseTarget(get: Get, fail: Fail) {
  const command =
    oneOf(COMMANDS, get("command")) ??
    fail("command", `${show(get("command"))} is not allowed; use one of ${COMMANDS.join(", ")}`);
  const namespace = namespaceInput("namespace", get, fail);
  const routeKind = get("http-route") && !get("virtual-service") ? "HTTPRoute" : "VirtualService";
  if (get("http-route") && get("virtual-service"))
    fail(
      "http-route",
      "cannot be combined with virtual-service: name either the Istio VirtualService (virtual-service) or the Gateway API HTTPRoute (http-route) whose weights the action manages",
    );
  refusePreviewOfHttpRoute(command, routeKind, fail);
  const named = routeKind === "HTTPRoute" ? HTTP_ROUTE : VIRTUAL_SERVICE;
  const virtualServices = Object.freeze(
    parseVirtualServices(get(named.input), get("routes"), namespace, fail, named),
  );
  const istioRootNamespace = namespaceInput("istio-root-namespace", get, fail);
  const noVersions = !["stable-host", "canary-host", "stable-subset", "canary-subset"].some((n) =>
    get(n as InputName),
  );
  const split = (
    routeKind === "HTTPRoute" && noVersions
      ? fail(
          "stable-host",
          "is required with http-route: the stable version's Service (the backendRef the route sends traffic to now), and canary-host the canary's",
        )
      : parseSplit(get, fail)
  ) as Split;
  if (routeKind === "HTTPRoute" && split?.mode === "subset")
    fail(
      "stable-subset",
      "cannot be used with http-route: an HTTPRoute splits traffic between two Services (its backendRefs), not DestinationRule subsets; set stable-host and canary-host to the stable and canary Services",
    );
  const stages = parseStages(get("stages"), fail, routeKind === "HTTPRoute");
  const pauseAfter = parsePauseAfter(get, fail, stages);
  return {
    command: command as Command,
    namespace,
    routeKind,
    virtualServices,
    istioRootNamespace,
    split,
    stages: Object.freeze(stages as number[]),
    pauseAfter,
  };
}

function namespaceInput(name: "namespace" | "istio-root-namespace", get: Get, fail: Fail): string {
  const value = get(name);
  if (!DNS1123_LABEL.test(value) || value.length > 63) {
    fail(
      name,
      `${show(value)} is not a namespace name (lowercase letters, digits and '-', at most 63 characters, starting and ending alphanumeric)`,
    );
  }
  return value;
}

function parsePauseAfter(get: Get, fail: Fail, stages: readonly number[] | undefined): number | undefined {
  const pauseText = get("pause-after");
  if (!pauseText) return undefined;
  const n = /^\d+(\.\d+)?%?$/.test(pauseText) ? Number.parseFloat(pauseText) : Number.NaN;
  if (Number.isNaN(n))
    return fail("pause-after", `${show(pauseText)} is not a number; use one of the stages below 100`);
  if (stages && (!stages.includes(n) || n === 100)) {
    return fail(
      "pause-after",
      `${show(pauseText)} is not one of the stages below 100 (${stages.filter((s) => s < 100).join(", ") || "none"})`,
    );
  }
  return n;
}

function parseSwitches(
  get: Get,
  fail: Fail,
): Parsed<Pick<Config, "skipAnalysis" | "dryRun" | "rollbackOnCancel">> {
  const flag = (name: "skip-analysis" | "dry-run" | "rollback-on-cancel"): boolean | undefined =>
    parseBoolean(get(name)) ?? fail(name, `${show(get(name))} is not a boolean; use true or false`);
  return {
    skipAnalysis: flag("skip-analysis"),
    dryRun: flag("dry-run"),
    rollbackOnCancel: flag("rollback-on-cancel"),
  };
}

type AnalysisInputs = Pick<
  Config,
  | "maxErrorRate"
  | "falseRollbackBudget"
  | "latencyThresholdMs"
  | "maxRatioToStable"
  | "minRequests"
  | "minStageDurationMs"
  | "maxStageDurationMs"
  | "intervalMs"
  | "settleMs"
>;

/** The limits and the timing of the analysis. */
function parseAnalysisInputs(get: Get, fail: Fail): Parsed<AnalysisInputs> {
  const maxErrorRate = parseRate(get, fail, "max-error-rate");
  const falseRollbackBudget = parseRate(get, fail, "false-rollback-budget");
  const latencyText = get("latency-threshold");
  const latencyThresholdMs = latencyText ? parseLatency(latencyText, fail) : undefined;

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

  return {
    maxErrorRate,
    falseRollbackBudget,
    latencyThresholdMs,
    maxRatioToStable,
    minRequests,
    ...parseTiming(get, fail),
  };
}

/** The stage durations, the interval and the settle time, and how they must relate. */
function parseTiming(
  get: Get,
  fail: Fail,
): Parsed<Pick<Config, "minStageDurationMs" | "maxStageDurationMs" | "intervalMs" | "settleMs">> {
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
  return { minStageDurationMs, maxStageDurationMs, intervalMs, settleMs };
}

type PolicyInputs = Pick<
  Config,
  "onInconclusive" | "onUnreachable" | "onSplit" | "reporter" | "canarySelector" | "stableSelector"
>;

/** What to do when the analysis cannot decide, and which metrics name each version. */
function parsePolicies(get: Get, fail: Fail): Parsed<PolicyInputs> {
  const choice = <T extends string>(name: InputName, allowed: readonly T[]): T | undefined =>
    oneOf(allowed, get(name)) ??
    fail(name, `${show(get(name))} is not allowed; use one of ${allowed.join(", ")}`);
  const onInconclusive: InconclusivePolicy | undefined = choice("on-inconclusive", INCONCLUSIVE_POLICIES);
  const onUnreachable: UnreachablePolicy | undefined = choice("on-unreachable", UNREACHABLE_POLICIES);
  const onSplit: SplitPolicy | undefined = choice("on-split", SPLIT_POLICIES);
  const reporter: Reporter | undefined = choice("reporter", REPORTERS);

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
  return { onInconclusive, onUnreachable, onSplit, reporter, canarySelector, stableSelector };
}

type AccessInputs = Pick<
  Config,
  "kubeconfig" | "context" | "githubToken" | "pullRequest" | "environment" | "rolloutId"
>;

/** How the action reaches the cluster and GitHub, and what it reports on. */
function parseAccess(raw: RawInputs, get: Get, fail: Fail): Parsed<AccessInputs> {
  const kubeconfig = raw.kubeconfig?.trim() ? (raw.kubeconfig as string) : undefined;
  const context = get("context") || undefined;
  if (kubeconfig) {
    const problem = kubeconfigProblem(kubeconfig, context ?? "");
    if (problem) fail(...problem);
  }
  const prText = get("pull-request");
  const pullRequest = !prText
    ? undefined
    : /^[1-9]\d{0,9}$/.test(prText)
      ? Number(prText)
      : fail("pull-request", `${show(prText)} is not a pull request number (a positive whole number)`);
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
  return { kubeconfig, context, githubToken: get("github-token"), pullRequest, environment, rolloutId };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Reads the inputs from the runner and masks every secret (see ./secrets.ts) before anything
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
