/**
 * The scrape targets behind each version's series, and whether Prometheus still reaches them
 * (issue 21). A pod whose target is down keeps its series only until they go stale; until then,
 * and after for the pods still scraped, the version's counts silently leave that pod's requests
 * out. A version whose targets are down (`up == 0`) or gone is therefore no data (it follows
 * `on-unreachable`), never "no traffic" or "too little traffic".
 *
 * A target is the `job` and `instance` labels Prometheus puts on every series it scrapes; `up`
 * carries the same two. Series without an `instance` label (federated, remote-written, or
 * relabelled away) name no target, and the check is skipped for them.
 */

import { escapeLabelValue, escapeRegexValue, range } from "../promql-text.ts";
import type { RangeSeries } from "./prometheus-client.ts";

/** A scrape target, as `job` and `instance` name it. */
export interface Target {
  job: string;
  instance: string;
}

const targetKey = (t: Target) => JSON.stringify([t.job, t.instance]);

/** The distinct targets of a version's series. */
export function targetsOf(series: readonly RangeSeries[]): Target[] {
  const found = new Map<string, Target>();
  for (const s of series) {
    const instance = s.metric.instance;
    if (instance === undefined || instance === "") continue;
    const target = { job: s.metric.job ?? "", instance };
    found.set(targetKey(target), target);
  }
  return [...found.values()];
}

/** The union of target lists, each once. */
export function unionOfTargets(...lists: ReadonlyArray<readonly Target[]>): Target[] {
  const all = new Map<string, Target>();
  for (const list of lists) for (const t of list) all.set(targetKey(t), t);
  return [...all.values()];
}

/**
 * Every `up` sample of these targets' instances over the last `windowMs`: a raw range, one query
 * for both versions (the job is matched in code, as label values come from Prometheus).
 */
export function upQuery(targets: readonly Target[], windowMs: number): string | undefined {
  if (targets.length === 0) return undefined;
  const instances = [...new Set(targets.map((t) => escapeRegexValue(t.instance)))].sort();
  return range(`up{instance=~"${escapeLabelValue(instances.join("|"))}"}`, windowMs);
}

/**
 * What the targets' `up` samples say of each version, one sentence per version with a problem:
 * a target whose every sample in the range is 0 is down (one failed scrape is not: the range spans
 * several); a version none of whose targets has an `up` sample, while others' have, is gone from
 * Prometheus' targets.
 * A target of a version that still has others scraped and no sample of its own is a pod that was
 * replaced: its requests until then are counted, and nothing is missing.
 */
export function targetProblems(
  versions: Record<"canary" | "stable", readonly Target[]>,
  up: readonly RangeSeries[],
): string[] {
  const samples = new Map<string, number[]>();
  for (const s of up) {
    const key = targetKey({ job: s.metric.job ?? "", instance: s.metric.instance ?? "" });
    samples.set(key, [...(samples.get(key) ?? []), ...s.values]);
  }
  // No up sample at all: Prometheus itself has not scraped lately (just restarted, or a gap in a
  // federation), which the freshness rules judge by the samples' times; nothing to say here.
  if (up.length === 0) return [];
  const problems: string[] = [];
  for (const [name, targets] of Object.entries(versions)) {
    if (targets.length === 0) continue;
    const down = targets.filter((t) => {
      const values = samples.get(targetKey(t));
      return values !== undefined && values.length > 0 && values.every((v) => v === 0);
    });
    const seen = targets.filter((t) => samples.has(targetKey(t)));
    if (down.length > 0)
      problems.push(
        `${down.length} of the ${name}'s scrape targets ${down.length === 1 ? "is" : "are"} down (up == 0 over the last scrapes: ${down
          .slice(0, 3)
          .map((t) => t.instance)
          .join(", ")}${down.length > 3 ? ", …" : ""}): its requests there are not counted`,
      );
    else if (seen.length === 0)
      problems.push(
        `none of the ${name}'s ${targets.length} scrape target(s) has an up sample: Prometheus no longer scrapes them`,
      );
  }
  return problems;
}
