/**
 * The only module that reads the action's inputs (as actions/checkout's input-helper.ts).
 *
 * `getConfig()` reads every input through `core.getInput`, masks the secrets before anything can
 * log them, and hands the raw strings to `parseConfig()`, a pure function that validates all of them
 * and returns a frozen, typed `Config` or throws one `InputError` that lists every bad input with its
 * value and what is allowed. Nothing else in the action touches `core.getInput`.
 */
import * as core from "@actions/core";
import { parse as parseYaml } from "yaml";
import {
  COMMANDS,
  INCONCLUSIVE_POLICIES,
  ISTIO_LATENCY_BUCKETS_MS,
  REPORTERS,
  UNREACHABLE_POLICIES,
} from "./constants.ts";

export type Command = (typeof COMMANDS)[number];
export type Reporter = (typeof REPORTERS)[number];
export type InconclusivePolicy = (typeof INCONCLUSIVE_POLICIES)[number];
export type UnreachablePolicy = (typeof UNREACHABLE_POLICIES)[number];

/** How traffic is split: two subsets of one host, or two hosts (Services). */
export type Split =
  | {
      readonly mode: "subset";
      readonly stableSubset: string;
      readonly canarySubset: string;
      readonly host?: string;
    }
  | { readonly mode: "host"; readonly stableHost: string; readonly canaryHost: string };

export interface PrometheusConfig {
  readonly url: string;
  /** Extra request headers (values are secrets and were masked). */
  readonly headers: Readonly<Record<string, string>>;
}

export interface Config {
  readonly command: Command;
  readonly virtualService: string;
  readonly namespace: string;
  readonly split: Split;
  /** Names of the managed http routes; empty means every route whose only destination is stable. */
  readonly routes: readonly string[];
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
  readonly rollbackOnCancel: boolean;
  readonly reporter: Reporter;
  readonly canarySelector?: string;
  readonly stableSelector?: string;
  readonly dryRun: boolean;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly githubToken: string;
  readonly pullRequest?: number;
  readonly environment?: string;
  /** With promote or rollback: act only on this rollout. */
  readonly rolloutId?: string;
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
  "rollback-on-cancel",
  "reporter",
  "canary-selector",
  "stable-selector",
  "dry-run",
  "kubeconfig",
  "context",
  "github-token",
  "pull-request",
  "environment",
  "rollout-id",
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
  "rollback-on-cancel": "true",
  reporter: "destination",
  "dry-run": "false",
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

// Kubernetes name rules (apimachinery validation).
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;
const LATENCY = /^(\d+(?:\.\d+)?)(ms|s)$/;
// RFC 9110 field-name token.
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// One PromQL label matcher list: name op "value" [, ...]. Values are double-quoted strings.
const LABEL_MATCHERS =
  /^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"(\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*")*\s*$/;

/** Parses `90s`, `5m`, `1h30m` into milliseconds; undefined when malformed or zero. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m || text === "") return undefined;
  const [, h = "0", min = "0", s = "0"] = m;
  const ms = ((Number(h) * 60 + Number(min)) * 60 + Number(s)) * 1000;
  return ms > 0 ? ms : undefined;
}

/** Parses `1%` or `0.01` into a fraction; undefined when malformed. Range is the caller's rule. */
export function parseFraction(text: string): number | undefined {
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (percent) return Number(percent[1]) / 100;
  if (/^(\d+(?:\.\d+)?|\.\d+)$/.test(text)) return Number(text);
  return undefined;
}

function oneOf<T extends string>(values: readonly T[], text: string): T | undefined {
  return (values as readonly string[]).includes(text) ? (text as T) : undefined;
}

function parseBoolean(text: string): boolean | undefined {
  // The YAML 1.2 core schema booleans, as @actions/core's getBooleanInput accepts them.
  if (["true", "True", "TRUE"].includes(text)) return true;
  if (["false", "False", "FALSE"].includes(text)) return false;
  return undefined;
}

