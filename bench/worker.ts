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

// The reader logs through @actions/core, whose debug lines are workflow commands on stdout: in
// thousands of simulated rollouts they would only flood the terminal.
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
  typeof chunk === "string" && chunk.startsWith("::")
    ? true
    : write(chunk, ...rest)) as typeof process.stdout.write;

parentPort?.on("message", async (chunk: Chunk) => {
  const outcomes = await runRange(chunk.rule, chunk.scenario, chunk.from, chunk.to);
  parentPort?.postMessage({ id: chunk.id, outcomes });
});
