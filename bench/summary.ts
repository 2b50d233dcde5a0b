/** Per-cell statistics of many simulated rollouts, the targets for `ours`, and the markdown table. */
import type { RunOutcome } from "./outcome.ts";
import type { Rule, Scenario, Target } from "./scenario.ts";

export interface CellSummary {
  runs: number;
  /** Shares of runs, 0..1. */
  promoted: number;
  rolledBack: number;
  rolledBackFail: number;
  rolledBackInconclusive: number;
  rolledBackOther: number;
  paused: number;
  unfinished: number;
  /** Over the rolled-back runs; null when none rolled back. */
  canaryRequestsBeforeRollbackMean: number | null;
  canaryRequestsBeforeRollbackP95: number | null;
  canaryErrorsBeforeRollbackMean: number | null;
  /** Canary errors users were served from the first weight change to the end, over every run. */
  canaryErrorsMean: number;
  /** The new version's errors served in the first 30 minutes, whatever the ending, over every run. */
  newVersionErrorsFirst30MinutesMean: number;
  minutesToPromotionMean: number | null;
  minutesToPromotionP90: number | null;
  minutesToRollbackMean: number | null;
  minutesToRollbackP90: number | null;
}

export interface ScenarioResult {
  scenario: string;
  description: string;
  targetText: string;
  rules: Partial<Record<Rule, CellSummary>>;
  /** For `ours`: whether every target is met, and which are not ("; "-separated). */
  targetMet?: boolean;
  targetMisses?: string;
}

const mean = (xs: number[]) => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** The nearest-rank percentile `q` (0..1). */
function percentile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.ceil(q * sorted.length) - 1] as number;
}

export function summarise(outcomes: readonly RunOutcome[]): CellSummary {
  const runs = outcomes.length;
  const share = (f: (o: RunOutcome) => boolean) => outcomes.filter(f).length / runs;
  const rolledBack = outcomes.filter((o) => o.result === "rolled-back");
  const promoted = outcomes.filter((o) => o.result === "promoted");
  return {
    runs,
    promoted: promoted.length / runs,
    rolledBack: rolledBack.length / runs,
    rolledBackFail: share((o) => o.result === "rolled-back" && o.cause === "fail"),
    rolledBackInconclusive: share((o) => o.result === "rolled-back" && o.cause === "inconclusive"),
    rolledBackOther: share((o) => o.result === "rolled-back" && o.cause === "other"),
    paused: share((o) => o.result === "paused"),
    unfinished: share((o) => o.result === "unfinished"),
    canaryRequestsBeforeRollbackMean: mean(rolledBack.map((o) => o.canaryRequests)),
    canaryRequestsBeforeRollbackP95: percentile(
      rolledBack.map((o) => o.canaryRequests),
      0.95,
    ),
    canaryErrorsBeforeRollbackMean: mean(rolledBack.map((o) => o.canaryErrors)),
    canaryErrorsMean: mean(outcomes.map((o) => o.canaryErrors)) ?? 0,
    newVersionErrorsFirst30MinutesMean: mean(outcomes.map((o) => o.newVersionErrorsFirst30Minutes)) ?? 0,
    minutesToPromotionMean: mean(promoted.map((o) => o.minutes)),
    minutesToPromotionP90: percentile(
      promoted.map((o) => o.minutes),
      0.9,
    ),
    minutesToRollbackMean: mean(rolledBack.map((o) => o.minutes)),
    minutesToRollbackP90: percentile(
      rolledBack.map((o) => o.minutes),
      0.9,
    ),
  };
}

/** Checks `ours` against the scenario's target; comparisons need the other rules' cells. */
export function checkTarget(target: Target, cells: ScenarioResult["rules"]): string[] {
  const ours = cells.ours;
  if (!ours) return [];
  const misses: string[] = [];
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  if (target.minPromoted !== undefined && ours.promoted < target.minPromoted)
    misses.push(`promoted ${pct(ours.promoted)} < ${pct(target.minPromoted)}`);
  if (target.maxRolledBack !== undefined && ours.rolledBack > target.maxRolledBack)
    misses.push(`rolled back ${pct(ours.rolledBack)} > ${pct(target.maxRolledBack)}`);
  if (target.minRolledBack !== undefined && ours.rolledBack < target.minRolledBack)
    misses.push(`rolled back ${pct(ours.rolledBack)} < ${pct(target.minRolledBack)}`);
  const compare = (
    ratio: number | undefined,
    mine: number | null,
    theirs: number | null | undefined,
    what: string,
  ) => {
    if (ratio === undefined) return;
    if (mine === null || theirs === null || theirs === undefined) {
      if (mine === null && theirs !== null && theirs !== undefined) misses.push(`${what}: no value for ours`);
      return;
    }
    if (mine > ratio * theirs)
      misses.push(`${what} ${mine.toFixed(1)} > ${ratio.toFixed(2)} x ${theirs.toFixed(1)}`);
  };
  compare(
    target.maxPromotionMinutesVsFlagger,
    ours.minutesToPromotionMean,
    cells.flagger?.minutesToPromotionMean,
    "minutes to promotion vs Flagger",
  );
  compare(
    target.maxErrorsVsFlagger,
    ours.canaryErrorsBeforeRollbackMean,
    cells.flagger?.canaryErrorsBeforeRollbackMean,
    "errors served vs Flagger",
  );
  compare(
    target.maxErrorsVsArgo,
    ours.canaryErrorsBeforeRollbackMean,
    cells.argo?.canaryErrorsBeforeRollbackMean,
    "errors served vs Argo",
  );
  return misses;
}