function listOf(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

/** Checks a kubeconfig document without logging any of it; returns the problem or undefined. */
function kubeconfigProblem(text: string, context: string): string | undefined {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    return "is not valid YAML (its content is not shown because it is a secret); expected a kubeconfig document";
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return "is not a kubeconfig document (expected a YAML mapping with clusters, users and contexts)";
  }
  const cfg = doc as { contexts?: unknown; "current-context"?: unknown };
  const contexts = Array.isArray(cfg.contexts)
    ? cfg.contexts
        .map((c) => (c && typeof c === "object" ? (c as { name?: unknown }).name : undefined))
        .filter((n): n is string => typeof n === "string")
    : [];
  if (contexts.length === 0) return "has no contexts; expected a kubeconfig with at least one context";
  const wanted = context || (typeof cfg["current-context"] === "string" ? cfg["current-context"] : "");
  if (!wanted) {
    return `has no current-context; set the 'context' input to one of ${contexts.join(", ")}`;
  }
  if (!contexts.includes(wanted)) {
    return `has no context named ${show(wanted)}; it defines ${contexts.join(", ")}`;
  }
  return undefined;
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

  const virtualService = get("virtual-service");
  if (!virtualService) fail("virtual-service", "is required: the name of the VirtualService to manage");
  else if (!DNS1123_SUBDOMAIN.test(virtualService) || virtualService.length > 253) {
    fail(
      "virtual-service",
      `${show(virtualService)} is not a Kubernetes name (lowercase letters, digits, '-' and '.', at most 253 characters)`,
    );
  }

  const namespace = get("namespace");
  if (!DNS1123_LABEL.test(namespace) || namespace.length > 63) {
    fail(
      "namespace",
      `${show(namespace)} is not a namespace name (lowercase letters, digits and '-', at most 63 characters, starting and ending alphanumeric)`,
    );
  }

  const split = parseSplit(get, fail);

  const routes = listOf(get("routes"));
  for (const r of routes) {
    // Istio route names are free-form strings, but commas and newlines separate the list.
    if (r.length > 253) fail("routes", `route name ${show(r)} is longer than 253 characters`);
  }
  if (new Set(routes).size !== routes.length) fail("routes", `${show(get("routes"))} names a route twice`);

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
  ): number | undefined =>
    parseDuration(get(name)) ??
    fail(name, `${show(get(name))} is not a duration; use a positive duration such as 90s, 5m or 1h30m`);
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
    if (problem) fail("kubeconfig", problem);
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

  if (problems.length > 0) throw new InputError(problems);

  const config: Config = {
    command: command as Command,
    virtualService,
    namespace,
    split: split as Split,
    routes: Object.freeze(routes),
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
    rollbackOnCancel: rollbackOnCancel as boolean,
    maxRatioToStable: maxRatioToStable as number,
    reporter: reporter as Reporter,
    canarySelector,
    stableSelector,
    dryRun: dryRun as boolean,
    kubeconfig,
    context,
    githubToken,
    pullRequest,
    environment,
    rolloutId,
  };
  return deepFreeze(config);
}

type Fail = (input: InputName, message: string) => undefined;
type Get = (name: InputName) => string;

function parseSplit(get: Get, fail: Fail): Split | undefined {
  const stableSubset = get("stable-subset");
  const canarySubset = get("canary-subset");
  const stableHost = get("stable-host");
  const canaryHost = get("canary-host");
  for (const [name, value] of [
    ["stable-subset", stableSubset],
    ["canary-subset", canarySubset],
  ] as const) {
    if (value && (!DNS1123_LABEL.test(value) || value.length > 63)) {
      return fail(
        name,
        `${show(value)} is not a DestinationRule subset name (lowercase letters, digits and '-', at most 63 characters)`,
      );
    }
  }
  for (const [name, value] of [
    ["stable-host", stableHost],
    ["canary-host", canaryHost],
  ] as const) {
    // Istio hosts are DNS names (short or fully qualified); wildcards cannot be a destination.
    if (value && (!DNS1123_SUBDOMAIN.test(value) || value.length > 253)) {
      return fail(
        name,
        `${show(value)} is not a host name (a Service name or a DNS name such as reviews.prod.svc.cluster.local)`,
      );
    }
  }
  if (stableSubset || canarySubset) {
    if (canaryHost)
      return fail(
        "canary-host",
        "cannot be combined with subsets: use stable-subset and canary-subset (subset splitting) or stable-host and canary-host (host splitting)",
      );
    if (!stableSubset)
      return fail("stable-subset", "is required with canary-subset (subset splitting needs both subsets)");
    if (!canarySubset)
      return fail("canary-subset", "is required with stable-subset (subset splitting needs both subsets)");
    if (stableSubset === canarySubset)
      return fail(
        "canary-subset",
        `${show(canarySubset)} is the same as stable-subset; the canary needs its own subset`,
      );
    return stableHost
      ? { mode: "subset", stableSubset, canarySubset, host: stableHost }
      : { mode: "subset", stableSubset, canarySubset };
  }
  if (canaryHost || stableHost) {
    if (!canaryHost)
      return fail(
        "canary-host",
        "is required with stable-host and no subsets (host splitting needs both hosts)",
      );
    if (!stableHost)
      return fail("stable-host", "is required with canary-host (host splitting needs both hosts)");
    if (stableHost === canaryHost)
      return fail(
        "canary-host",
        `${show(canaryHost)} is the same as stable-host; the canary needs its own Service`,
      );
    return { mode: "host", stableHost, canaryHost };
  }
  return fail(
    "stable-subset",
    "is required: set stable-subset and canary-subset (subset splitting), or stable-host and canary-host (host splitting)",
  );
}

