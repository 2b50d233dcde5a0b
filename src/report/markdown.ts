/**
 * One renderer for every report: the pull-request comment and the job summary are the same
 * Markdown, so they can never disagree. GitHub renders the Mermaid `xychart-beta` blocks as charts.
 * The table fits a comment's ~880 px: few columns, short headers, and a no-break space between a
 * number and its unit so no cell wraps ("5.00 %" never becomes "5.00 / %").
 */
import { scrub } from "../redact.ts";
import { codeSpanText, markdownText } from "../untrusted-text.ts";
import { errorRateChart, weightChart } from "./chart.ts";
import { checksTable } from "./checks-table.ts";
import { renderCommits } from "./commits.ts";
import { NBSP, pct } from "./format.ts";
import { errorRate, type ReportModel, type StageRow } from "./model.ts";

/** GitHub rejects comments over 65,536 characters; stay well below, cutting at a line. */
export const MAX_COMMENT_CHARS = 60_000;

/** "0.17 % (2/1200)": the rate a reader compares, then the errors and requests it comes from. */
const counts = (c?: { requests: number; errors: number }): string =>
  c ? `${pct(errorRate(c))}${NBSP}(${c.errors}/${c.requests})` : "—";
const unbroken = (text: string): string => text.replace(/ /g, NBSP);
const duration = (ms?: number): string => {
  if (ms === undefined) return "—";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${s % 60 ? `${String(s % 60).padStart(2, "0")}s` : ""}`;
};
/** Text that may quote the cluster, Prometheus or GitHub, for one line or table cell: shown as text. */
const cell = markdownText;

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

export function renderMarkdown(model: ReportModel): string {
  const lines: string[] = [marker(model.namespace, model.virtualService)];
  const title = titleOf(model);
  lines.push(`### ${title}: \`${model.namespace}/${model.virtualService}\` canary at ${model.weight} %`);
  // The headline quotes the engine's reason, which may quote the cluster or Prometheus: text only.
  const lead = model.headline ?? model.reason;
  if (lead) lines.push("", cell(lead.endsWith(".") ? lead : `${lead}.`));
  const facts = [
    model.rolloutId && `rollout \`${codeSpanText(model.rolloutId)}\``,
    model.commit && `commit \`${codeSpanText(model.commit.slice(0, 7))}\``,
    model.command && `command \`${model.command}\``,
    model.stagesPlanned.length > 0 && `stages ${model.stagesPlanned.join(" → ")}`,
  ].filter(Boolean);
  if (facts.length) lines.push("", facts.join(" · "));

  lines.push(...stageSection(model));
  lines.push(...checksTable(model.checks));
  // The commits since the last promoted release, before the charts: a rollback's suspects, a
  // promotion's release notes.
  const commits = renderCommits(model);
  if (commits.length > 0) lines.push("", ...commits);
  lines.push(...chartSection(model));
  if (model.finalization.length > 0)
    lines.push(
      "",
      // A rollout that did not promote only readied its canary: no "finalization" to speak of.
      model.result === "promoted"
        ? "**Finalization** (the stable Deployment gets the promoted version):"
        : "**Deployments**:",
      "",
      ...model.finalization.map((step) => `- ${cell(step)}`),
    );
  lines.push(...previewLines(model));
  if (model.warnings.length > 0) lines.push("", ...model.warnings.map((w) => `> [!WARNING]\n> ${cell(w)}`));
  if (model.next.length > 0) lines.push("", `**Next:** ${model.next.join(" ")}`);
  const links = [
    model.links.run && `[workflow run](${model.links.run})`,
    model.links.prometheus &&
      `Prometheus: [canary](${model.links.prometheus.canary}) · [stable](${model.links.prometheus.stable})`,
  ].filter(Boolean);
  if (links.length) lines.push("", links.join(" · "));
  lines.push(
    "",
    "<sub>Judged by anytime-valid sequential tests on the canary's evidence across stages; see the action's docs/analysis.md.</sub>",
  );
  // The comment, the summary and the output are written by the action, not masked by the runner.
  return truncate(scrub(lines.join("\n")));
}

/** The stage table and why each stage was decided; nothing before the first stage. */
function stageSection(model: ReportModel): string[] {
  const lines: string[] = [];
  if (model.stages.length === 0) return lines;
  const latency = model.latencyThresholdMs !== undefined;
  lines.push(
    "",
    `| stage | weight | time | canary errors | stable errors | limit |${latency ? ` slow >${NBSP}${model.latencyThresholdMs}${NBSP}ms |` : ""} verdict |`,
    `|---|---|---|---|---|---|${latency ? "---|" : ""}---|`,
  );
  for (const s of model.stages) {
    const slow = latency
      ? ` ${s.latency ? `${s.latency.canarySlow}/${s.latency.stableSlow ?? "—"}` : "—"} |`
      : "";
    lines.push(
      `| ${s.index + 1} | ${s.weight}${NBSP}% | ${duration(s.durationMs)} | ${counts(s.canary)} | ${counts(s.stable)} | ${pct(s.limit)} |${slow} ${s.decision ? unbroken(DECISION[s.decision]) : "—"} |`,
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
  return lines;
}

/** The error rate and weight charts (none before the first stage). */
function chartSection(model: ReportModel): string[] {
  const lines: string[] = [];
  if (model.stages.length === 0) return lines;
  const chart = errorRateChart(model);
  if (chart) lines.push("", chart);
  const weights = weightChart(model);
  if (weights) lines.push("", weights);
  return lines;
}

/** Cuts at a line boundary below GitHub's limit, keeping the marker, and says so. */
export function truncate(text: string, max = MAX_COMMENT_CHARS): string {
  if (text.length <= max) return text;
  const note =
    "\n\n… (report truncated to fit GitHub's comment limit; the full report is in the job summary and the `report` output)";
  const cut = text.lastIndexOf("\n", max - note.length);
  return text.slice(0, cut > 0 ? cut : max - note.length) + note;
}

/** `command: preview`: the header to send, as a curl line (header and value are checked tokens). */
function previewLines(model: ReportModel): string[] {
  const p = model.preview;
  if (!p) return [];
  return [
    "",
    `**Preview:** requests carrying the header \`${p.header}: ${p.value}\` go to the canary (route ${p.routes.map((r) => `\`${r}\``).join(", ")}); users' requests stay on stable. For example:`,
    "",
    "```sh",
    `curl -H '${p.header}: ${p.value}' https://<your service>/`,
    "```",
  ];
}

function titleOf(model: ReportModel): string {
  if (model.command === "preview") return "🔎 Preview";
  if (model.result === "promoted" && model.finalized === true) return "✅ Promoted and finalized";
  if (model.result && model.finalized === false) return "⚠️ Promoted, not finalized";
  return model.result ? (HEADLINE[model.result] as string) : "⏳ In progress";
}
