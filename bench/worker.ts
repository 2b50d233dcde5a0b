/** A worker thread of `npm run bench`: runs the chunks of work it is sent, answers with their outcomes. */
import { parentPort } from "node:worker_threads";
import type { Rule, Scenario } from "./scenario.ts";
import { runRange } from "./simulate.ts";

export interface Chunk {
  id: number;
  rule: Rule;
  scenario: Scenario;
  from: number;
  to: number;
}

parentPort?.on("message", async (chunk: Chunk) => {
  const outcomes = await runRange(chunk.rule, chunk.scenario, chunk.from, chunk.to);
  parentPort?.postMessage({ id: chunk.id, outcomes });
});
