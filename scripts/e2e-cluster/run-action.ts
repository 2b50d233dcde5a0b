/**
 * Runs the bundled action (dist/index.js) by hand as GitHub's runner runs `uses: ./`: every
 * action.yml default as an INPUT_ variable with the scenario's inputs over them, the main step,
 * then the post step with the state main saved. Used by run-action.sh; the workflow uses `uses: ./`.
 *   usage: node scripts/e2e-cluster/run-action.ts <inputs file> <outputs file>
 * The inputs file holds `name=value` lines (inputs.sh); the outputs file receives the action's
 * outputs as `name=value` lines. Exits with the main step's exit code.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { actionDefaults, parseCommandFile, runAction } from "../../test/support/action-runner.ts";

const [inputsFile, outputsFile] = process.argv.slice(2);
if (!inputsFile || !outputsFile) {
  console.error("usage: node scripts/e2e-cluster/run-action.ts <inputs file> <outputs file>");
  process.exit(2);
}
// No token: the run reports to its job summary only (here a file that is discarded).
const inputs = {
  ...actionDefaults({ "github.token": "" }),
  ...parseCommandFile(readFileSync(inputsFile, "utf8")),
};
// What the runner would set and the action records (the rollout's id and lease holder name the run).
const env = {
  KUBECONFIG: process.env.KUBECONFIG ?? "",
  GITHUB_REPOSITORY: process.env.GITHUB_REPOSITORY ?? "local/e2e-cluster",
  GITHUB_RUN_ID: process.env.GITHUB_RUN_ID ?? String(Math.floor(Date.now() / 1000)),
  GITHUB_RUN_ATTEMPT: "1",
  GITHUB_SHA: process.env.GITHUB_SHA ?? "unknown",
};
const write = (chunk: string) => process.stdout.write(chunk);
const HOUR = 3_600_000;

const main = await runAction({ inputs, env, timeoutMs: HOUR, onStdout: write });
process.stderr.write(main.stderr);
const post = await runAction({ inputs, env, state: main.state, timeoutMs: 10 * 60_000, onStdout: write });
process.stderr.write(post.stderr);
writeFileSync(
  outputsFile,
  Object.entries(main.outputs)
    .map(([name, value]) => `${name}=${value.replace(/\n/g, " ")}\n`)
    .join(""),
);
console.log(`main exited ${main.exitCode ?? main.signal}, post exited ${post.exitCode ?? post.signal}`);
process.exit(main.exitCode ?? 1);
