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
  minutesToPromotionMean: number | null;
  minutesToRollbackMean: number | null;
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

/** The nearest-rank 95th percentile. */
function p95(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.ceil(0.95 * sorted.length) - 1] as number;
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
    canaryRequestsBeforeRollbackP95: p95(rolledBack.map((o) => o.canaryRequests)),
    canaryErrorsBeforeRollbackMean: mean(rolledBack.map((o) => o.canaryErrors)),
    minutesToPromotionMean: mean(promoted.map((o) => o.minutes)),
    minutesToRollbackMean: mean(rolledBack.map((o) => o.minutes)),
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

export function markdownTable(results: readonly ScenarioResult[]): string {
  const lines = [
    "| scenario | rule | runs | promoted | rolled back (fail / inconclusive / other) | paused | canary requests before rollback, mean / p95 | canary errors before rollback, mean | minutes to promotion | minutes to rollback | target met |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    for (const [rule, c] of Object.entries(r.rules) as Array<[Rule, CellSummary]>) {
      const target =
        rule === "ours"
          ? `${r.targetMet ? "yes" : "**no**"}: ${r.targetText}${r.targetMisses ? ` (${r.targetMisses})` : ""}`
          : "";
      lines.push(
        `| ${rule === "ours" ? r.description : ""} | ${rule} | ${c.runs} | ${percent(c.promoted)} | ${percent(c.rolledBack)} (${percent(c.rolledBackFail)} / ${percent(c.rolledBackInconclusive)} / ${percent(c.rolledBackOther)}) | ${percent(c.paused)} | ${number(c.canaryRequestsBeforeRollbackMean, 0)} / ${number(c.canaryRequestsBeforeRollbackP95, 0)} | ${number(c.canaryErrorsBeforeRollbackMean)} | ${number(c.minutesToPromotionMean)} | ${number(c.minutesToRollbackMean)} | ${target} |`,
      );
    }
  }
  return lines.join("\n");
}
