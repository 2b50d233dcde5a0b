/**
 * The report, built from the engine's events: pure, so the PR comment, the job summary and the
 * `report` output all say the same thing.
 */
import { redactUrl, scrub } from "../redact.ts";
import type { RolloutEvent } from "../rollout/events.ts";
import { codeSpanText } from "../untrusted-text.ts";
import { harmOf, headline } from "./headline.ts";
import type { CommitList, HeadlineSettings, ReportModel, StageRow } from "./types.ts";

export type { ReportModel, StageRow } from "./types.ts";

/** A version's error rate over its counts; undefined without requests. */
export const errorRate = (c?: { requests: number; errors: number }): number | undefined =>
  c && c.requests > 0 ? c.errors / c.requests : undefined;

/** Where a person continues or aborts a paused rollout (the "what next" line). */
const PROMOTE_WORKFLOW = "the promote workflow (workflow_dispatch)";

export interface ReportContext extends HeadlineSettings {
  namespace: string;
  virtualService: string;
  latencyThresholdMs?: number;
  runUrl?: string;
  /** Links show it only through redactUrl (scheme://host[:port] and the non-secret path). */
  prometheusUrl?: string;
  queries?: { canary: string; stable: string };
  /** The commits since the last promoted release, as far as GitHub has answered (./commits-github.ts). */
  commits?: CommitList;
}

function prometheusGraph(
  base: string,
  expr: string,
  startIso: string | undefined,
  endIso: string | undefined,
): string {
  const end = endIso ? Date.parse(endIso) : Date.now();
  const start = startIso ? Date.parse(startIso) : end - 3_600_000;
  const rangeSeconds = Math.max(60, Math.ceil((end - start) / 1000) + 60);
  const params = new URLSearchParams({
    "g0.expr": expr,
    "g0.tab": "0",
    "g0.range_input": `${rangeSeconds}s`,
    "g0.end_input": new Date(end + 30_000)
      .toISOString()
      .replace("T", " ")
      .replace(/\.\d+Z$/, ""),
  });
  return `${redactUrl(base)}/graph?${params.toString()}`;
}

export function buildReport(events: readonly RolloutEvent[], context: ReportContext): ReportModel {
  const model = emptyModel(context);
  for (const event of events) applyEvent(model, event);
  if (context.prometheusUrl && context.queries) {
    model.links.prometheus = {
      canary: prometheusGraph(
        context.prometheusUrl,
        `sum(rate(${context.queries.canary}[1m]))`,
        model.startedAt,
        model.updatedAt,
      ),
      stable: prometheusGraph(
        context.prometheusUrl,
        `sum(rate(${context.queries.stable}[1m]))`,
        model.startedAt,
        model.updatedAt,
      ),
    };
  }
  // Messages can quote what a library said, credentials included: none reaches the report.
  model.reason = model.reason === undefined ? undefined : scrub(model.reason);
  model.warnings = model.warnings.map(scrub);
  model.finalization = model.finalization.map(scrub);
  for (const stage of model.stages) if (stage.reason !== undefined) stage.reason = scrub(stage.reason);
  if (context.commits) model.commits = context.commits;
  model.headline = headline(model, context);
  model.next.push(...nextSteps(model));
  return model;
}

function emptyModel(context: ReportContext): ReportModel {
  return {
    schema: 1,
    namespace: context.namespace,
    virtualService: context.virtualService,
    stagesPlanned: [],
    stages: [],
    failed: false,
    weight: 0,
    warnings: [],
    links: { run: context.runUrl },
    latencyThresholdMs: context.latencyThresholdMs,
    finalization: [],
    next: [],
  };
}

/** The stage's row, added in stage order the first time an event names the stage. */
function stageRow(model: ReportModel, index: number, weight: number): StageRow {
  let row = model.stages.find((s) => s.index === index);
  if (!row) {
    row = { index, weight };
    model.stages.push(row);
    model.stages.sort((a, b) => a.index - b.index);
  }
  return row;
}

