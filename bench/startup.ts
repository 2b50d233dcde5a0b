/**
 * Time from spawning `node dist/index.js` (as the runner does) to its first line on stdout, median
 * of N runs, plus the size of the bundle and of its source map (dist/ is what every `uses:`
 * downloads; issue 24 set the budget for dist/index.js at 3,000,000 bytes). Prints numbers; asserts nothing.
 *   node bench/startup.ts [runs]
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const entry = resolve(import.meta.dirname, "../dist/index.js");
const runs = Number(process.argv[2] ?? 10);
const dir = mkdtempSync(join(tmpdir(), "startup-"));
for (const f of ["output", "state", "summary"]) writeFileSync(join(dir, f), "");

function once(): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [entry], {
    env: {
      PATH: process.env.PATH ?? "",
      GITHUB_OUTPUT: join(dir, "output"),
      GITHUB_STATE: join(dir, "state"),
      GITHUB_STEP_SUMMARY: join(dir, "summary"),
      "INPUT_STABLE-SUBSET": "v1",
      "INPUT_CANARY-SUBSET": "v2",
      "INPUT_PROMETHEUS-URL": "http://127.0.0.1:9",
    },
    stdio: ["ignore", "pipe", "ignore"],
  });
  return new Promise((done) => {
    child.stdout.once("data", () => done(Number(process.hrtime.bigint() - started) / 1e6));
  });
}

const times: number[] = [];
for (let i = 0; i < runs; i++) times.push(await once());
times.sort((a, b) => a - b);
const median =
  ((times[Math.floor((runs - 1) / 2)] as number) + (times[Math.ceil((runs - 1) / 2)] as number)) / 2;
const bytes = (path: string) => (existsSync(path) ? statSync(path).size.toLocaleString("en-US") : "missing");
console.log(
  `node ${process.version}; dist/index.js ${bytes(entry)} bytes (budget 3,000,000); dist/index.js.map ${bytes(`${entry}.map`)} bytes`,
);
console.log(
  `first log line after spawn: median ${median.toFixed(1)} ms over ${runs} runs (min ${times[0]?.toFixed(1)}, max ${times.at(-1)?.toFixed(1)})`,
);
