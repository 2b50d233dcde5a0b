/**
 * `npm run demo`: the release model users get by default, on the local mesh (Kubernetes API
 * emulator with a Deployment controller, Istio traffic simulator, real Prometheus, GitHub API
 * emulator). Two releases from one unchanged workflow, each as deploy.yml runs it: put the new
 * image on the canary Deployment (backend-v2), then run the bundled action (`node dist/index.js`,
 * as the runner does) with live progress. Release 1.1.0 is healthy: promoted and finalized (the
 * stable Deployment runs 1.1.0 with all traffic, the canary is scaled to zero). Release 1.2.0
 * fails 20 % of requests: rolled back, the stable untouched. The cluster is printed after each run,
 * and the pull-request comment each run posted is written to demo-output/ with a PNG of it as a
 * reviewer sees it (headless Chromium; skipped with a note when none is installed).
 *
 * Flags: `--docs` also refreshes the example comments and pictures under docs/; `--out <dir>`
 * writes elsewhere than demo-output/; `--no-pictures` skips Chromium. The demo checks what it
 * shows and exits 1 when a run ended otherwise or the action printed a warning.
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { NAMESPACE } from "../test/mesh/fixtures.ts";
import { BOT } from "../test/mesh/github-api.ts";
import { type Mesh, startMesh } from "../test/mesh/index.ts";
import { findPrometheus } from "../test/mesh/prometheus.ts";
import type { ActionRun } from "../test/support/action-runner.ts";
import { fastInputs, REPOSITORY, runOnMesh } from "../test/support/e2e.ts";
import {
  CANARY_DEPLOYMENT,
  clusterLines,
  deployment,
  STABLE_DEPLOYMENT,
  setCanaryImage,
} from "./demo-cluster.ts";
import { findChromium, screenshotComment } from "./screenshot.ts";

const root = join(import.meta.dirname, "..");
const argv = process.argv.slice(2);
const outArg = argv.indexOf("--out");
const outDir =
  outArg >= 0 && argv[outArg + 1] ? resolve(argv[outArg + 1] as string) : join(root, "demo-output");
const writeDocs = argv.includes("--docs");
const pictures = !argv.includes("--no-pictures");

const IMAGE = "registry.example/backend";
const STABLE_ERROR_RATE = 0.002;

interface Release {
  title: string;
  version: string;
  canaryErrorRate: number;
  pullRequest: number;
  file: string;
  docsFile: string;
  /** The commits pushed for this release, oldest first (the last is the one rolled out). */
  commits: Array<{ message: string; name: string; login: string }>;
  /** What the run must have done; the problems found, none when it did. */
  check: (run: ActionRun, mesh: Mesh) => string[];
}

const RELEASES: Release[] = [
  {
    title: "release 1.1.0: a healthy canary",
    version: "1.1.0",
    canaryErrorRate: STABLE_ERROR_RATE,
    pullRequest: 41,
    file: "healthy-comment.md",
    docsFile: "example-promoted.md",
    commits: [{ message: "Release 1.1.0: the new catalogue page", name: "Ada Lovelace", login: "ada" }],
    check: (run, mesh) => [
      ...expectThat(run.outputs.result === "promoted", `result ${run.outputs.result}, not promoted`),
      ...expectThat(run.outputs.finalized === "true", "the promotion was not finalized"),
      ...expectThat(
        deployment(mesh, STABLE_DEPLOYMENT).image === `${IMAGE}:1.1.0`,
        "the stable Deployment does not run 1.1.0",
      ),
      ...expectThat(deployment(mesh, CANARY_DEPLOYMENT).replicas === 0, "the canary was not scaled to zero"),
    ],
  },
  {
    title: "release 1.2.0: a faulty canary (20 % errors)",
    version: "1.2.0",
    canaryErrorRate: 0.2,
    pullRequest: 42,
    file: "faulty-comment.md",
    docsFile: "example-rolled-back.md",
    commits: [
      { message: "Cache the cart between requests", name: "Grace Hopper", login: "grace" },
      { message: "Retry the payment call once on a timeout", name: "Alan Turing", login: "alan" },
      { message: "Release 1.2.0", name: "Grace Hopper", login: "grace" },
    ],
    check: (run, mesh) => [
      ...expectThat(run.outputs.result === "rolled-back", `result ${run.outputs.result}, not rolled-back`),
      ...expectThat(
        deployment(mesh, STABLE_DEPLOYMENT).image === `${IMAGE}:1.1.0`,
        "the stable Deployment no longer runs 1.1.0",
      ),
    ],
  },
];

const expectThat = (ok: boolean, problem: string): string[] => (ok ? [] : [problem]);
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const percent = (x: number) => `${Number((x * 100).toPrecision(3))} %`;

/** The action's own progress lines, without the runner's commands. */
function show(chunk: string): void {
  for (const line of chunk.split("\n")) {
    if (!line || line.startsWith("::add-mask::") || line.startsWith("::debug::")) continue;
    const text = line
      .replace(/^::(warning|error)::/, (_, kind: string) => `${kind.toUpperCase()}: `)
      .replace(/%0D/g, "")
      .replace(/%0A/g, " ")
      .replace(/%25/g, "%");
    console.log(`    ${text}`);
  }
}

function printCluster(mesh: Mesh, when: string): void {
  console.log(`  ${when}:`);
  for (const line of clusterLines(mesh)) console.log(`    ${line}`);
}

