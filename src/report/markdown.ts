/**
 * One renderer for every report: the pull-request comment and the job summary are the same
 * Markdown, so they can never disagree. GitHub renders the Mermaid `xychart-beta` block as a chart.
 */
import { scrub } from "../redact.ts";
import type { ReportModel, StageRow } from "./model.ts";

/** GitHub rejects comments over 65,536 characters; stay well below, cutting at a line. */
export const MAX_COMMENT_CHARS = 60_000;

const pct = (x: number | undefined): string => {
  if (x === undefined || !Number.isFinite(x)) return "—";
  const p = x * 100;
  return `${p < 0.1 && p > 0 ? p.toFixed(3) : p < 10 ? p.toFixed(2) : p.toFixed(1)} %`;
};
const rate = (c?: { requests: number; errors: number }): number | undefined =>
  c && c.requests > 0 ? c.errors / c.requests : undefined;
const duration = (ms?: number): string => {
  if (ms === undefined) return "—";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60 ? `${String(s % 60).padStart(2, "0")}s` : ""}`;
};
const cell = (text: string): string => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

const HEADLINE: Record<string, string> = {
  promoted: "✅ Promoted",
  "rolled-back": "⏪ Rolled back",
  paused: "⏸️ Paused",
  unchanged: "ℹ️ Status",
};

const DECISION: Record<NonNullable<StageRow["decision"]>, string> = {
  pass: "✅ pass",
  fail: "❌ fail",
  inconclusive: "⚠️ inconclusive",
  skipped: "⏭️ no analysis",
  unreachable: "⚠️ metrics unreachable",
  aborted: "🛑 cancelled",
  halted: "✋ stopped by a person",
  running: "⏳ running",
};

/** The hidden marker that finds this VirtualService's comment again. */
export function marker(namespace: string, name: string): string {
  return `<!-- istio-canary-report namespace=${namespace} virtualservice=${name} -->`;
}

/** Mermaid xychart of canary vs stable error rate (%) by stage, or undefined with no numbers yet. */
export function errorRateChart(model: ReportModel): string | undefined {
  const rows = model.stages.filter((s) => rate(s.canary) !== undefined || rate(s.stable) !== undefined);
  if (rows.length === 0) return undefined;
  const canary = rows.map((s) => Number(((rate(s.canary) ?? 0) * 100).toFixed(3)));
  // At 100 % the stable version gets no traffic: plot the baseline it was compared with instead.
  const stable = rows.map((s) => Number(((rate(s.stable) ?? s.stableBaselineRate ?? 0) * 100).toFixed(3)));
  const limit = rows.find((s) => s.limit !== undefined)?.limit;
  const top = Math.max(...canary, ...stable, limit !== undefined ? limit * 100 : 0) * 1.2 || 1;
  return [
    "```mermaid",
    "xychart-beta",
    '  title "Error rate by stage: canary (first line) vs stable (second line)"',
    `  x-axis [${rows.map((s) => `"${s.weight}%"`).join(", ")}]`,
    `  y-axis "error rate (%)" 0 --> ${Number(top.toFixed(3))}`,
    `  line [${canary.join(", ")}]`,
    `  line [${stable.join(", ")}]`,
    "```",
  ].join("\n");
}

export function renderMarkdown(model: ReportModel): string {
  const lines: string[] = [marker(model.namespace, model.virtualService)];
  const title =
    model.result === "promoted" && model.finalized === true
      ? "✅ Promoted and finalized"
      : model.result && model.finalized === false
        ? "⚠️ Promoted, not finalized"
        : model.result
          ? HEADLINE[model.result]
          : "⏳ In progress";
  lines.push(`### ${title}: \`${model.namespace}/${model.virtualService}\` canary at ${model.weight} %`);
  if (model.reason) lines.push("", model.reason.endsWith(".") ? model.reason : `${model.reason}.`);
  const facts = [
    model.rolloutId && `rollout \`${model.rolloutId}\``,
    model.commit && `commit \`${model.commit.slice(0, 7)}\``,
    model.command && `command \`${model.command}\``,
    model.stagesPlanned.length > 0 && `stages ${model.stagesPlanned.join(" → ")}`,
  ].filter(Boolean);
  if (facts.length) lines.push("", facts.join(" · "));

  if (model.stages.length > 0) {
    const latency = model.latencyThresholdMs !== undefined;
    lines.push(
      "",
      `| stage | weight | duration | canary requests | canary errors | canary error rate | stable requests | stable errors | stable error rate | limit |${latency ? ` > ${model.latencyThresholdMs} ms (canary / stable) |` : ""} verdict |`,
      `|---|---|---|---|---|---|---|---|---|---|${latency ? "---|" : ""}---|`,
    );
    for (const s of model.stages) {
      const slow = latency
        ? ` ${s.latency ? `${s.latency.canarySlow} / ${s.latency.stableSlow ?? "—"}` : "—"} |`
        : "";
      lines.push(
        `| ${s.index + 1} | ${s.weight} % | ${duration(s.durationMs)} | ${s.canary?.requests ?? "—"} | ${s.canary?.errors ?? "—"} | ${pct(rate(s.canary))} | ${s.stable?.requests ?? "—"} | ${s.stable?.errors ?? "—"} | ${pct(rate(s.stable))} | ${pct(s.limit)} |${slow} ${s.decision ? DECISION[s.decision] : "—"} |`,
      );
    }
    const reasons = model.stages.filter((s) => s.reason && s.decision && s.decision !== "running");
    if (reasons.length > 0) {
      lines.push("", "<details><summary>Why each stage was decided</summary>", "");
      for (const s of reasons) {
        const llr =
          s.llr !== undefined && s.rejectAt !== undefined
            ? ` (evidence of harm, log e-value: ${s.llr.toFixed(2)}; rolls back at ${s.rejectAt.toFixed(2)})`
            : "";
        lines.push(`- **Stage ${s.index + 1} (${s.weight} %)**: ${cell(s.reason ?? "")}${llr}`);
      }
      lines.push("", "</details>");
    }
    const chart = errorRateChart(model);
    if (chart) lines.push("", chart);
  }
  if (model.finalization.length > 0)
    lines.push(
      "",
      "**Finalization** (the stable Deployment gets the promoted version):",
      "",
      ...model.finalization.map((step) => `- ${cell(step)}`),
    );
  if (model.warnings.length > 0) lines.push("", ...model.warnings.map((w) => `> [!WARNING]\n> ${cell(w)}`));
  if (model.next.length > 0) lines.push("", "**Next:** " + model.next.join(" "));
  const links = [
    model.links.run && `[workflow run](${model.links.run})`,
    model.links.prometheus &&
      `Prometheus: [canary](${model.links.prometheus.canary}) · [stable](${model.links.prometheus.stable})`,
  ].filter(Boolean);
  if (links.length) lines.push("", links.join(" · "));
  lines.push(
    "",
    "<sub>Judged by a sequential probability ratio test per stage; see the action's docs/analysis.md.</sub>",
  );
  // The comment, the summary and the output are written by the action, not masked by the runner.
  return truncate(scrub(lines.join("\n")));
}

/** Cuts at a line boundary below GitHub's limit, keeping the marker, and says so. */
export function truncate(text: string, max = MAX_COMMENT_CHARS): string {
  if (text.length <= max) return text;
  const note =
    "\n\n… (report truncated to fit GitHub's comment limit; the full report is in the job summary and the `report` output)";
  const cut = text.lastIndexOf("\n", max - note.length);
  return text.slice(0, cut > 0 ? cut : max - note.length) + note;
}
