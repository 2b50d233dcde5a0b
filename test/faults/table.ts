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
  run(): Promise<Measured>;
}

export interface Measured {
  measured: string;
  ok: boolean;
}

export interface Row extends Measured {
  id: string;
  title: string;
  must: string;
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");

export function markdownTable(rows: Row[]): string {
  const sorted = [...rows].sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true }));
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
    rows: [...rows].sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true })),
  };
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
}