/** deploy.yml's two steps for one release: the image on the canary, then the action. */
async function release(
  mesh: Mesh,
  r: Release,
  runId: string,
): Promise<{ run: ActionRun; problems: string[] }> {
  console.log(`\n${bold(`== ${r.title} ==`)}`);
  const image = `${IMAGE}:${r.version}`;
  console.log(`  the workflow puts the new image on the canary Deployment, as deploy.yml does:`);
  console.log(`    kubectl -n ${NAMESPACE} set image deployment/${CANARY_DEPLOYMENT} backend=${image}`);
  setCanaryImage(mesh, image);
  mesh.traffic.setBehaviour("v2", { errorRate: r.canaryErrorRate });
  await mesh.apps?.rolledOut(NAMESPACE, CANARY_DEPLOYMENT);
  console.log(
    `  this version fails ${percent(r.canaryErrorRate)} of its requests (stable ${percent(STABLE_ERROR_RATE)}); the action runs with deploy.yml's inputs:\n`,
  );
  const commit = pushCommits(mesh, r);
  mesh.github.commitPulls.set(commit, [r.pullRequest]);
  const before = mesh.traffic.totals("v2");
  const run = await runOnMesh(mesh, {
    inputs: fastInputs(mesh, {
      stages: "1,10,50,100",
      "min-stage-duration": "4s",
      "stable-deployment": STABLE_DEPLOYMENT,
      "canary-deployment": CANARY_DEPLOYMENT,
    }),
    commit,
    runId,
    onStdout: show,
  });
  console.log(
    `\n  result: ${bold(run.outputs.result ?? "?")}, finalized ${run.outputs.finalized ?? "?"}, canary weight ${run.outputs["canary-weight"]}, exit code ${run.exitCode}`,
  );
  const after = mesh.traffic.totals("v2");
  console.log(
    `  the traffic simulator sent the canary ${after.requests - before.requests} requests and got ${after.errors - before.errors} errors (settle times and finalization included; the report counts the analysed windows)`,
  );
  printCluster(mesh, "the cluster after the run");
  await writeComment(mesh, r, run);
  return { run, problems: r.check(run, mesh) };
}

/** The release's commits in the GitHub emulator's history, with fixed shas (the docs' examples stay the same); the last one's sha. */
function pushCommits(mesh: Mesh, r: Release): string {
  const version = r.version.replace(/\./g, "");
  let sha = "";
  for (const [i, c] of r.commits.entries()) {
    const last = i === r.commits.length - 1;
    sha = `${version}${last ? "ab".repeat(19) : `${i}${"cd".repeat(19)}`}`.slice(0, 40);
    mesh.github.history.add({
      sha,
      message: c.message,
      login: c.login,
      author: { name: c.name, email: `${c.login}@example.com`, date: "2026-12-01T10:00:00Z" },
    });
  }
  return sha;
}

async function writeComment(mesh: Mesh, r: Release, run: ActionRun): Promise<void> {
  const comment = (mesh.github.comments.get(`${REPOSITORY}#${r.pullRequest}`) ?? []).find(
    (c) => c.user.login === BOT.login,
  );
  const body = comment?.body ?? run.summary;
  writeFileSync(join(outDir, r.file), body);
  console.log(`  the comment it posted on pull request #${r.pullRequest}: ${join(outDir, r.file)}`);
  if (writeDocs) writeFileSync(join(root, "docs", r.docsFile), body);
  if (!pictures) return;
  const chromium = findChromium();
  if (!chromium) {
    console.log(
      "  no Chromium found (WITH_CHROMIUM=1 bash scripts/setup.sh installs it, or set CHROMIUM_PATH): no picture",
    );
    return;
  }
  const png = r.file.replace(/\.md$/, ".png");
  await screenshotComment(body, join(outDir, png), chromium);
  console.log(`  a picture of it, rendered in headless Chromium at 880 px: ${join(outDir, png)}`);
  if (writeDocs) copyFileSync(join(outDir, png), join(root, "docs", r.docsFile.replace(/\.md$/, ".png")));
}

async function main(): Promise<void> {
  try {
    findPrometheus();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
  mkdirSync(outDir, { recursive: true });
  const started = Date.now();
  const mesh = await startMesh({
    requestsPerSecond: 600,
    stable: { errorRate: STABLE_ERROR_RATE },
    canary: { errorRate: STABLE_ERROR_RATE },
    seed: 2026,
    // Both versions as Deployments, as the runbook's manifests/ install them: the same image at first.
    deployments: { readyDelayMs: 500, images: { v1: `${IMAGE}:1.0.0`, v2: `${IMAGE}:1.0.0` } },
  });
  const problems: string[] = [];
  const warnings: string[] = [];
  try {
    await mesh.scraped();
    console.log(
      `local mesh: Kubernetes API ${mesh.kube.url}, Prometheus ${mesh.prometheus?.url}, GitHub API ${mesh.github.url}; 600 requests/s`,
    );
    printCluster(mesh, "the cluster before the first release");
    for (const [i, r] of RELEASES.entries()) {
      const { run, problems: found } = await release(mesh, r, String(101 + i));
      problems.push(...found.map((p) => `${r.version}: ${p}`));
      warnings.push(...run.stdout.split("\n").filter((l) => l.startsWith("::warning::")));
    }
  } finally {
    await mesh.stop();
  }
  console.log(
    `\ndemo finished in ${Math.round((Date.now() - started) / 1000)} s; everything it started has stopped; ${warnings.length} warning${warnings.length === 1 ? "" : "s"}`,
  );
  for (const p of problems) console.log(`NOT AS EXPECTED: ${p}`);
  if (problems.length > 0 || warnings.length > 0) process.exitCode = 1;
}

await main();
