/**
 * `npm run test:faults`: issue 12's fault cases on the bundled action (dist/index.js, spawned as the
 * runner does) with real Prometheus and the emulators' fault hooks. Cases run concurrently, each on
 * a mesh of its own; at the end the suite prints one table (case | what must hold | measured | ok)
 * and writes it as JSON for scripts/faults-readme.ts.
 */
import { execFileSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { finalizeAndLeaseCases } from "./cases-finalize-lease.ts";
import { freshDataCases } from "./cases-fresh-data.ts";
import { githubAndSignalCases } from "./cases-github-signals.ts";
import { httpRouteCases } from "./cases-httproute.ts";
import { inputAndSecretCases } from "./cases-inputs-secrets.ts";
import { kubeApiCases } from "./cases-kube-api.ts";
import { lockstepCases } from "./cases-lockstep.ts";
import { metricsCases } from "./cases-metrics.ts";
import { peopleAndStateCases } from "./cases-people-state.ts";
import { previewCases } from "./cases-preview.ts";
import { recordAndTextCases } from "./cases-record-text.ts";
import { type FaultCase, markdownTable, type Row, totalRows, writeResults } from "./table.ts";

const cases: FaultCase[] = [
  ...peopleAndStateCases,
  ...kubeApiCases,
  ...githubAndSignalCases,
  ...metricsCases,
  ...freshDataCases,
  ...inputAndSecretCases,
  ...lockstepCases,
  ...recordAndTextCases,
  ...finalizeAndLeaseCases,
  ...httpRouteCases,
  ...previewCases,
  // Cases with a longer timeout (a 130 s outage) first: started last, one of them alone would hold
  // the file open for minutes after the rest are done. The table is sorted by case id (./table.ts).
].sort((a, b) => (b.timeoutMs ?? 0) - (a.timeoutMs ?? 0));
const rows: Row[] = [];

function headCommit(): string | undefined {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

describe.concurrent("faults", () => {
  for (const c of cases) {
    it(`${c.id} ${c.title}`, { timeout: c.timeoutMs ?? 180_000 }, async () => {
      const outcome = await c.run().catch((error: unknown) => ({
        ok: false,
        measured: `the case could not run: ${error instanceof Error ? error.message : String(error)}`,
      }));
      rows.push({ id: c.id, title: c.title, must: c.must, ...outcome });
      expect(outcome.ok, outcome.measured).toBe(true);
    });
  }
});

afterAll(() => {
  if (rows.length === 0) return;
  const all = [...rows, ...totalRows(rows)];
  writeResults(all, headCommit());
  console.log(
    `\nFault suite (${all.filter((r) => r.ok).length}/${all.length} hold)\n\n${markdownTable(all)}\n`,
  );
});