export function scenarioResult(
  scenario: Scenario,
  cells: Partial<Record<Rule, readonly RunOutcome[]>>,
): ScenarioResult {
  const rules: ScenarioResult["rules"] = {};
  for (const [rule, outcomes] of Object.entries(cells) as Array<[Rule, RunOutcome[]]>)
    rules[rule] = summarise(outcomes);
  const result: ScenarioResult = {
    scenario: scenario.name,
    description: scenario.description,
    targetText: scenario.targetText,
    rules,
  };
  if (rules.ours) {
    const misses = checkTarget(scenario.target, rules);
    result.targetMet = misses.length === 0;
    if (misses.length > 0) result.targetMisses = misses.join("; ");
  }
  return result;
}

const percent = (x: number) => `${(100 * x).toFixed(1)} %`;
const number = (x: number | null, digits = 1) => (x === null ? "—" : x.toFixed(digits));

/** How each rule is configured, printed under the table. */
export const RULE_NOTES: Record<Rule, string> = {
  ours: "the action's engine and judge at action.yml's defaults plus the scenario's inputs, reading Istio's metrics through src/metrics/ (its PromQL, answered from the simulated pods' scrapes)",
  flagger:
    "Flagger's analysis with the action's stages as stepWeights 1/10/50/100, interval 1m, threshold 5, request-success-rate >= 99 % over 1m of the canary's series (and request-duration p99 with a latency threshold)",
  "flagger-tutorial":
    "Flagger as its Istio tutorial configures it: stepWeight 10 to maxWeight 50, interval 1m, threshold 5, and the load tester's 20 req/s to the canary's pods during the analysis",
  argo: "Argo Rollouts with setWeight 1/10/50/100, an inline analysis per step of count 5, interval 1m, failureLimit 3, consecutiveErrorLimit 4, irate over 5m of the canary's series >= 0.99",
  "argo-service":
    "Argo Rollouts as above with its documented Istio query, which selects the whole service (both versions) instead of the canary",
};

export function markdownTable(results: readonly ScenarioResult[]): string {
  const lines = [
    "| scenario | rule | runs | promoted | rolled back (fail / inconclusive / other) | paused | canary requests before rollback, mean / p95 | canary errors before rollback, mean | canary errors, all runs, mean | new version's errors in the first 30 min, mean | minutes to promotion, mean / p90 | minutes to rollback, mean / p90 | target met |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    for (const [rule, c] of Object.entries(r.rules) as Array<[Rule, CellSummary]>) {
      const target =
        rule === "ours"
          ? `${r.targetMet ? "yes" : "**no**"}: ${r.targetText}${r.targetMisses ? ` (${r.targetMisses})` : ""}`
          : "";
      lines.push(
        `| ${rule === "ours" ? r.description : ""} | ${rule} | ${c.runs} | ${percent(c.promoted)} | ${percent(c.rolledBack)} (${percent(c.rolledBackFail)} / ${percent(c.rolledBackInconclusive)} / ${percent(c.rolledBackOther)}) | ${percent(c.paused)} | ${number(c.canaryRequestsBeforeRollbackMean, 0)} / ${number(c.canaryRequestsBeforeRollbackP95, 0)} | ${number(c.canaryErrorsBeforeRollbackMean)} | ${number(c.canaryErrorsMean)} | ${number(c.newVersionErrorsFirst30MinutesMean)} | ${number(c.minutesToPromotionMean)} / ${number(c.minutesToPromotionP90)} | ${number(c.minutesToRollbackMean)} / ${number(c.minutesToRollbackP90)} | ${target} |`,
      );
    }
  }
  return lines.join("\n");
}
