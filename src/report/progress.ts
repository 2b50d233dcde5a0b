/** Live progress on the log: one line per stage change and per analysis, as people read a terminal. */
import { scrub } from "../redact.ts";
import type { RolloutEvent } from "../rollout/events.ts";
import { logText } from "../untrusted-text.ts";

const pct = (errors: number, requests: number) =>
  requests > 0 ? `${((100 * errors) / requests).toFixed(2)} %` : "—";

/**
 * The log line for an event, with every registered secret taken out (the runner masks too; belt and
 * braces) and no line the runner could take as a workflow command (reasons quote the cluster and
 * Prometheus). The result line leads with the report's headline when the caller has it.
 */
export function progressLine(e: RolloutEvent, stages: number, headline?: string): string | undefined {
  const line =
    e.type === "finished" && headline
      ? `◆ result ${e.result}, canary at ${e.weight} %: ${headline}`
      : rawLine(e, stages);
  return line === undefined ? undefined : logText(scrub(line));
}

function rawLine(e: RolloutEvent, stages: number): string | undefined {
  switch (e.type) {
    case "started":
      return `▶ ${e.command} ${e.rolloutId} (commit ${e.commit.slice(0, 7)}): stages ${e.stages.join(" → ")}, from stage ${e.fromStage + 1}, canary now at ${e.weight} %`;
    case "weight":
      return `● stage ${e.stage + 1}/${stages}: canary weight set to ${e.weight} %`;
    case "analysis": {
      const v = e.verdict;
      const c = v.canary
        ? `canary ${v.canary.requests} req / ${v.canary.errors} err (${pct(v.canary.errors, v.canary.requests)})`
        : "canary —";
      const s = v.stable
        ? `stable ${v.stable.requests} req / ${v.stable.errors} err (${pct(v.stable.errors, v.stable.requests)})`
        : "stable —";
      return `  stage ${e.stage + 1}/${stages} · ${e.weight} % · ${Math.round(e.elapsedMs / 1000)}s · ${c} · ${s} · ${v.decision}: ${v.reason}`;
    }
    case "stage-end":
      return `■ stage ${e.stage + 1}/${stages} (${e.weight} %): ${e.decision} after ${Math.round(e.durationMs / 1000)}s: ${e.reason}`;
    case "recorded-stage":
      return `  earlier: stage ${e.result.stage + 1}/${stages} (${e.result.weight} %) ${e.result.decision}: ${e.result.reason}`;
    case "warning":
      return `⚠ ${e.message}`;
    case "checks":
      return (
        e.checks.map((c) => `  check ${c.name} (${c.mode}): ${c.status}: ${c.summary}`).join("\n") ||
        undefined
      );
    case "passed":
      return undefined;
    case "finalize":
      return `◇ finalize: ${e.message}`;
    case "finished":
      return `◆ result ${e.result}, canary at ${e.weight} %: ${e.reason}`;
  }
}
