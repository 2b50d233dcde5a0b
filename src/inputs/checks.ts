/**
 * The `checks` input (issue 23): YAML, a list of custom Prometheus checks, validated with valibot
 * (as the state annotation is) into `CustomCheckDefinition`s. Every problem names the input, the
 * check and what is allowed; nothing here touches Prometheus (src/checks/ runs the preflight).
 *
 * The queries' placeholders are filled in per version by `fillPlaceholders`, here so that the
 * grammar checked at parse time and the one filled in are the same code:
 * - `{{ version }}`: the version's label value (the DestinationRule subset's `version` label, else its
 *   canonical revision), escaped for a double-quoted PromQL string (and as a regular expression
 *   after `=~` or `!~`). It must be a whole quoted label value: `version="{{ version }}"`.
 * - `{{ selector }}`: the label matchers the built-in analysis reads the version by (reporter,
 *   destination service and version), for checks on Istio's own metrics:
 *   `istio_requests_total{ {{ selector }}, response_code=~"4.." }`.
 */
import { load } from "js-yaml";
import * as v from "valibot";
import { escapeLabelValue, escapeRegexValue } from "../promql-text.ts";
import { parseFraction } from "./parsers.ts";
import type { CustomCheckDefinition } from "./types.ts";

/** What a version fills the placeholders with. */
export interface VersionPlaceholders {
  /** Unknown (host split, or a subset without a version label): a query using `{{ version }}` is refused. */
  version?: string;
  selector: string;
}

const PLACEHOLDER = /\{\{\s*([^}]*?)\s*\}\}/g;
const QUOTED_VERSION = /(=~|!~|!=|=)(\s*)"\{\{\s*version\s*\}\}"/g;

/** Why a query's placeholders are not usable, or undefined. */
function placeholderProblem(query: string): string | undefined {
  for (const match of query.matchAll(PLACEHOLDER)) {
    const name = match[1];
    if (name !== "version" && name !== "selector")
      return `has the placeholder ${JSON.stringify(match[0])}; the placeholders are {{ version }} and {{ selector }}`;
  }
  const stray = query.replace(QUOTED_VERSION, "").match(/\{\{\s*version\s*\}\}/);
  if (stray)
    return 'uses {{ version }} outside a quoted label value; write it as a whole value, as in version="{{ version }}"';
  return undefined;
}

/** The query for one version: each placeholder replaced by its escaped value. */
export function fillPlaceholders(query: string, version: VersionPlaceholders): string {
  return query
    .replace(QUOTED_VERSION, (_match, op: string, space: string) => {
      if (version.version === undefined)
        throw new Error(
          "uses {{ version }}, but the version's label value is unknown (no 'version' label or canonical revision on the subset, or a host split); use {{ selector }}",
        );
      const regex = op === "=~" || op === "!~";
      const value = regex ? escapeRegexValue(version.version) : version.version;
      return `${op}${space}"${escapeLabelValue(value)}"`;
    })
    .replace(/\{\{\s*selector\s*\}\}/g, version.selector);
}

/**
 * A counter query is a series selector, optionally inside `sum(...)`: the action reads its raw
 * samples and sums the series itself (exact counts; rate() and increase() extrapolate).
 */
