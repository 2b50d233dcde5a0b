/**
 * `npm run bench`: every scenario in bench/scenarios/ under every rule (the real engine, Flagger's
 * and Argo Rollouts' documented analyses) on the same seeds; prints the grid as markdown with the
 * wall time and writes it to bench/results.json.
 *   npm run bench [-- --runs N] [--workers N] [--quick] [--only TEXT] [--rules a,b] [--no-align]
 *   npm run bench -- --scenario FILE.json [--runs N] [--json]
 * `--quick`: 200 runs per cell (a look in a minute or two; the written results need the full run).
 * `--only TEXT`: the scenarios whose file name contains TEXT. `--rules`: only these rules.
 * `--no-align`: the reader counts each version to its own latest samples (to measure what the
 * time alignment changes; results are not written).
 * Work is split into chunks spread over worker threads (one per core by default).
 */
import { readdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { RunOutcome } from "./outcome.ts";
import { loadScenario, RULES, type Rule, type Scenario } from "./scenario.ts";
import { markdownTable, RULE_NOTES, type ScenarioResult, scenarioResult } from "./summary.ts";
import type { Chunk } from "./worker.ts";

const CHUNK_RUNS = 100;

const { values } = parseArgs({
  options: {
    scenario: { type: "string" },
    runs: { type: "string", default: "2000" },
    workers: { type: "string", default: String(Math.max(1, availableParallelism())) },
    json: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    rules: { type: "string" },
    "no-align": { type: "boolean", default: false },
  },
});
if (values.quick && values.runs === "2000") values.runs = "200";
// Worker threads inherit the environment: the reader's alignment switch reaches every run.
if (values["no-align"]) process.env.BENCH_ALIGN = "0";
const onlyRules = values.rules?.split(",").map((r) => r.trim());
for (const r of onlyRules ?? [])
  if (!(RULES as readonly string[]).includes(r)) throw new Error(`--rules ${r}: one of ${RULES.join(", ")}`);
const runs = Number(values.runs);
const workerCount = Number(values.workers);
if (!Number.isInteger(runs) || runs < 1)
  throw new Error(`--runs ${values.runs}: a whole number of runs, at least 1`);
if (!Number.isInteger(workerCount) || workerCount < 1)
  throw new Error(`--workers ${values.workers}: at least 1`);

const scenarioDir = resolve(import.meta.dirname, "scenarios");
const scenarios: Scenario[] = values.scenario
  ? [loadScenario(resolve(values.scenario))]
  : readdirSync(scenarioDir)
      .filter((f) => f.endsWith(".json") && (!values.only || f.includes(values.only)))
      .sort()
      .map((f) => loadScenario(join(scenarioDir, f)));

/** Runs every chunk on a pool of worker threads; resolves with each chunk's outcomes by id. */
async function runChunks(chunks: Chunk[]): Promise<Map<number, RunOutcome[]>> {
  const results = new Map<number, RunOutcome[]>();
  const queue = [...chunks];
  const workers = Array.from(
    { length: Math.min(workerCount, chunks.length) },
    () => new Worker(new URL("./worker.ts", import.meta.url)),
  );
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((done, fail) => {
          const next = () => {
            const chunk = queue.shift();
            if (chunk) worker.postMessage(chunk);
            else void worker.terminate().then(() => done());
          };
          worker.on("message", (message: { id: number; outcomes: RunOutcome[] }) => {
            results.set(message.id, message.outcomes);
            next();
          });
          worker.on("error", fail);
          next();
        }),
    ),
  );
  return results;
}

const started = performance.now();
const chunks: Chunk[] = [];
const cellsOf: Array<{ scenario: Scenario; rule: Rule; ids: number[] }> = [];
for (const scenario of scenarios) {
  for (const rule of scenario.rules.filter((r) => !onlyRules || onlyRules.includes(r))) {
    const ids: number[] = [];
    for (let from = 0; from < runs; from += CHUNK_RUNS) {
      ids.push(chunks.length);
      chunks.push({ id: chunks.length, rule, scenario, from, to: Math.min(runs, from + CHUNK_RUNS) });
    }
    cellsOf.push({ scenario, rule, ids });
  }
}
const outcomes = await runChunks(chunks);
const results: ScenarioResult[] = scenarios.map((scenario) => {
  const cells: Partial<Record<Rule, RunOutcome[]>> = {};
  for (const cell of cellsOf.filter((c) => c.scenario === scenario))
    cells[cell.rule] = cell.ids.flatMap((id) => outcomes.get(id) ?? []);
  return scenarioResult(scenario, cells);
});
const wallSeconds = (performance.now() - started) / 1000;

if (values.json) {
  console.log(JSON.stringify(values.scenario ? results[0] : results, null, 2));
} else {
  console.log(markdownTable(results));
  console.log(
    `\n${Object.entries(RULE_NOTES)
      .map(([rule, note]) => `- ${rule}: ${note}`)
      .join("\n")}`,
  );
  console.log(
    `\n${runs} runs per cell, ${chunks.length} chunks on ${Math.min(workerCount, chunks.length)} worker threads: wall time ${wallSeconds.toFixed(1)} s`,
  );
}
// Only a full grid, with the reader as the action runs it, is written as the results.
if (!values.scenario && !values.only && !values.rules && !values["no-align"] && runs >= 2000) {
  const file = resolve(import.meta.dirname, "results.json");
  writeFileSync(file, `${JSON.stringify({ runsPerCell: runs, wallSeconds, results }, null, 2)}\n`);
  if (!values.json) console.log(`written to ${file}`);
}
