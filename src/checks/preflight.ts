/**
 * The custom checks' preflight (issue 23): every query runs once against Prometheus before any
 * write, and a check is refused, by name, when its query does not parse (400 bad_data), selects no
 * series for the stable version (a `total` or a threshold `query`; a `bad` selector may have none
 * yet: a counter of failures is born with the first failure), returns more than one series where
 * one value is needed, or is not a counter where a counter is needed.
 *
 * "A counter": Prometheus' metadata API says `counter` (or the histogram or summary a `_count` or
 * `_bucket` series belongs to). Where it has no metadata (federation, remote write, recording
 * rules), the name must end in `_total`, `_count` or `_bucket`, the OpenMetrics names of counters.
 * A gauge read as a counter would count every fall as a reset and every rise as events.
 */

import { START_LOOKBACK_MS } from "../constants.ts";
import { errorMessage } from "../error-message.ts";
import { fillPlaceholders, metricName, type VersionPlaceholders } from "../inputs/checks.ts";
import type { CustomCheckDefinition } from "../inputs/types.ts";
import { type PrometheusClient, PrometheusError } from "../metrics/prometheus-client.ts";
import { range } from "../promql-text.ts";
import type { CounterCheck } from "./judge.ts";

const COUNTER_NAME = /_(total|count|bucket)$/;

/** Why a query failed, in the words of the refusal. */
function queryProblem(error: unknown): string {
  if (error instanceof PrometheusError && error.problem === "bad_data")
    return `does not parse (Prometheus: ${error.message})`;
  return `could not be run (${errorMessage(error)})`;
}

/** Why the metric is not a counter, or undefined when it is one. */
async function notCounter(client: PrometheusClient, name: string): Promise<string | undefined> {
  const typeOf = (metric: string) => client.metricType(metric).catch(() => undefined);
  const type = await typeOf(name);
  if (type === "counter") return undefined;
  const family = /^(.*)_(count|bucket|sum)$/.exec(name)?.[1];
  const familyType = family && !type ? await typeOf(family) : undefined;
  if (familyType && ["histogram", "summary", "gaugehistogram"].includes(familyType) && !name.endsWith("_sum"))
    return undefined;
  if (type && type !== "unknown") return `${name} is a ${type} in Prometheus' metadata, not a counter`;
  if (familyType) return `${name} belongs to a ${familyType}, not a counter`;
  return COUNTER_NAME.test(name)
    ? undefined
    : `Prometheus has no metadata for ${name} and its name does not end in _total, _count or _bucket: is it a counter?`;
}

async function counterProblems(
  client: PrometheusClient,
  check: CounterCheck,
  stable: VersionPlaceholders,
  at: Date,
): Promise<string[]> {
  const problems: string[] = [];
  for (const field of ["bad", "total"] as const) {
    let query: string;
    try {
      query = fillPlaceholders(check[field], stable);
    } catch (error) {
      problems.push(`${field} ${errorMessage(error)}`);
      continue;
    }
    const result = await client.querySeries(range(query, START_LOOKBACK_MS), at).catch((error: unknown) => {
      problems.push(`${field} ${JSON.stringify(query)} ${queryProblem(error)}`);
      return undefined;
    });
    if (!result) continue;
    if (field === "total" && result.series.length === 0)
      problems.push(
        `total ${JSON.stringify(query)} has no series for the stable version in the last 5 minutes`,
      );
    const name = metricName(check[field]);
    const wrong = name ? await notCounter(client, name) : `${field} names no metric; write metric{labels}`;
    if (wrong) problems.push(`${field}: ${wrong}`);
  }
  return problems;
}

async function thresholdProblems(
  client: PrometheusClient,
  query: string,
  stable: VersionPlaceholders,
  at: Date,
): Promise<string[]> {
  let filled: string;
  try {
    filled = fillPlaceholders(query, stable);
  } catch (error) {
    return [`query ${errorMessage(error)}`];
  }
  try {
    const result = await client.querySeries(filled, at);
    if (result.series.length === 0)
      return [`query ${JSON.stringify(filled)} has no series for the stable version`];
    if (result.series.length > 1)
      return [
        `query ${JSON.stringify(filled)} returns ${result.series.length} series for the stable version; aggregate it to one (sum, max, ...)`,
      ];
    return [];
  } catch (error) {
    return [`query ${JSON.stringify(filled)} ${queryProblem(error)}`];
  }
}

/** Runs every check's queries once; throws one error naming every refused check and why. */
export async function preflightChecks(
  client: PrometheusClient,
  checks: readonly CustomCheckDefinition[],
  stable: VersionPlaceholders,
  at: Date = new Date(),
): Promise<void> {
  const refused: string[] = [];
  for (const check of checks) {
    const problems =
      check.kind === "counter"
        ? await counterProblems(client, check, stable, at)
        : await thresholdProblems(client, check.query, stable, at);
    for (const problem of problems) refused.push(`check ${JSON.stringify(check.name)}: ${problem}`);
  }
  if (refused.length > 0)
    throw new Error(`Input 'checks' refused before any change: ${refused.join("; ")}. Nothing was changed`);
}