const SELECTOR =
  /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*\s*)?\{(?:[^{}"]|"(?:[^"\\]|\\.)*"|\{\{[^}]*\}\})*\}$|^[a-zA-Z_:][a-zA-Z0-9_:]*$/s;

/** The bare selector of a counter query (`sum(...)` taken off), or undefined when it is not one. */
export function counterSelector(query: string): string | undefined {
  const inner = /^\s*sum\s*\((.*)\)\s*$/s.exec(query)?.[1] ?? query;
  const selector = inner.trim();
  return SELECTOR.test(selector) ? selector : undefined;
}

/** The metric name of a selector, when it names one. */
export function metricName(selector: string): string | undefined {
  return /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(selector)?.[1] ?? /__name__\s*=\s*"([^"]+)"/.exec(selector)?.[1];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$/;

const Rate = v.pipe(
  v.union([v.number(), v.string()], "a rate such as 2% or 0.02"),
  v.transform((x) => (typeof x === "number" ? x : parseFraction(x.trim()))),
  v.number("a rate such as 2% or 0.02"),
  v.gtValue(0, "a rate above 0"),
  v.ltValue(1, "a rate below 100%"),
);
const Query = v.pipe(v.string("a PromQL string"), v.trim(), v.nonEmpty("a PromQL string"), v.maxLength(4000));
const Mode = v.optional(v.picklist(["fail", "report"], "fail or report"), "fail");
const Bound = v.number("a number");

const CounterCheck = v.strictObject(
  {
    name: v.string(),
    mode: Mode,
    bad: Query,
    total: Query,
    "max-rate": Rate,
    "max-ratio-to-stable": v.optional(
      v.pipe(v.number("a ratio from 1 to 100"), v.minValue(1, "at least 1"), v.maxValue(100, "at most 100")),
    ),
  },
  "only name, mode, bad, total, max-rate and max-ratio-to-stable",
);
const ThresholdCheck = v.strictObject(
  {
    name: v.string(),
    mode: Mode,
    query: Query,
    below: v.optional(Bound),
    above: v.optional(Bound),
    breaches: v.optional(
      v.pipe(
        v.number(),
        v.integer("a whole number"),
        v.minValue(1, "at least 1"),
        v.maxValue(100, "at most 100"),
      ),
      3,
    ),
  },
  "only name, mode, query, below or above, and breaches",
);

type Problem = (message: string) => undefined;

/** One check from its YAML object; problems are reported through `problem` with the check's name. */
function parseOne(raw: unknown, index: number, problem: Problem): CustomCheckDefinition | undefined {
  const record = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const label =
    typeof record.name === "string" ? `check ${JSON.stringify(record.name)}` : `check #${index + 1}`;
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    return problem(`${label} is not a mapping (name, and bad + total + max-rate, or query + below/above)`);
  if (typeof record.name !== "string" || !NAME.test(record.name))
    return problem(`${label}: name must be 1 to 63 letters, digits, spaces, '.', '_' or '-'`);
  const counter = "bad" in record || "total" in record;
  const result = counter ? v.safeParse(CounterCheck, raw) : v.safeParse(ThresholdCheck, raw);
  if (!result.success) {
    const issue = result.issues[0];
    const path = v.getDotPath(issue);
    if (path && issue.input === undefined) return problem(`${label}: ${path} is missing`);
    const what = issue.message.startsWith("Invalid") ? issue.expected : issue.message;
    return problem(`${label}: ${path ?? "it"} must be ${what}`);
  }
  const queries = counter
    ? [
        (result.output as v.InferOutput<typeof CounterCheck>).bad,
        (result.output as v.InferOutput<typeof CounterCheck>).total,
      ]
    : [(result.output as v.InferOutput<typeof ThresholdCheck>).query];
  for (const query of queries) {
    const wrong = placeholderProblem(query);
    if (wrong) return problem(`${label}: the query ${JSON.stringify(query)} ${wrong}`);
  }
  if (counter) return counterDefinition(result.output as v.InferOutput<typeof CounterCheck>, label, problem);
  const t = result.output as v.InferOutput<typeof ThresholdCheck>;
  if ((t.below === undefined) === (t.above === undefined))
    return problem(
      `${label}: give one of below (the value must stay below it) or above (it must stay above it)`,
    );
  return {
    name: t.name,
    kind: "threshold",
    mode: t.mode,
    query: t.query,
    ...(t.below !== undefined ? { below: t.below } : {}),
    ...(t.above !== undefined ? { above: t.above } : {}),
    breaches: t.breaches,
  };
}

function counterDefinition(
  c: v.InferOutput<typeof CounterCheck>,
  label: string,
  problem: Problem,
): CustomCheckDefinition | undefined {
  for (const [field, query] of [
    ["bad", c.bad],
    ["total", c.total],
  ] as const) {
    if (!counterSelector(query))
      return problem(
        `${label}: ${field} ${JSON.stringify(query)} is not a counter's series selector; write metric{labels} (optionally inside sum(...)): the action reads the raw samples and counts exactly, so no rate() or increase()`,
      );
  }
  return {
    name: c.name,
    kind: "counter",
    mode: c.mode,
    bad: counterSelector(c.bad) as string,
    total: counterSelector(c.total) as string,
    maxRate: c["max-rate"],
    ...(c["max-ratio-to-stable"] !== undefined ? { maxRatioToStable: c["max-ratio-to-stable"] } : {}),
  };
}

/** The `checks` input: empty is none; otherwise a YAML list of checks with distinct names. */
export function parseChecks(text: string, fail: (message: string) => undefined): CustomCheckDefinition[] {
  if (!text.trim()) return [];
  let doc: unknown;
  try {
    doc = load(text);
  } catch (error) {
    fail(`is not YAML: ${(error as Error).message.split("\n")[0]}`);
    return [];
  }
  if (!Array.isArray(doc)) {
    fail("must be a YAML list of checks (- name: ...)");
    return [];
  }
  const checks: CustomCheckDefinition[] = [];
  const names = new Set<string>();
  doc.forEach((raw, index) => {
    const check = parseOne(raw, index, fail);
    if (!check) return;
    if (names.has(check.name)) fail(`check ${JSON.stringify(check.name)} is named twice; names must differ`);
    names.add(check.name);
    checks.push(check);
  });
  return checks;
}
