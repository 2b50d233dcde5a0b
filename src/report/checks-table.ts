/**
 * The custom checks' table (issue 23) of the comment and the summary: one row per check beside the
 * built-in stages' table, with its verdict and numbers. Names and summaries are shown as text.
 */
import type { CustomCheckResult } from "../rollout/custom-checks.ts";
import { markdownText } from "../untrusted-text.ts";
import { NBSP, pct } from "./format.ts";

const STATUS: Record<CustomCheckResult["status"], string> = {
  ok: "✅ ok",
  failing: "❌ failing",
  "no-data": "⚠️ no data",
};

function counts(c: { bad: number; total: number } | undefined): string {
  return c ? `${pct(c.total > 0 ? c.bad / c.total : undefined)}${NBSP}(${c.bad}/${c.total})` : "—";
}

function rule(check: CustomCheckResult): string {
  if (check.kind === "threshold") {
    const bound = check.below !== undefined ? `< ${check.below}` : `> ${check.above}`;
    return `${bound}, fails after ${check.breachesToFail} reads in breach`;
  }
  const ratio = check.maxRatioToStable !== undefined ? `, ≤ ${check.maxRatioToStable}× stable` : "";
  return `≤ ${pct(check.maxRate)}${ratio}`;
}

function value(check: CustomCheckResult): string {
  if (check.kind === "threshold")
    return `${check.value ?? "—"} (stable ${check.stableValue ?? "—"}), ${check.breaches ?? 0} in breach`;
  return `canary ${counts(check.canary)} · stable ${counts(check.stable)}`;
}

/** The table's lines, or none without checks. */
export function checksTable(checks: readonly CustomCheckResult[] | undefined): string[] {
  if (!checks || checks.length === 0) return [];
  const lines = [
    "",
    "**Custom checks**",
    "",
    "| check | mode | rule | canary · stable | verdict |",
    "|---|---|---|---|---|",
  ];
  for (const check of checks) {
    const mode = check.mode === "report" ? "report only" : "fails the rollout";
    lines.push(
      `| ${markdownText(check.name)} | ${mode} | ${markdownText(rule(check))} | ${markdownText(value(check))} | ${STATUS[check.status].replace(/ /g, NBSP)}: ${markdownText(check.summary)} |`,
    );
  }
  return lines;
}