function parseStages(text: string, fail: Fail): number[] | undefined {
  const parts = listOf(text);
  const allowed = "strictly increasing whole numbers from 1 to 100, ending at 100, such as 1,10,50,100";
  const stages: number[] = [];
  for (const part of parts) {
    const n = /^\d+%?$/.test(part) ? Number.parseInt(part, 10) : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > 100)
      return fail("stages", `${show(text)} has ${show(part)}; use ${allowed}`);
    if (stages.length > 0 && n <= (stages.at(-1) as number))
      return fail("stages", `${show(text)} is not strictly increasing at ${part}; use ${allowed}`);
    stages.push(n);
  }
  if (stages.length === 0) return fail("stages", `is empty; use ${allowed}`);
  if (stages.at(-1) !== 100) return fail("stages", `${show(text)} does not end at 100; use ${allowed}`);
  return stages;
}

function parsePrometheus(get: Get, fail: Fail, optional: boolean): PrometheusConfig | undefined {
  const urlText = get("prometheus-url");
  const headersText = get("prometheus-headers");
  const headers: Record<string, string> = {};
  headersText.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon).trim() : "";
    // The value is a secret: name the line, never show it.
    if (!HEADER_NAME.test(name)) {
      fail(
        "prometheus-headers",
        `line ${i + 1} is not a 'Name: value' header (its content is not shown because it may be a secret)`,
      );
      return;
    }
    headers[name] = line.slice(colon + 1).trim();
  });
  if (!urlText) {
    if (optional) return undefined;
    return fail(
      "prometheus-url",
      "is required unless skip-analysis is true: the base URL of the Prometheus HTTP API, such as http://prometheus.istio-system:9090",
    );
  }
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    return fail(
      "prometheus-url",
      `${show(urlText)} is not a URL; use an http or https URL such as http://prometheus.istio-system:9090`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return fail(
      "prometheus-url",
      `${show(urlText)} uses ${url.protocol.replace(":", "")}; only http and https are allowed`,
    );
  }
  if (url.username || url.password) {
    return fail(
      "prometheus-url",
      "carries credentials in the URL; put them in prometheus-headers (for example 'Authorization: Basic ...') so they are masked",
    );
  }
  return { url: url.toString().replace(/\/+$/, ""), headers: Object.freeze(headers) };
}

function parseRate(
  get: Get,
  fail: Fail,
  name: "max-error-rate" | "false-rollback-budget",
): number | undefined {
  const text = get(name);
  const value = parseFraction(text);
  if (value === undefined || !(value > 0 && value < 1)) {
    return fail(
      name,
      `${show(text)} is not a rate between 0 and 1 (exclusive); use a percentage such as 1% or a fraction such as 0.01`,
    );
  }
  return value;
}

function parseLatency(text: string, fail: Fail): number | undefined {
  const m = LATENCY.exec(text);
  if (!m)
    return fail(
      "latency-threshold",
      `${show(text)} is not a latency; use milliseconds or seconds such as 500ms or 1s`,
    );
  const ms = Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  if (ISTIO_LATENCY_BUCKETS_MS.includes(ms)) return ms;
  const below = [...ISTIO_LATENCY_BUCKETS_MS].reverse().find((b) => b < ms);
  const above = ISTIO_LATENCY_BUCKETS_MS.find((b) => b > ms);
  const nearest = [below, above]
    .filter((b) => b !== undefined)
    .map((b) => `${b}ms`)
    .join(" or ");
  return fail(
    "latency-threshold",
    `${show(text)} is not an Istio histogram bucket boundary, so slower requests cannot be counted exactly; use ${nearest}`,
  );
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Values in a kubeconfig that grant access; each is masked on its own as well as the whole text. */
const KUBECONFIG_SECRET_KEYS =
  /^\s*-?\s*(token|client-key-data|client-certificate-data|password|id-token|refresh-token|client-secret)\s*:\s*(\S+)/;

/**
 * Reads the inputs from the runner and masks the secrets before anything else can log.
 * The kubeconfig is masked line by line too: the runner masks multi-line values poorly.
 */
export function getConfig(): Config {
  const raw: Record<string, string> = {};
  for (const name of INPUT_NAMES) raw[name] = core.getInput(name);
  maskSecrets(raw);
  return parseConfig(raw);
}

export function maskSecrets(raw: RawInputs): void {
  const token = raw["github-token"];
  if (token) core.setSecret(token);
  const kubeconfig = raw.kubeconfig;
  if (kubeconfig) {
    core.setSecret(kubeconfig);
    for (const line of kubeconfig.split("\n")) {
      const m = KUBECONFIG_SECRET_KEYS.exec(line);
      if (m?.[2]) core.setSecret(m[2].replace(/^["']|["']$/g, ""));
    }
  }
  for (const line of (raw["prometheus-headers"] ?? "").split("\n")) {
    const colon = line.indexOf(":");
    const value = colon > 0 ? line.slice(colon + 1).trim() : line.trim();
    if (value) core.setSecret(value);
  }
}
