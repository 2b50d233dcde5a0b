/**
 * The fault suite's one table: case | what must hold | measured | ok. Printed at the end of the run
 * and written as JSON (test/faults/results.json, git-ignored) for scripts/faults-readme.ts.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";

export const RESULTS_FILE = resolve(import.meta.dirname, "results.json");

export interface FaultCase {
  /** Issue 12's item number and a letter, e.g. "2b". */
  id: string;
  title: string;
  must: string;
  /** The case's time limit (default 180 s): a case that waits out a long outage needs more. */
  timeoutMs?: number;
  run(): Promise<Measured>;
}

export interface Measured {
  measured: string;
  ok: boolean;
  /** Counts that the suite adds up over all cases (issue 12's figures). */
  figures?: Figures;
}

export interface Figures {
  editsUndone?: number;
  writesAfterSignal?: number;
  secretsFound?: number;
  /** Issue 20: all traffic routed to a stable that does not run the promoted template or has no ready pod. */
  unservingStableRoutes?: number;
  /** Issue 20: a canary that passed every stage rolled back to the old version. */
  passesUndone?: number;
}

const TOTALS: Array<[keyof Figures, string]> = [
  ["editsUndone", "person's edits undone"],
  ["writesAfterSignal", "writes after a signal other than the rollback"],
  ["secretsFound", "secrets found in any channel"],
  ["unservingStableRoutes", "routes to a stable not running the promoted template with ready pods"],
  ["passesUndone", "passed promotions undone"],
];

/** One row per figure of issue 12 that must be 0, over every case (of this run) that measures it. */
export function totalRows(rows: Row[]): Row[] {
  return TOTALS.flatMap(([key, name]) => {
    const counted = rows.filter((r) => r.figures?.[key] !== undefined);
    if (counted.length === 0) return [];
    const sum = counted.reduce((s, r) => s + (r.figures?.[key] ?? 0), 0);
    return {
      id: "Σ",
      title: `${name}, all cases`,
      must: "0",
      measured: `${sum} over ${counted.length} case(s) (${counted.map((r) => r.id).join(", ")})`,
      ok: sum === 0,
    };
  });
}

export interface Row extends Measured {
  id: string;
  title: string;
  must: string;
}

/** By issue item (1a, 1b, ..., 9), the totals last. */
const byCase = (a: Row, b: Row) =>
  a.id === "Σ" || b.id === "Σ"
    ? Number(a.id === "Σ") - Number(b.id === "Σ")
    : a.id.localeCompare(b.id, "en", { numeric: true });

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");

export function markdownTable(rows: Row[]): string {
  const sorted = [...rows].sort(byCase);
  return [
    "| case | what must hold | measured | ok |",
    "|---|---|---|---|",
    ...sorted.map(
      (r) =>
        `| ${cell(`${r.id} ${r.title}`)} | ${cell(r.must)} | ${cell(r.measured)} | ${r.ok ? "✅" : "❌"} |`,
    ),
  ].join("\n");
}

export interface Results {
  measuredAt: string;
  commit?: string;
  rows: Row[];
}

export function writeResults(rows: Row[], commit?: string): void {
  const results: Results = {
    measuredAt: new Date().toISOString(),
    commit,
    rows: [...rows].sort(byCase),
  };
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
}