/** Folds one event into the model; the events arrive in order, so a later one overrides. */
function applyEvent(model: ReportModel, e: RolloutEvent): void {
  model.updatedAt = e.at;
  switch (e.type) {
    case "started":
      model.command = e.command;
      model.rolloutId = e.rolloutId;
      model.commit = e.commit;
      model.stagesPlanned = e.stages;
      model.startedAt ??= e.at;
      model.weight = e.weight;
      break;
    case "weight": {
      const row = stageRow(model, e.stage, e.weight);
      row.startedAt = e.at;
      row.decision = "running";
      model.weight = e.weight;
      break;
    }
    case "analysis":
    case "stage-end":
      applyAnalysis(stageRow(model, e.stage, e.weight), e);
      break;
    case "recorded-stage":
      Object.assign(stageRow(model, e.result.stage, e.result.weight), {
        decision: e.result.decision,
        reason: e.result.reason,
        durationMs: e.result.durationMs,
        canary: e.result.canary,
        stable: e.result.stable,
      });
      break;
    case "warning":
      model.warnings.push(e.message);
      break;
    case "preview":
      model.command = "preview";
      model.preview = { header: e.header, value: e.value, routes: e.routes };
      break;
    case "checks":
      model.checks = e.checks;
      break;
    case "finalize":
      model.finalization.push(e.message);
      if (e.step === "traffic-on-stable") model.weight = 0;
      break;
    case "finished":
      model.result = e.result;
      model.reason = e.reason;
      model.failed = e.failed;
      model.weight = e.weight;
      if (e.finalized !== undefined) model.finalized = e.finalized;
      break;
  }
}

/** A stage's counts, error test and latency from an interval's verdict or the stage's end. */
function applyAnalysis(row: StageRow, e: Extract<RolloutEvent, { type: "analysis" | "stage-end" }>): void {
  const verdict = e.verdict;
  if (verdict) {
    if (verdict.canary) row.canary = verdict.canary;
    if (verdict.stable) row.stable = verdict.stable;
    const errors = verdict.signals.find((s) => s.signal === "errors");
    if (errors) {
      row.limit = errors.p1;
      row.baseline = errors.p0;
      row.stableBaselineRate = errors.stableRate;
      row.llr = errors.llr;
      row.rejectAt = errors.boundaries.reject;
    }
    if (verdict.canary?.slow !== undefined)
      row.latency = { canarySlow: verdict.canary.slow, stableSlow: verdict.stable?.slow };
    const harm = harmOf(verdict);
    if (harm) row.harm = harm;
  }
  if (e.type === "stage-end") {
    row.decision = e.decision;
    row.reason = e.reason;
    row.durationMs = e.durationMs;
  } else {
    row.durationMs = e.elapsedMs;
    row.reason = verdict?.reason;
  }
}

/** What a person does next, given how the rollout ended (or that it has not). */
function nextSteps(model: ReportModel): string[] {
  // The id may come from a record anyone who edits the VirtualService can write: shown as code.
  const id = model.rolloutId ? `, \`rollout-id: ${codeSpanText(model.rolloutId)}\`` : "";
  if (model.result === "paused") {
    return [
      `Continue: run ${PROMOTE_WORKFLOW} with \`command: promote\`${id}.`,
      `Abort: run it with \`command: rollback\`${id}.`,
    ];
  }
  if (model.result === "rolled-back") {
    return [
      "All traffic is on the stable version. Fix the canary and push again; the next rollout starts from the first stage.",
    ];
  }
  if (model.finalized === true) {
    return [
      "The stable Deployment runs the promoted version and has all traffic. For the next release, update the canary Deployment and run the same workflow again.",
    ];
  }
  if (model.finalized === false) {
    return [
      `Traffic stays on the canary, which passed every stage, until the stable Deployment is ready. Fix what keeps it from starting, then run ${PROMOTE_WORKFLOW} with \`command: promote\`${id} to finish the finalization.`,
    ];
  }
  if (model.result === "promoted") {
    return [
      "The canary has all traffic. For the next release, swap `stable-subset` and `canary-subset` (or update the stable Deployment and run `command: rollback`).",
    ];
  }
  if (!model.result) return ["The rollout is in progress; this comment is updated at every stage."];
  return [];
}
