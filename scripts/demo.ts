/**
 * `npm run demo`: the local mesh (Kubernetes API emulator, Istio traffic simulator, real
 * Prometheus, GitHub API emulator), then the bundled action run as the runner runs it — first on a
 * healthy canary, then on a faulty one — with live progress, the final routes, and the pull-request
 * comment each run would post, written to demo-output/ with a PNG of it as a reviewer sees it
 * (headless Chromium; skipped with a note when none is installed). `--docs` also refreshes the
 * example comments and their pictures under docs/.
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NAMESPACE } from "../test/mesh/fixtures.ts";
import { BOT } from "../test/mesh/github-api.ts";
import { type Mesh, startMesh } from "../test/mesh/index.ts";
import { findPrometheus } from "../test/mesh/prometheus.ts";
import { fastInputs, PULL_REQUEST, REPOSITORY, runOnMesh } from "../test/support/e2e.ts";
import { findChromium, screenshotComment } from "./screenshot.ts";

const root = join(import.meta.dirname, "..");
const outDir = join(root, "demo-output");
const writeDocs = process.argv.includes("--docs");

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

/** The action's own progress lines, without the runner's commands. */
function show(chunk: string): void {
  for (const line of chunk.split("\n")) {
    if (!line || line.startsWith("::add-mask::") || line.startsWith("::debug::")) continue;
    const text = line
      .replace(/^::(warning|error)::/, (_, kind: string) => `${kind.toUpperCase()}: `)
      .replace(/%25/g, "%")
      .replace(/%0A/g, " ");
    console.log(`    ${text}`);
  }
}

function routes(mesh: Mesh): string {
  const vs = mesh.kube.get("virtualservices", NAMESPACE, "backend");
  const http = (
    (vs?.spec ?? {}) as {
      http: Array<{
        name?: string;
        route: Array<{ destination: { host: string; subset?: string }; weight?: number }>;
      }>;
    }
  ).http;
  return http
    .map(
      (r) =>
        `    route ${r.name ?? "(unnamed)"}: ${r.route.map((d) => `${d.destination.host}/${d.destination.subset ?? "-"} = ${d.weight ?? 100}`).join(", ")}`,
    )
    .join("\n");
}

async function scenario(
  title: string,
  file: string,
  docsFile: string,
  canaryErrorRate: number,
): Promise<void> {
  console.log(`\n${bold(`== ${title} ==`)}`);
  const mesh = await startMesh({
    requestsPerSecond: 600,
    stable: { errorRate: 0.002 },
    canary: { errorRate: canaryErrorRate },
    seed: 2026,
  });
  try {
    await mesh.scraped();
    console.log(
      `  local mesh: Kubernetes API ${mesh.kube.url}, Prometheus ${mesh.prometheus?.url}, GitHub API ${mesh.github.url}`,
    );
    console.log(
      `  canary error rate ${(canaryErrorRate * 100).toFixed(1)} %, stable 0.2 %, 600 requests/s; running node dist/index.js\n`,
    );
    console.log(routes(mesh).replace(/^ {4}/gm, "  before: "));
    const run = await runOnMesh(mesh, {
      inputs: fastInputs(mesh, { stages: "1,10,50,100", "min-stage-duration": "4s" }),
      onStdout: show,
    });
    console.log(
      `\n  result: ${bold(run.outputs.result ?? "?")}, canary weight ${run.outputs["canary-weight"]}, exit code ${run.exitCode}`,
    );
    console.log(routes(mesh).replace(/^ {4}/gm, "  after:  "));
    const v2 = mesh.traffic.totals("v2");
    console.log(`  users sent ${v2.requests} requests to the canary and got ${v2.errors} errors from it`);
    const comment = (mesh.github.comments.get(`${REPOSITORY}#${PULL_REQUEST}`) ?? []).find(
      (c) => c.user.login === BOT.login,
    );
    const body = comment?.body ?? run.summary;
    writeFileSync(join(outDir, file), body);
    console.log(`  the pull-request comment it posted: demo-output/${file}`);
    if (writeDocs) writeFileSync(join(root, "docs", docsFile), body);
    const chromium = findChromium();
    if (!chromium) {
      console.log(
        "  no Chromium found (WITH_CHROMIUM=1 bash scripts/setup.sh installs it, or set CHROMIUM_PATH): no screenshot",
      );
      return;
    }
    const png = file.replace(/\.md$/, ".png");
    await screenshotComment(body, join(outDir, png), chromium);
    console.log(`  a picture of it, rendered in headless Chromium at 880 px: demo-output/${png}`);
    if (writeDocs) copyFileSync(join(outDir, png), join(root, "docs", docsFile.replace(/\.md$/, ".png")));
  } finally {
    await mesh.stop();
  }
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
  await scenario("1. a healthy canary", "healthy-comment.md", "example-promoted.md", 0.002);
  await scenario("2. a faulty canary (20 % errors)", "faulty-comment.md", "example-rolled-back.md", 0.2);
  console.log(
    `\ndemo finished in ${Math.round((Date.now() - started) / 1000)} s; everything it started has stopped`,
  );
}

await main();
