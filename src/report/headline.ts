/**
 * The sentence that leads every report (the comment's and the summary's first line, the step's
 * error line, the log's result line): the outcome, then the counts and rates a person checks, then
 * the limit, e.g. "Rolled back at 1 %: 3 of 7 canary requests failed (42.9 %); stable 2 of 800
 * (0.25 %); limit 5 %." The statistics behind a decision (e-values, α, β) stay in "Why each stage
 * was decided", where the stage's own reason is shown in full.
 */
import type { Verdict } from "../analysis/judge.ts";
import type { Harm, HeadlineSettings, ReportModel, StageRow } from "./types.ts";

export type { Harm, HeadlineSettings } from "./types.ts";

/** The harm a failing verdict found, or undefined for any other verdict. */
export function harmOf(verdict: Verdict): Harm | undefined {
  if (verdict.decision !== "fail" || (verdict.rule !== "harm-limit" && verdict.rule !== "harm-stable"))
    return undefined;
  const rule = verdict.rule;
  // The judge convicts on the first signal whose test crossed its boundary; so does this.
  const signal =
    verdict.signals.find((s) =>
      rule === "harm-stable" ? s.relLogE >= s.boundaries.reject : s.absLogE >= s.boundaries.reject,
    ) ?? verdict.signals[0];
  if (!signal) return undefined;
  return {
    signal: signal.signal,
    rule,
    limit: signal.p1,
    late: verdict.late === true,
    pairedCanaryRate: signal.pairedCanaryRate,
    stableRate: signal.stableRate,
  };
}

/** "42.9 %", "0.25 %", "0.081 %", "5 %": the table's digits (./markdown.ts), without trailing zeros. */
export function percent(fraction: number): string {
  const p = fraction * 100;
  if (p > 0 && p < 0.001) return "< 0.001 %";
  return `${Number(p.toFixed(p >= 10 ? 1 : p >= 0.1 ? 2 : 3))} %`;
}

const count = (n: number): string => n.toLocaleString("en-US");

interface Totals {
  bad: number;
  requests: number;
}

function totals(rows: readonly StageRow[], version: "canary" | "stable", signal: Harm["signal"]): Totals {
  let bad = 0;
  let requests = 0;
  for (const row of rows) {
    const c = row[version];
    if (!c) continue;
    const k = signal === "errors" ? c.errors : c.slow;
    if (k === undefined) continue;
    bad += k;
    requests += c.requests;
  }
  return { bad, requests };
}

/** "3 of 7 canary requests failed (42.9 %); stable 2 of 800 (0.25 %); limit 5 %". */
function figures(
  rows: readonly StageRow[],
  signal: Harm["signal"],
  limit: number | undefined,
  latencyThresholdMs: number | undefined,
): string {
  const canary = totals(rows, "canary", signal);
  const stable = totals(rows, "stable", signal);
  const verb = signal === "errors" ? "failed" : `were slower than ${latencyThresholdMs} ms`;
  const over = rows.length > 1 ? ` over ${rows.length} stages` : "";
  const parts = [
    canary.requests > 0
      ? `${count(canary.bad)} of ${count(canary.requests)} canary requests ${verb} (${percent(canary.bad / canary.requests)})${over}`
      : `no canary requests were seen${over}`,
    stable.requests > 0
      ? `stable ${count(stable.bad)} of ${count(stable.requests)} (${percent(stable.bad / stable.requests)})`
      : "stable served none",
  ];
  if (limit !== undefined) parts.push(`limit ${percent(limit)}`);
  return parts.join("; ");
}

/** Why a failed stage failed, in plain words (its e-value and α follow in the stage's reason). */
function plainWhy(harm: Harm, latencyThresholdMs: number | undefined, maxRatio: number | undefined): string {
  const what =
    harm.signal === "errors" ? "error rate" : `share of requests slower than ${latencyThresholdMs} ms`;
  // A canary that went bad late is convicted while the rates over the whole rollout, which the
  // figures before this sentence give, look fine: the judge says so (`late`).
  if (harm.rule === "harm-limit")
    return harm.late
      ? `The canary's ${what} went above the limit in its latest windows.`
      : `The canary's ${what} is above the limit.`;
  const paired = harm.pairedCanaryRate;
  const stable = harm.stableRate;
  const ratio = maxRatio !== undefined ? `more than ${maxRatio}×` : "far above";
  if (harm.late) {
    const rates =
      paired !== undefined && stable !== undefined
        ? ` (${percent(paired)} against ${percent(stable)} over all the windows both served)`
        : "";
    return `In its latest windows the canary's ${what} became ${ratio} stable's at the same moments${rates}.`;
  }
  const rates =
    paired !== undefined && stable !== undefined ? ` (${percent(paired)} against ${percent(stable)})` : "";
  return `At the same moments the canary's ${what} was ${ratio} stable's${rates}.`;
}

function outcome(model: ReportModel, decided: StageRow | undefined): string {
  // A person's edit to the weights ended it: the reason that follows says who changed what.
  if (decided?.decision === "halted") return "Stopped";
  if (model.result === "promoted") return "Promoted";
  if (model.result === "paused") return `Paused at ${model.weight} %`;
  return decided ? `Rolled back at ${decided.weight} %` : "Rolled back";
}

/**
 * The leading sentence for a finished report with analysed stages; the engine's reason, as it is,
 * for every other report (a status, a rollback by command, a promotion without analysis).
 */
export function headline(model: ReportModel, settings: HeadlineSettings = {}): string | undefined {
  const reason = model.reason;
  const analysed = model.stages.filter((s) => s.canary || s.stable);
  if (!model.result || model.result === "unchanged" || reason === undefined || analysed.length === 0)
    return reason;
  const failed = model.stages.find((s) => s.decision === "fail");
  const decided = failed ?? model.stages.filter((s) => s.decision && s.decision !== "running").at(-1);
  const harm = failed?.harm;
  const signal = harm?.signal ?? "errors";
  const limit =
    signal === "latency"
      ? harm?.limit
      : (analysed.find((s) => s.limit !== undefined)?.limit ?? settings.maxErrorRate);
  const said = outcome(model, decided);
  const lead = `${said}: ${figures(analysed, signal, limit, model.latencyThresholdMs)}.`;
  // A failure's reason is the judge's statistic; a person reads the plain why, the statistic follows below.
  if (harm) return `${lead} ${plainWhy(harm, model.latencyThresholdMs, settings.maxRatio)}`;
  // "Paused at 10 % after the stage passed; …" goes on from the lead, not again from the outcome.
  const rest = reason.startsWith(said) ? reason.slice(said.length).replace(/^[\s,:;]+/, "") : reason;
  return rest ? `${lead} ${rest.charAt(0).toUpperCase()}${rest.slice(1)}` : lead;
}
