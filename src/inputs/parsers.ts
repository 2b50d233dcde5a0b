/**
 * The pure parsers behind `parseConfig()` (src/inputs/config.ts): each reads one input's raw text and
 * either returns its typed value or reports, through `fail`, a message that names the value (never
 * a secret one) and what is allowed. No I/O and no logging here. The Prometheus URL and headers
 * are parsed in prometheus-input.ts.
 */
import { load } from "js-yaml";
import { ISTIO_LATENCY_BUCKETS_MS, MAX_RUN_DURATION_MS, MAX_RUN_DURATION_TEXT } from "../constants.ts";
import { redactUrl } from "../redact.ts";
import { routePosition } from "../rollout/model/routes.ts";
import type { Split } from "../rollout/model/split.ts";
import type { InputName } from "./types.ts";

export type Fail = (input: InputName, message: string) => undefined;
export type Get = (name: InputName) => string;

// Kubernetes name rules (apimachinery validation).
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;
const LATENCY = /^(\d+(?:\.\d+)?)(ms|s)$/;

/** Parses `90s`, `5m`, `1h30m` into milliseconds (Infinity for absurd digits); undefined when malformed or zero. */
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

export function oneOf<T extends string>(values: readonly T[], text: string): T | undefined {
  return (values as readonly string[]).includes(text) ? (text as T) : undefined;
}

export function parseBoolean(text: string): boolean | undefined {
  // The YAML 1.2 core schema booleans, as @actions/core's getBooleanInput accepts them.
  if (["true", "True", "TRUE"].includes(text)) return true;
  if (["false", "False", "FALSE"].includes(text)) return false;
  return undefined;
}

