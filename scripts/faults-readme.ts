/**
 * Turns the fault suite's last table (test/faults/results.json, written by `npm run test:faults`)
 * into the README's "What happens when things fail" text, in docs/faults.md; the README carries it
 * between the `<!-- faults:start -->` / `<!-- faults:end -->` markers.
 *   npm run test:faults; npm run readme:faults
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { markdownTable, RESULTS_FILE, type Results } from "../test/faults/table.ts";

const root = join(import.meta.dirname, "..");
if (!existsSync(RESULTS_FILE)) {
  console.error(`${RESULTS_FILE} is missing: run \`npm run test:faults\` first`);
  process.exit(1);
}
const results = JSON.parse(readFileSync(RESULTS_FILE, "utf8")) as Results;
const held = results.rows.filter((r) => r.ok).length;
const text = [
  "## What happens when things fail",
  "",
  "`npm run test:faults` runs the bundled action, as the runner runs it, against a real Prometheus and",
  "emulators of the Kubernetes and GitHub APIs, and injects the faults below: API errors, throttling",
  "and hung requests, a person editing the VirtualService mid-rollout, a damaged state annotation,",
  "Prometheus going down or slow, cancellation and kills, bad inputs and credentials in inputs. Times",
  "come from the emulators' audit logs and the action's log lines; \"100 % stable\" means the write",
  "that took the canary's last traffic away was stored. Inputs are short (`interval` 1-2 s,",
  "`min-stage-duration` 3 s, `settle-time` 2 s) so the suite runs in minutes.",
  "",
  `${held} of ${results.rows.length} cases hold (measured ${results.measuredAt.slice(0, 16).replace("T", " ")} UTC${results.commit ? ` at commit ${results.commit}` : ""}).`,
  "",
  markdownTable(results.rows),
  "",
].join("\n");
writeFileSync(join(root, "docs", "faults.md"), text);
console.log(`docs/faults.md: ${held}/${results.rows.length} cases hold`);
