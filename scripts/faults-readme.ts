/**
 * Turns the fault suite's last table (test/faults/results.json, written by `npm run test:faults`)
 * into docs/faults.md (every case with what was measured) and the count line of the README's "What
 * happens when things fail" section, between the `<!-- faults:start -->` / `<!-- faults:end -->`
 * markers (the README states the promises in a user's words; the matrix lives in docs/faults.md).
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
const when = `${results.measuredAt.slice(0, 16).replace("T", " ")} UTC${results.commit ? ` at commit ${results.commit}` : ""}`;
const intro = [
  "`npm run test:faults` runs the bundled action, as the runner runs it, against a real Prometheus and",
  "emulators of the Kubernetes and GitHub APIs, and injects the faults below: API errors, throttling",
  "and hung requests, a person editing the VirtualService mid-rollout, a damaged state annotation,",
  "Prometheus going down or slow, cancellation and kills, bad inputs and credentials in inputs. Times",
  "come from the emulators' audit logs and the action's log lines; \"100 % stable\" means the write",
  "that took the canary's last traffic away was stored. Inputs are short (`interval` 1-3 s,",
  "`min-stage-duration` a few seconds) so the suite runs in minutes.",
];

writeFileSync(
  join(root, "docs", "faults.md"),
  [
    "# What happens when things fail",
    "",
    ...intro,
    "",
    `${held} of ${results.rows.length} cases hold (measured ${when}).`,
    "",
    markdownTable(results.rows),
    "",
  ].join("\n"),
);

const section = [
  "<!-- faults:start -->",
  `${held} of ${results.rows.length} cases hold (measured ${when}); [docs/faults.md](docs/faults.md) has each case and what was measured.`,
  "<!-- faults:end -->",
].join("\n");
const readmePath = join(root, "README.md");
const readme = readFileSync(readmePath, "utf8");
const start = readme.indexOf("<!-- faults:start -->");
const end = readme.indexOf("<!-- faults:end -->");
if (start < 0 || end < start) {
  console.error("README.md has no <!-- faults:start --> / <!-- faults:end --> markers");
  process.exit(1);
}
writeFileSync(
  readmePath,
  readme.slice(0, start) + section + readme.slice(end + "<!-- faults:end -->".length),
);
console.log(`docs/faults.md and README.md: ${held}/${results.rows.length} cases hold`);