export function listOf(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

/**
 * A duration a run can use: positive and at most 6 h (a GitHub-hosted job's limit). The bound also
 * keeps every timer far below Node's 2^31-1 ms limit, past which a timer fires at once, and keeps
 * the lease (max-stage-duration + settle-time + 5 min) below 24 h.
 */
export function parseBoundedDuration(
  name: "min-stage-duration" | "max-stage-duration" | "interval" | "settle-time" | "finalize-timeout",
  text: string,
  fail: Fail,
): number | undefined {
  const ms = parseDuration(text);
  const allowed = `use a duration from 1s to ${MAX_RUN_DURATION_TEXT} such as 90s, 5m or 1h30m`;
  if (ms === undefined) return fail(name, `${show(text)} is not a duration; ${allowed}`);
  if (ms > MAX_RUN_DURATION_MS) {
    return fail(
      name,
      `${show(text)} is longer than ${MAX_RUN_DURATION_TEXT}, the most a job can run; ${allowed}`,
    );
  }
  return ms;
}

/** Checks a kubeconfig document without showing any of it; returns [input to name, problem] or undefined. */
export function kubeconfigProblem(
  text: string,
  context: string,
): ["kubeconfig" | "context", string] | undefined {
  let doc: unknown;
  try {
    doc = load(text);
  } catch {
    return [
      "kubeconfig",
      "is not valid YAML or JSON (its content is not shown because it is a secret); expected a kubeconfig document",
    ];
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return [
      "kubeconfig",
      "is not a kubeconfig document (expected a mapping with clusters, users and contexts)",
    ];
  }
  const cfg = doc as Record<string, unknown>;
  const named = (key: string) =>
    (Array.isArray(cfg[key]) ? (cfg[key] as unknown[]) : [])
      .map((c) => (c && typeof c === "object" ? (c as Record<string, unknown>) : {}))
      .filter((c): c is { name: string } & Record<string, unknown> => typeof c.name === "string");
  const contexts = named("contexts");
  const names = contexts.map((c) => c.name);
  if (contexts.length === 0)
    return ["kubeconfig", "has no contexts; expected a kubeconfig with at least one context"];
  const current = typeof cfg["current-context"] === "string" ? cfg["current-context"] : "";
  const wanted = context || current;
  if (!wanted)
    return ["kubeconfig", `has no current-context; set the 'context' input to one of ${names.join(", ")}`];
  const chosen = contexts.find((c) => c.name === wanted);
  if (!chosen) {
    return context
      ? [
          "context",
          `${show(context)} is not a context of the kubeconfig input; it defines ${names.join(", ")}`,
        ]
      : [
          "kubeconfig",
          `its current-context ${show(current)} is not one of its contexts (${names.join(", ")})`,
        ];
  }
  const ref = (chosen.context ?? {}) as { cluster?: unknown; user?: unknown };
  const cluster = named("clusters").find((c) => c.name === ref.cluster);
  if (!cluster) {
    return [
      "kubeconfig",
      `context ${show(wanted)} names cluster ${show(String(ref.cluster ?? ""))}, which it does not define`,
    ];
  }
  if (ref.user !== undefined && !named("users").some((u) => u.name === ref.user)) {
    return [
      "kubeconfig",
      `context ${show(wanted)} names user ${show(String(ref.user))}, which it does not define`,
    ];
  }
  const server = (cluster.cluster as { server?: unknown } | undefined)?.server;
  let url: URL | undefined;
  try {
    url = typeof server === "string" ? new URL(server) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
    const shown = typeof server === "string" ? show(redactUrl(server)) : "nothing";
    return [
      "kubeconfig",
      `cluster ${show(cluster.name)}'s server is ${shown}, not an https URL such as https://1.2.3.4:6443`,
    ];
  }
  return undefined;
}

export function parseSplit(get: Get, fail: Fail): Split | undefined {
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

export function parseStages(text: string, fail: Fail, fractional = false): number[] | undefined {
  const parts = listOf(text);
  const allowed = fractional
    ? "strictly increasing percentages above 0 (at most 3 decimals), ending at 100, such as 0.1,1,10,50,100"
    : "strictly increasing whole numbers from 1 to 100, ending at 100, such as 1,10,50,100";
  const stages: number[] = [];
  for (const part of parts) {
    const decimal = /^\d{1,3}(\.\d{1,3})?%?$/.test(part);
    const n = decimal ? Number.parseFloat(part) : Number.NaN;
    if (decimal && !fractional && !Number.isInteger(n))
      return fail(
        "stages",
        `${show(text)} has ${show(part)}: Istio's VirtualService weights are whole percentages, so a stage below 1 % or between two percentages cannot be written there (a Gateway API HTTPRoute, in http-route, takes proportional weights and such stages); use ${allowed}`,
      );
    if (Number.isNaN(n) || n <= 0 || n > 100)
      return fail("stages", `${show(text)} has ${show(part)}; use ${allowed}`);
    if (stages.length > 0 && n <= (stages.at(-1) as number))
      return fail("stages", `${show(text)} is not strictly increasing at ${part}; use ${allowed}`);
    stages.push(n);
  }
  if (stages.length === 0) return fail("stages", `${show(text)} names no stage; use ${allowed}`);
  if (stages.at(-1) !== 100) return fail("stages", `${show(text)} does not end at 100; use ${allowed}`);
  return stages;
}

/**
 * `Name: value` lines. Values are secrets: a message names the line and the header, never the
 * value. Headers the action (or fetch) sets itself cannot be overridden, and a name given twice is
 * refused rather than silently keeping one.
 */
/**
 * The `routes` input: http route names, or `#N` for the route at position N of spec.http (an
 * unnamed route can be selected no other way; messages list such a route as `#N (unnamed)`).
 */
export function parseRoutes(text: string, fail: Fail): string[] {
  const routes = listOf(text);
  for (const r of routes) {
    // Istio route names are free-form strings, but commas and newlines separate the list.
    if (r.length > 253) fail("routes", `route name ${show(r)} is longer than 253 characters`);
    // A leading '#' means a position; anything else after it is a typo, not a route name to look for.
    else if (r.startsWith("#") && routePosition(r) === undefined)
      fail(
        "routes",
        `${show(r)} is not a route position: write # and the route's index in spec.http, as in "#0"`,
      );
  }
  if (new Set(routes).size !== routes.length) fail("routes", `${show(text)} names a route twice`);
  return routes;
}

export function parseRate(
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

export function parseLatency(text: string, fail: Fail): number | undefined {
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
