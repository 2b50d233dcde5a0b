/**
 * The comment's Mermaid charts, read at a glance: each line has its own contrasting colour (set
 * through Mermaid's `themeVariables.xyChart.plotColorPalette`, applied to the plots in order) and a
 * name in a text legend under the chart, since `xychart-beta` draws no legend of its own.
 */
import { mermaidLabel } from "../untrusted-text.ts";
import { errorRate, type ReportModel, type StageRow } from "./model.ts";

/** One plotted line: its name, the colour a reader is told about, and the hex Mermaid draws. */
export interface ChartLine {
  name: string;
  colour: string;
  hex: string;
  values: number[];
}

/** GitHub's own Primer red, blue and grey: distinct for most colour vision, readable on white and dark. */
export const CANARY = { colour: "red", hex: "#d1242f" } as const;
export const STABLE = { colour: "blue", hex: "#0969da" } as const;
export const LIMIT = { colour: "grey", hex: "#6e7781" } as const;
export const WEIGHT = { colour: "purple", hex: "#8250df" } as const;

const CHART_HEIGHT_PX = 320;

const percent = (x: number): number => Number((x * 100).toFixed(3));
/** Mermaid quotes labels with `"`; no quote, directive or comment may come from a label's text. */
const label = mermaidLabel;

function xychart(title: string, xLabels: string[], yAxis: string, top: number, lines: ChartLine[]): string {
  const palette = lines.map((l) => l.hex).join(", ");
  return [
    "```mermaid",
    // A short chart keeps the table and the verdict on the reader's screen.
    `%%{init: {"xyChart": {"height": ${CHART_HEIGHT_PX}}, "themeVariables": {"xyChart": {"plotColorPalette": "${palette}"}}}}%%`,
    "xychart-beta",
    `  title ${label(title)}`,
    `  x-axis [${xLabels.map(label).join(", ")}]`,
    `  y-axis ${label(yAxis)} 0 --> ${Number(top.toFixed(3))}`,
    ...lines.map((l) => `  line [${l.values.join(", ")}]`),
    "```",
    "",
    // The legend in the order the lines are drawn, so the palette and the names cannot drift apart.
    lines.map((l) => `— ${l.name} (${l.colour})`).join(" · "),
  ].join("\n");
}

/** The lines of the error-rate chart (canary, stable, limit), or undefined with no numbers yet. */
export function errorRateLines(model: ReportModel): { stages: StageRow[]; lines: ChartLine[] } | undefined {
  const stages = model.stages.filter(
    (s) => errorRate(s.canary) !== undefined || errorRate(s.stable) !== undefined,
  );
  if (stages.length === 0) return undefined;
  const lines: ChartLine[] = [
    { name: "canary", ...CANARY, values: stages.map((s) => percent(errorRate(s.canary) ?? 0)) },
    // At 100 % the stable version gets no traffic: plot the baseline it was compared with instead.
    {
      name: "stable",
      ...STABLE,
      values: stages.map((s) => percent(errorRate(s.stable) ?? s.stableBaselineRate ?? 0)),
    },
  ];
  const firstLimit = stages.find((s) => s.limit !== undefined)?.limit;
  if (firstLimit !== undefined)
    lines.push({ name: "limit", ...LIMIT, values: stages.map((s) => percent(s.limit ?? firstLimit)) });
  return { stages, lines };
}

/** Mermaid xychart of canary and stable error rate (%) by stage with the limit drawn. */
export function errorRateChart(model: ReportModel): string | undefined {
  const data = errorRateLines(model);
  if (!data) return undefined;
  const top = Math.max(...data.lines.flatMap((l) => l.values)) * 1.2 || 1;
  const xLabels = data.stages.map((s) => `${s.weight}%`);
  // Mermaid draws no line through a single point: one stage's rates are drawn flat across it.
  if (data.stages.length === 1) {
    const only = xLabels[0] as string;
    return xychart("Error rate by stage (%)", [`${only} start`, `${only} end`], "error rate (%)", top, [
      ...data.lines.map((l) => ({ ...l, values: [...l.values, ...l.values] })),
    ]);
  }
  return xychart("Error rate by stage (%)", xLabels, "error rate (%)", top, data.lines);
}

const DECIDED: Partial<Record<NonNullable<StageRow["decision"]>, string>> = {
  pass: "pass",
  fail: "FAIL",
  inconclusive: "unsure",
  skipped: "no test",
  unreachable: "no metrics",
  aborted: "cancelled",
  halted: "stopped",
};

const clock = (ms: number): string => {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};

/**
 * The canary's weight over the rollout's time, one point per decision labelled with the time since
 * the start and what was decided, ending at the weight the rollout left (0 after a rollback).
 */
export function weightChart(model: ReportModel): string | undefined {
  const decided = model.stages.filter((s) => s.decision && s.decision !== "running");
  if (decided.length === 0) return undefined;
  const start = Date.parse(model.stages[0]?.startedAt ?? "");
  let elapsed = 0;
  const xLabels = ["start"];
  const weights = [0];
  for (const s of decided) {
    const began = Date.parse(s.startedAt ?? "");
    // Without start times, the stages' durations added up give the same clock.
    elapsed =
      Number.isFinite(began) && Number.isFinite(start)
        ? began - start + (s.durationMs ?? 0)
        : elapsed + (s.durationMs ?? 0);
    xLabels.push(
      `${clock(elapsed)} ${s.weight}% ${DECIDED[s.decision as keyof typeof DECIDED] ?? s.decision}`,
    );
    weights.push(s.weight);
  }
  if (model.result && model.weight !== weights[weights.length - 1]) {
    xLabels.push(model.result === "rolled-back" ? "rolled back" : (model.result ?? "end"));
    weights.push(model.weight);
  }
  // Scaled to the highest weight reached, so a rollback at 1 % is not a flat line at the bottom.
  const highest = Math.max(...weights);
  const top = highest >= 100 ? 100 : Math.max(highest * 1.2, 1);
  return xychart("Canary weight at each decision (%)", xLabels, "canary weight (%)", top, [
    { name: "canary weight", ...WEIGHT, values: weights },
  ]);
}
